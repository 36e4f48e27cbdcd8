"""Server certificates for the HTTPS listener, chosen per connection by SNI.

::

    ClientHello(server_name) ──sni callback──▶ exact host's context?
                                              else "*.rest" wildcard host's context?
                                              else the default context
    contexts: one ssl.SSLContext per TLS Secret (kubernetes.io/tls: tls.crt, tls.key),
              built off the event loop, cached by (Secret, resourceVersion)
    default:  a self-signed certificate made at start ("Kubernetes Ingress Controller
              Fake Certificate", like ingress-nginx), used for every host without a
              usable Secret and for clients that send no SNI

The ``ssl`` module loads certificates only from files, so each Secret's PEM is
written to a private temporary file, loaded and removed at once.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Obj = dict[str, Any]
log = logging.getLogger(__name__)

FAKE_CERTIFICATE_NAME = "Kubernetes Ingress Controller Fake Certificate"


def self_signed_certificate(common_name: str = FAKE_CERTIFICATE_NAME,
                            dns_names: tuple[str, ...] = ("ingress.local",),
                            days: int = 365) -> tuple[bytes, bytes]:
    """A new self-signed certificate and its key, both PEM (ECDSA P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Co"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A TLS server context for one certificate chain (blocking: call off the loop)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.set_alpn_protocols(["http/1.1"])
    fd, path = tempfile.mkstemp(prefix="skiff-ingress-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
    return context


class SecretPair(NamedTuple):
    version: str        # namespace/name@resourceVersion
    cert_pem: bytes
    key_pem: bytes


def secret_pair(secret: Obj) -> SecretPair | None:
    """``tls.crt`` and ``tls.key`` of a Secret, decoded; None when either is missing."""
    data = secret.get("data") or {}
    try:
        cert, key = base64.b64decode(data.get("tls.crt") or ""), base64.b64decode(data.get("tls.key") or "")
    except ValueError:
        return None
    if not cert or not key:
        return None
    meta = secret.get("metadata") or {}
    version = f"{meta.get('namespace')}/{meta.get('name')}@{meta.get('resourceVersion', '')}"
    return SecretPair(version, cert, key)


class CertificateStore:
    """The default context plus one context per host (see module docstring)."""

    def __init__(self, default: ssl.SSLContext) -> None:
        self.default = default
        self.default.sni_callback = self._pick
        self._by_host: dict[str, ssl.SSLContext] = {}
        self._cache: dict[str, ssl.SSLContext] = {}     # SecretPair.version → context

    @classmethod
    async def create(cls) -> "CertificateStore":
        cert, key = await asyncio.to_thread(self_signed_certificate)
        return cls(await asyncio.to_thread(server_context, cert, key))

    @property
    def context(self) -> ssl.SSLContext:
        """The context to serve HTTPS with (its SNI callback switches per host)."""
        return self.default

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        if server_name:
            name = server_name.lower().rstrip(".")
            chosen = self._by_host.get(name)
            if chosen is None and "." in name:
                chosen = self._by_host.get("*" + name[name.find("."):])
            if chosen is not None:
                return chosen
        return self.default

    def _pick(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
              _context: ssl.SSLContext) -> None:
        chosen = self.context_for(server_name)
        if chosen is not self.default:
            connection.context = chosen

    async def update(self, hosts: Mapping[str, SecretPair]) -> list[str]:
        """Serve each host (exact or ``*.`` wildcard) with its pair; the errors, per Secret."""
        errors: list[str] = []
        by_host: dict[str, ssl.SSLContext] = {}
        used: dict[str, ssl.SSLContext] = {}
        failed: set[str] = set()
        for host, pair in hosts.items():
            if pair.version in failed:
                continue
            context = self._cache.get(pair.version) or used.get(pair.version)
            if context is None:
                try:
                    context = await asyncio.to_thread(server_context, pair.cert_pem, pair.key_pem)
                except (ssl.SSLError, OSError, ValueError) as error:
                    failed.add(pair.version)
                    errors.append(f"{pair.version.partition('@')[0]}: {error}")
                    continue
            used[pair.version] = context
            by_host[host.lower()] = context
        self._by_host = by_host
        self._cache = used
        return errors
