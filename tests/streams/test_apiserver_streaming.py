"""The API server's side of pods/log|exec|attach|portforward: checks, node lookup, proxying.

A real API server (in-process, SQLite) with :func:`install_streaming`; kubelets are
small aiohttp apps on loopback that record what reached them.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from skiff.apiserver.app import make_app
from skiff.apiserver.streaming import install_streaming
from skiff.storage.sqlite import SqliteBackend

WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
              "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}


class RecordingKubelet:
    """Answers logs with the query it got; refuses upgrades as a kubelet would."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.server: TestServer | None = None

    def app(self) -> web.Application:
        async def logs(request: web.Request) -> web.Response:
            self.seen.append(request.path_qs)
            return web.Response(text=f"{request.path} {sorted(request.query.items())}\n")

        async def refuse(request: web.Request) -> web.Response:
            self.seen.append(request.path_qs)
            return web.Response(status=404, text='container not found ("c")')

        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{c}", logs)
        app.router.add_route("*", "/{verb}/{tail:.*}", refuse)
        return app


@pytest.fixture
async def kubelet() -> AsyncIterator[RecordingKubelet]:
    recording = RecordingKubelet()
    recording.server = TestServer(recording.app(), host="127.0.0.1")
    await recording.server.start_server()
    try:
        yield recording
    finally:
        await recording.server.close()


@pytest.fixture
async def api(tmp_path: Path, kubelet: RecordingKubelet) -> AsyncIterator[TestClient]:
    backend = SqliteBackend(str(tmp_path / "db"), compact_interval=0)
    app = make_app(backend)
    install_streaming(app, kubelet_scheme="http")
    client = TestClient(TestServer(app))
    await client.start_server()
    assert kubelet.server is not None
    try:
        await make_node(client, "real", "runc://1.1", kubelet.server.port)
        await make_node(client, "sim", "fake://0.1", 10250)
        yield client
    finally:
        await client.close()
        await backend.close()


