"""Reading a kubeconfig file into what a client needs to connect.

A kubeconfig names clusters (where and how to trust), users (how to prove who
you are) and contexts (a cluster + a user + a default namespace); the
``current-context`` picks one.  :func:`load_kubeconfig` resolves that down to
a :class:`ConnectionConfig`::

    clusters[].cluster:  server, certificate-authority(-data), insecure-skip-tls-verify
    users[].user:        client-certificate(-data), client-key(-data), token, tokenFile
    contexts[].context:  cluster, user, namespace

``*-data`` fields are base64 PEM; the file-path forms are read relative to the
kubeconfig's directory, as kubectl does.  :meth:`ConnectionConfig.ssl_context`
builds the TLS context: the CA is loaded from memory, the client key pair is
written to a private (0700) temporary directory only for the instant
:meth:`ssl.SSLContext.load_cert_chain` needs a file, then removed.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]


class KubeconfigError(ValueError):
    """The kubeconfig is missing something needed, or names something it does not define."""


@dataclass(frozen=True)
class ConnectionConfig:
    """Everything needed to reach and authenticate to one API server."""

    server: str
    ca_pem: bytes | None = None
    insecure_skip_tls_verify: bool = False
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    namespace: str = "default"
    tls_server_name: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context for ``https://`` servers; ``None`` for plain ``http://``."""
        if not self.server.startswith("https://"):
            return None
        if self.insecure_skip_tls_verify:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_pem is not None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.ca_pem.decode())
        else:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.client_cert_pem is not None and self.client_key_pem is not None:
            load_client_cert(ctx, self.client_cert_pem, self.client_key_pem)
        return ctx


def load_client_cert(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Load an in-memory client certificate and key into ``ctx``.

    :mod:`ssl` only reads key pairs from files, so they live for a moment in a
    directory only this user can read, removed before returning.
    """
    with tempfile.TemporaryDirectory(prefix="skiff-client-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path = Path(tmp) / "client.crt"
        key_path = Path(tmp) / "client.key"
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(cert_path), str(key_path))


def load_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> ConnectionConfig:
    """Resolve ``context`` (default: ``current-context``) of the kubeconfig at ``path``."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {e}") from e
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{path}: not a kubeconfig (expected a mapping)")
    return parse_kubeconfig(doc, context=context, base_dir=path.parent)


def parse_kubeconfig(doc: dict[str, Any], *, context: str | None = None,
                     base_dir: Path | None = None) -> ConnectionConfig:
    """Like :func:`load_kubeconfig` for an already-parsed document."""
    base = base_dir or Path.cwd()
    context_name = context or doc.get("current-context") or ""
    if not context_name:
        raise KubeconfigError("no context given and no current-context set")
    ctx = _named(doc, "contexts", "context", context_name)
    cluster = _named(doc, "clusters", "cluster", str(ctx.get("cluster", "")))
    user_name = str(ctx.get("user", ""))
    user = _named(doc, "users", "user", user_name) if user_name else {}

    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"cluster {ctx.get('cluster')!r} has no server")

    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _resolve(base, str(user["tokenFile"])).read_text().strip()

    return ConnectionConfig(
        server=str(server).rstrip("/"),
        ca_pem=_data_or_file(cluster, "certificate-authority", base),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        client_cert_pem=_data_or_file(user, "client-certificate", base),
        client_key_pem=_data_or_file(user, "client-key", base),
        token=str(token) if token else None,
        namespace=str(ctx.get("namespace") or "default"),
        tls_server_name=cluster.get("tls-server-name"),
    )


def _named(doc: dict[str, Any], section: str, inner: str, name: str) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(inner) or {}
            if not isinstance(value, dict):
                raise KubeconfigError(f"{section} entry {name!r} is malformed")
            return value
    raise KubeconfigError(f"{section[:-1]} {name!r} not found in kubeconfig")


def _data_or_file(section: dict[str, Any], field: str, base: Path) -> bytes | None:
    data = section.get(f"{field}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except ValueError as e:
            raise KubeconfigError(f"{field}-data is not valid base64") from e
    file = section.get(field)
    if file:
        try:
            return _resolve(base, str(file)).read_bytes()
        except OSError as e:
            raise KubeconfigError(f"cannot read {field} {file}: {e}") from e
    return None


def _resolve(base: Path, name: str) -> Path:
    p = Path(os.path.expanduser(name))
    return p if p.is_absolute() else base / p
