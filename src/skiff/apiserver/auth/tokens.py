"""ServiceAccount tokens: JWTs signed (ES256) with the cluster's service-account key.

A bound token, as TokenRequest issues it::

    header  {"alg": "ES256", "kid": <sha256 of the public key, base64url>}
    claims  {"iss": "https://kubernetes.default.svc.cluster.local",
             "sub": "system:serviceaccount:<ns>:<name>", "aud": [...],
             "iat": .., "nbf": .., "exp": .., "jti": <uuid>,
             "kubernetes.io": {"namespace": ns,
                               "serviceaccount": {"name", "uid"},
                               "pod" | "secret": {"name", "uid"}  (when bound),
                               "node": {"name", "uid"}            (pod on a node)}}

:meth:`TokenSigner.verify` checks the signature, issuer, time window and
audience and returns the claims; whether the ServiceAccount (and bound
object) still exist is the authenticator's job (it needs the store).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ISSUER = "https://kubernetes.default.svc.cluster.local"
#: leeway for clocks of other machines (nbf / iat in the future)
LEEWAY = 60


class TokenInvalid(Exception):
    """A bearer token that is not a valid ServiceAccount token (answered with 401)."""


@dataclass(frozen=True, slots=True)
class BoundObject:
    kind: str  # Pod | Secret | Node
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class TokenClaims:
    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]
    issued_at: int
    expires: int
    jti: str = ""
    bound: BoundObject | None = None
    node: BoundObject | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, key: ec.EllipticCurvePrivateKey, *, issuer: str = ISSUER,
                 api_audiences: tuple[str, ...] = (ISSUER,), clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.public = key.public_key()
        self.issuer = issuer
        self.api_audiences = api_audiences
        self.clock = clock
        der = self.public.public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(der).digest())
        self._header = _b64(orjson.dumps({"alg": "ES256", "kid": self.kid}))

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> "TokenSigner":
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: the service-account key must be an EC key")
        return cls(key, **kwargs)

    def issue(self, namespace: str, name: str, uid: str, *, audiences: tuple[str, ...] = (),
              expiration_seconds: int = 3600, bound: BoundObject | None = None,
              node: BoundObject | None = None) -> tuple[str, int]:
        """A signed token and its expiry (epoch seconds)."""
        now = int(self.clock())
        exp = now + int(expiration_seconds)
        private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound is not None:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        if node is not None:
            private["node"] = {"name": node.name, "uid": node.uid}
        claims = {"aud": list(audiences or self.api_audiences), "exp": exp, "iat": now,
                  "iss": self.issuer, "jti": str(uuid.uuid4()), "kubernetes.io": private,
                  "nbf": now, "sub": f"system:serviceaccount:{namespace}:{name}"}
        signing_input = f"{self._header}.{_b64(orjson.dumps(claims))}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", exp

    def verify(self, token: str, audiences: tuple[str, ...] = ()) -> TokenClaims:
        """The claims of a token this cluster signed, for one of ``audiences`` (default: the API's)."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("not a JWT")
        try:
            header = orjson.loads(_unb64(parts[0]))
            claims = orjson.loads(_unb64(parts[1]))
            raw = _unb64(parts[2])
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise TokenInvalid("malformed token") from exc
        if not isinstance(header, dict) or header.get("alg") != "ES256" or len(raw) != 64:
            raise TokenInvalid("unsupported signing algorithm")
        signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        try:
            self.public.verify(signature, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise TokenInvalid("invalid signature") from exc
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            raise TokenInvalid("token issued by another issuer")
        now = self.clock()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or now >= exp:
            raise TokenInvalid("token has expired")
        if isinstance(nbf, int) and now + LEEWAY < nbf:
            raise TokenInvalid("token is not valid yet")
        aud = claims.get("aud")
        token_audiences = tuple(aud) if isinstance(aud, list) else ((aud,) if isinstance(aud, str) else ())
        if not set(token_audiences) & set(audiences or self.api_audiences):
            raise TokenInvalid("token audiences is invalid for the target audiences")
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            raise TokenInvalid("not a bound service account token")
        sa = private.get("serviceaccount") or {}
        bound = None
        for kind in ("pod", "secret"):
            ref = private.get(kind)
            if isinstance(ref, dict):
                bound = BoundObject(kind.capitalize(), str(ref.get("name", "")), str(ref.get("uid", "")))
        node_ref = private.get("node")
        node = BoundObject("Node", str(node_ref.get("name", "")), str(node_ref.get("uid", ""))) \
            if isinstance(node_ref, dict) else None
        if bound is None and node is not None:
            bound = node
        return TokenClaims(str(private.get("namespace", "")), str(sa.get("name", "")), str(sa.get("uid", "")),
                           token_audiences, int(claims.get("iat", 0)), exp, str(claims.get("jti", "")),
                           bound, node)
