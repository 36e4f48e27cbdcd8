"""A whole process-runtime node run by ``nobody`` (no root, no capabilities), in both
isolation modes: pods run and log, exec probes, httpGet against the pod IP,
port-forward and a NodePort through the userspace proxy; killing the node leaves the
containers running and the next node adopts them; stopping it leaves nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from process_support import (condition, container, marked_processes, nobody_dir, nobody_python, pod,
                             running, state, wait_gone, wait_pod)

from skiff.client.resources import ENDPOINTSLICES, NODES, PODS, SECRETS, SERVICES
from skiff.client.rest import ApiClient

RUNNER = Path(__file__).with_name("node_runner.py")
FAST = {"periodSeconds": 1, "failureThreshold": 1}


class NobodyNode:
    """node_runner.py as ``nobody``, in a data directory it owns."""

    def __init__(self, server: str, data_dir: Path, archive: Path, isolation: str) -> None:
        self.args = [*nobody_python(), str(RUNNER), server, str(data_dir), str(archive), isolation]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(*self.args, stdout=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert line == b"ready\n", f"the node did not start (exit {await self.process.wait()})"

    async def end(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None:
            return 0
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), 30)
        self.process = None
        return code


@pytest.fixture
async def nobody_data(busybox_archive: Path) -> AsyncIterator[Path]:
    data = nobody_dir()
    shutil.copy(busybox_archive, data / "busybox.tar")
    shutil.chown(data / "busybox.tar", "nobody", "nogroup")
    try:
        yield data
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def kubelet_port(client: ApiClient) -> int:
    node = await client.get(NODES, "node-1")
    return int(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])


async def port_forward(port: int, pod_port: int, request: bytes) -> bytes:
    """One request through the kubelet's websocket port-forward (v4.channel.k8s.io)."""
    url = f"http://127.0.0.1:{port}/portForward/default/web?ports={pod_port}"
    reply = b""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            for _ in range(2):                      # the port number, on data and error channels
                await ws.receive_bytes(timeout=10)
            await ws.send_bytes(b"\0" + request)
            while True:
                message = await ws.receive(timeout=10)
                if message.type != aiohttp.WSMsgType.BINARY:
                    return reply
                assert message.data[0] == 0, message.data[1:]
                reply += message.data[1:]
                if reply.endswith(b"forwarded\n"):
                    return reply


@pytest.mark.parametrize("isolation", ["userns", "plain"])
async def test_a_node_run_by_nobody(client: ApiClient, nobody_data: Path, isolation: str,
                                    marker: str, unused_tcp_port_factory) -> None:
    web_port = unused_tcp_port_factory()
    node = NobodyNode(client.base_url, nobody_data, nobody_data / "busybox.tar", isolation)
    await client.create(SECRETS, {"metadata": {"name": "token"}, "stringData": {"value": "s3cret"}},
                        namespace="default")
    script = ("id -u; cat secret/value; echo; mkdir -p www; setsid sleep 3600 & "  # an escapee
              "echo forwarded > www/index.html; exec httpd -f -p 127.0.0.1:%d -h www" % web_port)
    web = container("web", script, marker, ports=[{"containerPort": web_port}],
                    readinessProbe={"exec": {"command": ["sh", "-c", "test -e www/index.html"]}, **FAST},
                    livenessProbe={"httpGet": {"path": "/", "port": web_port}, **FAST},
                    startupProbe={"tcpSocket": {"port": web_port}, "periodSeconds": 1, "failureThreshold": 30},
                    volumeMounts=[{"name": "secret", "mountPath": "/secret"}])
    try:
        await node.start()
        await client.create(PODS, pod("web", web, volumes=[{"name": "secret", "secret": {"secretName": "token"}}]),
                            namespace="default")
        up = await wait_pod(client, "web", lambda p: condition(p, "Ready") == "True")
        before = state(up, "web")
        kubelet = await kubelet_port(client)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{kubelet}/containerLogs/default/web/web") as answer:
                logs = (await answer.text()).splitlines()
        uid_inside = "0" if isolation == "userns" else "65534"        # root of its namespace / nobody
        assert logs[:2] == [uid_inside, "s3cret"]
        assert (await port_forward(kubelet, web_port, b"GET / HTTP/1.0\r\n\r\n")).endswith(b"\r\n\r\nforwarded\n")

        service = await client.create(SERVICES, {"metadata": {"name": "web"}, "spec": {
            "type": "NodePort", "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": web_port}]}}, namespace="default")
        node_port = service["spec"]["ports"][0]["nodePort"]
        await client.create(ENDPOINTSLICES, {
            "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"port": web_port, "protocol": "TCP", "name": ""}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}, namespace="default")
        assert (await get_when_listening(node_port)).endswith(b"forwarded\n")

        await node.end(signal.SIGKILL)              # a crash: the containers keep running
        assert marked_processes(marker), "the container died with its node"
        await node.start()
        await client.patch(PODS, "web", {"metadata": {"labels": {"poke": "1"}}}, namespace="default")
        after = await wait_pod(client, "web", lambda p: p["metadata"].get("labels", {}).get("poke") == "1"
                               and running(p) and condition(p, "Ready") == "True")
        assert state(after, "web")["containerID"] == before["containerID"]
        assert state(after, "web")["restartCount"] == before["restartCount"] == 0

        await client.delete(PODS, "web", namespace="default")
        await wait_gone(client, "web")
        assert marked_processes(marker) == []
    finally:
        code = await node.end()
    assert code == 0
    assert marked_processes(marker) == [] and marked_processes(str(nobody_data)) == []
    left = [p for p in (nobody_data / "kubelet" / "runtime" / "containers").iterdir()]
    assert left == []
    assert os.stat(nobody_data / "kubelet").st_uid != 0          # it all belonged to nobody


async def get_when_listening(port: int) -> bytes:
    """GET / on 127.0.0.1:port once the userspace proxy listens there."""
    for _ in range(100):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            await asyncio.sleep(0.05)
            continue
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        try:
            return await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")
