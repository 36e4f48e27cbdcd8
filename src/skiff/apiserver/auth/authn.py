"""Authentication: who sent this request?

Tried in Kubernetes' order; the first that knows the request decides::

    1. X.509 client certificate verified against the cluster CA during the TLS
       handshake: user = CN, groups = O values + system:authenticated
    2. "Authorization: Bearer <jwt>": a ServiceAccount token this cluster signed
       (signature, issuer, expiry, audience), whose ServiceAccount - and bound
       Pod/Secret - still exist with the uids in the token
    3. nothing: system:anonymous, group system:unauthenticated

A bearer token that is presented but not valid is a 401 (no fallback to
anonymous).  Certificate users are cached by subject; verified tokens for up
to :data:`TOKEN_CACHE_SECONDS` (like kube-apiserver's token cache), after which the
objects they are bound to are looked up again.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from .tokens import TokenClaims, TokenInvalid, TokenSigner
from .user import (AUTHENTICATED, UserInfo, service_account_groups,
                   service_account_user_name)

Obj = dict[str, Any]
#: (plural, namespace, name) -> the stored object or None
Lookup = Callable[[str, str, str], Awaitable[Obj | None]]
TOKEN_CACHE_SECONDS = 10.0
MAX_CACHED_TOKENS = 10_000
MAX_CACHED_SUBJECTS = 10_000

EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"


def user_from_subject(subject: Any) -> UserInfo | None:
    """A peer certificate subject (``ssl`` getpeercert form) -> the user it names."""
    name = ""
    groups: list[str] = []
    for rdn in subject or ():
        for attr, value in rdn:
            if attr == "commonName":
                name = value
            elif attr == "organizationName":
                groups.append(value)
    if not name:
        return None
    if AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, groups=tuple(groups))


class Authenticator:
    def __init__(self, signer: TokenSigner | None, lookup: Lookup,
                 clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.lookup = lookup
        self.clock = clock
        self._subjects: dict[Any, UserInfo | None] = {}
        self._tokens: dict[str, tuple[UserInfo, float, int]] = {}  # token -> (user, checked, exp)

    def certificate_user(self, request: web.BaseRequest) -> UserInfo | None:
        transport = request.transport
        if transport is None:
            return None
        cert = transport.get_extra_info("peercert")
        if not cert:
            return None
        subject = cert.get("subject")
        try:
            return self._subjects[subject]
        except KeyError:
            if len(self._subjects) >= MAX_CACHED_SUBJECTS:
                self._subjects.clear()
            user = self._subjects[subject] = user_from_subject(subject)
            return user
        except TypeError:  # an unhashable subject: no caching
            return user_from_subject(subject)

    async def token_user(self, token: str, audiences: tuple[str, ...] = ()) -> UserInfo:
        """The ServiceAccount a token stands for; raises :class:`TokenInvalid`."""
        now = self.clock()
        if not audiences:
            hit = self._tokens.get(token)
            if hit is not None and now - hit[1] < TOKEN_CACHE_SECONDS and now < hit[2]:
                return hit[0]
        if self.signer is None:
            raise TokenInvalid("no service-account key configured")
        claims = self.signer.verify(token, audiences)
        user = await self._check_objects(claims)
        if not audiences:
            if len(self._tokens) >= MAX_CACHED_TOKENS:
                self._tokens.clear()
            self._tokens[token] = (user, now, claims.expires)
        return user

    async def _check_objects(self, claims: TokenClaims) -> UserInfo:
        sa = await self.lookup("serviceaccounts", claims.namespace, claims.name)
        if sa is None:
            raise TokenInvalid(f'serviceaccounts "{claims.name}" not found')
        if claims.uid and sa["metadata"].get("uid") != claims.uid:
            raise TokenInvalid(f"service account UID ({claims.uid}) does not match claim "
                               f"({sa['metadata'].get('uid')})")
        if sa["metadata"].get("deletionTimestamp"):
            raise TokenInvalid(f'serviceaccount "{claims.name}" is being deleted')
        extra: dict[str, tuple[str, ...]] = {}
        if claims.jti:
            extra[EXTRA_CREDENTIAL_ID] = (f"JTI={claims.jti}",)
        bound = claims.bound
        if bound is not None and bound.kind in ("Pod", "Secret"):
            plural = "pods" if bound.kind == "Pod" else "secrets"
            obj = await self.lookup(plural, claims.namespace, bound.name)
            if obj is None:
                raise TokenInvalid(f'{plural} "{bound.name}" not found')
            if obj["metadata"].get("uid") != bound.uid:
                raise TokenInvalid(f"{bound.kind.lower()} UID ({bound.uid}) does not match claim")
            if obj["metadata"].get("deletionTimestamp") and bound.kind == "Secret":
                raise TokenInvalid(f'secret "{bound.name}" is being deleted')
            if bound.kind == "Pod":
                extra[EXTRA_POD_NAME] = (bound.name,)
                extra[EXTRA_POD_UID] = (bound.uid,)
        if claims.node is not None:
            extra[EXTRA_NODE_NAME] = (claims.node.name,)
            extra[EXTRA_NODE_UID] = (claims.node.uid,)
        return UserInfo(service_account_user_name(claims.namespace, claims.name), uid=claims.uid,
                        groups=service_account_groups(claims.namespace), extra=extra)