async def make_node(client: TestClient, name: str, runtime: str, port: int | None) -> None:
    resp = await client.post("/api/v1/nodes", json={
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {"addresses": [{"type": "Hostname", "address": name},
                                 {"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                   "nodeInfo": {"containerRuntimeVersion": runtime}}})
    assert resp.status == 201, await resp.text()


async def make_pod(client: TestClient, name: str, node: str = "real", phase: str = "Running",
                   containers: tuple[str, ...] = ("c",), statuses: list[dict[str, Any]] | None = None) -> None:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    resp = await client.post("/api/v1/namespaces/default/pods", json={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    assert resp.status == 201, await resp.text()
    pod = await resp.json()
    pod["status"] = {"phase": phase, "containerStatuses": statuses or []}
    resp = await client.put(f"/api/v1/namespaces/default/pods/{name}/status", json=pod)
    assert resp.status == 200, await resp.text()


async def status_of(resp: Any) -> tuple[int, str]:
    body = await resp.json()
    assert body["kind"] == "Status" and body["code"] == resp.status
    return resp.status, body["message"]


async def test_logs_are_proxied_with_their_options(api: TestClient, kubelet: RecordingKubelet) -> None:
    await make_pod(api, "web")
    resp = await api.get("/api/v1/namespaces/default/pods/web/log?tailLines=2&timestamps=true&follow=false")
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert await resp.text() == ("/containerLogs/default/web/c "
                                 "[('follow', 'false'), ('tailLines', '2'), ('timestamps', 'true')]\n")


async def test_log_checks(api: TestClient) -> None:
    await make_pod(api, "two", containers=("a", "b"))
    await make_pod(api, "waiting", statuses=[{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}])
    await make_pod(api, "fresh", statuses=[{"name": "c", "state": {"running": {}}}])
    await make_pod(api, "pending", node="")
    base = "/api/v1/namespaces/default/pods"
    assert await status_of(await api.get(f"{base}/two/log")) == (
        400, "a container name must be specified for pod two, choose one of: [a b]")
    assert await status_of(await api.get(f"{base}/two/log?container=z")) == (
        400, "container z is not valid for pod two")
    assert await status_of(await api.get(f"{base}/waiting/log")) == (
        400, 'container "c" in pod "waiting" is waiting to start: ContainerCreating')
    assert await status_of(await api.get(f"{base}/fresh/log?previous=true")) == (
        400, 'previous terminated container "c" in pod "fresh" not found')
    assert await status_of(await api.get(f"{base}/fresh/log?tailLines=-3")) == (
        422, 'PodLogOptions "fresh" is invalid: tailLines: Invalid value: -3: '
             'must be greater than or equal to 0')
    assert await status_of(await api.get(f"{base}/missing/log")) == (404, 'pods "missing" not found')
    resp = await api.get(f"{base}/pending/log")          # not scheduled: nothing to show
    assert (resp.status, await resp.text()) == (200, "")


async def test_simulated_nodes_answer_like_a_kubelet_without_containers(api: TestClient) -> None:
    await make_pod(api, "sim", node="sim")
    resp = await api.get("/api/v1/namespaces/default/pods/sim/log")
    assert (resp.status, await resp.text()) == (200, "")
    resp = await api.get("/api/v1/namespaces/default/pods/sim/exec?command=ls&stdout=true",
                         headers=WS_HEADERS)
    assert (resp.status, await resp.text()) == (
        404, 'container "c" runs on simulated node sim (skiff up --runtime fake): there is no process to exec into')
    resp = await api.get("/api/v1/namespaces/default/pods/sim/portforward?ports=80", headers=WS_HEADERS)
    assert (resp.status, await resp.text()) == (
        404, "pod sim runs on simulated node sim (skiff up --runtime fake): there is no port to forward to")


async def test_exec_checks_and_upgrade_failures_pass_through(api: TestClient,
                                                            kubelet: RecordingKubelet) -> None:
    await make_pod(api, "web")
    await make_pod(api, "done", phase="Succeeded")
    await make_pod(api, "pending", node="", phase="Pending")
    base = "/api/v1/namespaces/default/pods"
    assert await status_of(await api.get(f"{base}/done/exec?command=ls&stdout=true", headers=WS_HEADERS)) == (
        400, "cannot exec into a container in a completed pod; current phase is Succeeded")
    assert await status_of(await api.post(f"{base}/done/attach?stdout=true")) == (
        400, "cannot attach a container in a completed pod; current phase is Succeeded")
    assert await status_of(await api.get(f"{base}/web/exec?stdout=true", headers=WS_HEADERS)) == (
        400, "you must specify at least 1 command")
    assert await status_of(await api.get(f"{base}/web/exec?command=ls", headers=WS_HEADERS)) == (
        400, "you must specify at least one of stdin, stdout, stderr")
    assert await status_of(await api.get(f"{base}/pending/exec?command=ls&stdout=true",
                                         headers=WS_HEADERS)) == (
        400, "pod pending does not have a host assigned")
    assert await status_of(await api.get(f"{base}/pending/portforward", headers=WS_HEADERS)) == (
        400, "unable to forward port because pod is not running. Current status=Pending")
    # the kubelet's own refusal reaches the client as the kubelet wrote it
    resp = await api.get(f"{base}/web/exec?command=ls&command=-l&stdout=true&tty=true", headers=WS_HEADERS)
    assert (resp.status, await resp.text()) == (404, 'container not found ("c")')
    assert kubelet.seen[-1] == "/exec/default/web/c?command=ls&command=-l&output=1&tty=1"
    resp = await api.get(f"{base}/web/portforward?ports=80", headers=WS_HEADERS)
    assert resp.status == 404 and kubelet.seen[-1] == "/portForward/default/web?ports=80"


async def test_an_unreachable_kubelet(api: TestClient) -> None:
    with socket.socket() as probe:          # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await make_node(api, "gone", "runc://1.1", port)
    await make_pod(api, "lost", node="gone")
    code, message = await status_of(await api.get("/api/v1/namespaces/default/pods/lost/log"))
    assert code == 500 and message.startswith(f"error dialing backend: dial tcp 127.0.0.1:{port}: ")
    code, message = await status_of(await api.get(
        "/api/v1/namespaces/default/pods/lost/exec?command=ls&stdout=true", headers=WS_HEADERS))
    assert code == 500 and "connection refused" in message.lower()
