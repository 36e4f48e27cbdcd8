"""A real HTTPS API server with authentication and RBAC, and clients acting as anyone.

``AuthServer.client(user, groups)`` presents a client certificate signed by the
cluster CA; ``client(token=...)`` a bearer token; ``client()`` nothing
(anonymous).  Used by test_auth*.py and test_rbac*.py (no tests here).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from skiff.apiserver.app import AUTH_GATE, make_app
from skiff.apiserver.auth.gate import AuthGate, AuthOptions
from skiff.apiserver.pki import ClusterPKI, ensure_pki, issue_client_cert
from skiff.apiserver.server import ServingHandle, serve
from skiff.storage.sqlite import SqliteBackend

Obj = dict[str, Any]


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body!r})"


class Client:
    def __init__(self, server: "AuthServer", ctx: ssl.SSLContext, headers: dict[str, str]) -> None:
        self.server = server
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), headers=headers)

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | list[tuple[str, str]] | None = None) -> Reply:
        async with self.session.request(method, self.server.url + path, json=body, headers=headers) as r:
            text = await r.text()
            try:
                import json

                data: Any = json.loads(text)
            except ValueError:
                data = text
            return Reply(r.status, data)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("POST", path, body, **kw)


class AuthServer:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pki: ClusterPKI = ensure_pki(tmp / "pki")
        self.backend = SqliteBackend(str(tmp / "state.db"), compact_interval=0)
        self.handle: ServingHandle | None = None
        self.gate: AuthGate | None = None
        self.clients: list[Client] = []
        self._certs = 0

    async def start(self) -> None:
        await self.backend.start()
        app = make_app(self.backend, auth=AuthOptions.from_pki(self.pki))
        gate = app[AUTH_GATE]
        assert isinstance(gate, AuthGate)
        self.gate = gate
        self.handle = await serve(app, host="127.0.0.1", port=0, ssl_context=self.pki.server_ssl_context())

    async def close(self) -> None:
        for c in self.clients:
            await c.session.close()
        if self.handle is not None:
            await self.handle.close()
        await self.backend.close()

    @property
    def url(self) -> str:
        assert self.handle is not None
        return self.handle.url

    def client(self, user: str | None = None, groups: tuple[str, ...] = (), token: str | None = None,
               headers: dict[str, str] | None = None) -> Client:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.pki.ca_cert))
        if user == "admin":
            ctx.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        elif user is not None:
            self._certs += 1
            key, cert = self.tmp / f"u{self._certs}.key", self.tmp / f"u{self._certs}.crt"
            issue_client_cert(self.pki, key, cert, user, list(groups))
            ctx.load_cert_chain(cert, key)
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        c = Client(self, ctx, all_headers)
        self.clients.append(c)
        return c

    async def settled(self, reply: Reply) -> Reply:
        """Wait until the RBAC cache has seen the write ``reply`` answered."""
        assert self.gate is not None
        rv = int(reply.body["metadata"]["resourceVersion"])
        await self.gate.policy.wait_for(rv)
        return reply


@pytest.fixture
async def auth_server(tmp_path: Path) -> AsyncIterator[AuthServer]:
    server = AuthServer(tmp_path)
    try:
        await server.start()
        yield server
    finally:
        await server.close()


def role(name: str, rules: list[Obj], namespace: str = "default") -> Obj:
    meta: Obj = {"name": name}
    kind = "ClusterRole"
    if namespace:
        meta["namespace"] = namespace
        kind = "Role"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules}


def binding(name: str, role_kind: str, role_name: str, subjects: list[Obj], namespace: str = "default") -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding" if namespace else "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": subjects}


RBAC = "/apis/rbac.authorization.k8s.io/v1"
