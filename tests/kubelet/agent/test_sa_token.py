"""serviceAccountToken projections: one TokenRequest per pod, reused, renewed at 80 % of the life."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from skiff.kubelet.volumes.manager import VolumeManager, VolumeSources
from skiff.kubelet.volumes.tokens import ServiceAccountTokens, token_times

Obj = dict[str, Any]
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def jwt(iat: float, exp: float, serial: int) -> str:
    def part(data: Obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'ES256'})}.{part({'iat': iat, 'exp': exp, 'jti': serial})}.sig"


class Issuer:
    """A TokenRequest stand-in: tokens living ``lifetime`` seconds; records each request."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.requests: list[tuple[str, Obj]] = []
        self.callers: list[asyncio.Task[Any] | None] = []
        self.issued = asyncio.Event()

    async def __call__(self, pod: Obj, projection: Obj) -> str | None:
        self.requests.append((pod["metadata"]["name"], projection))
        self.callers.append(asyncio.current_task())
        self.issued.set()
        now = time.time()
        return jwt(now, now + self.lifetime, len(self.requests))


def pod(volumes: list[Obj]) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
            "spec": {"serviceAccountName": "default", "volumes": volumes}}


def api_access(expiration: int = 3607) -> Obj:
    return {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": expiration, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}}]}}


def manager(tmp_path: Path, issuer: Issuer) -> VolumeManager:
    root_ca = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": CA}}
    return VolumeManager(tmp_path / "pods", VolumeSources(
        config_map=lambda ns, name: root_ca if name == "kube-root-ca.crt" else None,
        secret=lambda ns, name: None, token=issuer))


async def test_projected_volume_holds_token_ca_and_namespace(tmp_path: Path) -> None:
    issuer = Issuer(lifetime=3600)
    volumes = manager(tmp_path, issuer)
    p = pod([api_access()])
    try:
        prepared = await volumes.setup(p)
        path = prepared["kube-api-access-abcde"].path
        token = (path / "token").read_text()
        assert token.count(".") == 2
        assert (path / "ca.crt").read_text() == CA
        assert (path / "namespace").read_text() == "default"
        assert issuer.requests == [("web", {"expirationSeconds": 3607, "path": "token"})]
        # a refresh for a changed ConfigMap reuses the fresh token: no new TokenRequest
        await volumes.refresh(p)
        assert len(issuer.requests) == 1 and (path / "token").read_text() == token
    finally:
        await volumes.teardown("uid-1")


async def test_token_rewritten_at_eighty_percent_of_its_life(tmp_path: Path) -> None:
    issuer = Issuer(lifetime=0.5)  # renewal due 0.4 s after issue
    volumes = manager(tmp_path, issuer)
    p = pod([api_access()])
    try:
        prepared = await volumes.setup(p)
        path = prepared["kube-api-access-abcde"].path
        first = (path / "token").read_text()
        issuer.issued.clear()
        await asyncio.wait_for(issuer.issued.wait(), 5.0)      # the renewal's TokenRequest
        renewal = issuer.callers[-1]
        assert renewal is not None and renewal.get_name() == "token-renewal-uid-1"
        await renewal                                           # ... and its rewrite
        assert (path / "token").read_text() != first
        assert (path / "ca.crt").read_text() == CA             # the rest of the volume is kept
    finally:
        await volumes.teardown("uid-1")
    assert not volumes._renewal_timers and not volumes._renewals


async def test_failed_renewal_keeps_the_unexpired_token() -> None:
    now = [1000.0]
    answers: list[str | None] = [jwt(1000, 1100, 1), None]

    async def source(pod: Obj, projection: Obj) -> str | None:
        return answers.pop(0)

    tokens = ServiceAccountTokens(source, clock=lambda: now[0])
    p = pod([])
    first = await tokens.get(p, {"expirationSeconds": 100})
    assert tokens.next_refresh("uid-1") == 1080.0
    now[0] = 1085.0
    assert await tokens.get(p, {"expirationSeconds": 100}) == first   # request failed: old one kept
    now[0] = 1100.0
    answers.append(None)
    assert await tokens.get(p, {"expirationSeconds": 100}) is None    # expired: nothing to offer


def test_token_times_fall_back_to_the_requested_expiration() -> None:
    assert token_times("not-a-jwt", 50.0, 600) == (50.0, 650.0)
    assert token_times(jwt(10, 20, 1), 50.0, 600) == (10.0, 20.0)


async def test_close_stops_renewals_and_unmounts(tmp_path: Path) -> None:
    from skiff.kubelet.runtime.mounts import mount_points_under

    issuer = Issuer(lifetime=3600)
    volumes = manager(tmp_path, issuer)
    prepared = await volumes.setup(pod([api_access()]))
    path = prepared["kube-api-access-abcde"].path
    assert str(path) in mount_points_under(tmp_path / "pods")   # projected volumes live on tmpfs
    await volumes.close()
    assert mount_points_under(tmp_path / "pods") == []
    assert not volumes._renewal_timers
    await volumes.teardown("uid-1")
