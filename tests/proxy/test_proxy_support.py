"""Support for the service proxy tests: a node with pods, an API server, a proxy.

A :class:`Lab` is a network namespace standing for a node (made here, empty, no
way out of the machine) with a NodeNetwork inside (bridge ``skiff0``, pod CIDR
10.244.0.0/24, routes for the cluster and service CIDRs through the bridge),
three pods running busybox ``httpd`` that answer with their own name, a client
pod, the real API server in-process, and the proxy under test in the node
namespace. Cluster IPs are only ever dialled from those namespaces. Everything
is removed at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self

from apiserver_support import ApiServer
from background_support import start_task, stop_task
from skiff.client.resources import ENDPOINTSLICES, SERVICES
from skiff.client.rest import ApiClient
from skiff.kubelet.network import NodeNetwork, PodNetwork
from skiff.kubelet.network.netns import open_socket
from skiff.proxy.proxier import ServiceProxy

Obj = dict[str, Any]
NODE = "node-a"
POD_CIDR = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
#: An address the tests give the node namespace's loopback: the node's "own
#: address" that load balancer ingress points at (it exists only in that namespace).
NODE_LB_IP = "192.0.2.10"
HTTP_PORT = 8080
DEADLINE = 10.0


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=check)


def add_namespace() -> Path:
    name = f"skiffp-{secrets.token_hex(4)}"
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    return Path("/run/netns") / name


def delete_namespace(path: Path) -> None:
    if path.exists():
        run(["ip", "netns", "del", path.name], check=False)


@contextlib.asynccontextmanager
async def node_network(state_dir: Path, **options: Any) -> AsyncIterator[tuple[Path, NodeNetwork]]:
    """A fresh namespace standing for a node, with a NodeNetwork (``options``) set up
    in it: (namespace path, network). Torn down at the end; the namespace is deleted
    even when the network's teardown fails."""
    node_ns = add_namespace()
    try:
        network = NodeNetwork(state_dir=state_dir, node_netns=node_ns, **options)
        try:
            await network.setup()
            yield node_ns, network
        finally:
            await network.teardown()
    finally:
        delete_namespace(node_ns)


def nft_json(netns: Path | None, *args: str) -> list[Obj]:
    prefix = ["nsenter", f"--net={netns}"] if netns is not None else []
    listing: list[Obj] = json.loads(run([*prefix, "nft", "-j", *args]).stdout)["nftables"]
    return listing


def tables(netns: Path | None) -> set[str]:
    return {f"{e['table']['family']} {e['table']['name']}"
            for e in nft_json(netns, "list", "tables") if "table" in e}


def chain_names(netns: Path, table: str) -> set[str]:
    return {e["chain"]["name"] for e in nft_json(netns, "list", "table", "ip", table) if "chain" in e}


async def http_get(netns: Path, host: str, port: int, timeout: float = 5.0) -> str:
    """GET / from inside ``netns``; the body (the answering pod's name)."""
    sock = await open_socket(netns)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    with sock:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        await loop.sock_sendall(sock, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        chunks = []
        while True:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks).decode(errors="replace")
    head, _, body = response.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.") and " 200 " in head.split("\r\n")[0], head
    return body.strip()


async def connect_error(netns: Path, host: str, port: int, timeout: float = 5.0) -> tuple[int | None, float]:
    """Try to connect from ``netns``; (errno of the failure or None, seconds it took)."""
    sock = await open_socket(netns)
    sock.setblocking(False)
    started = time.monotonic()
    with sock:
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
        except OSError as error:
            return error.errno, time.monotonic() - started
    return None, time.monotonic() - started


def service(name: str, *, kind: str = "ClusterIP", port: int = 80, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": kind, "ports": [{"name": "http", "port": port, "targetPort": HTTP_PORT,
                                              "protocol": "TCP"}], **spec}}


def endpoint(pod: PodNetwork, *, ready: bool = True, serving: bool | None = None,
             terminating: bool = False, node: str = NODE) -> Obj:
    return {"addresses": [pod.ip], "nodeName": node,
            "conditions": {"ready": ready, "serving": ready if serving is None else serving,
                           "terminating": terminating}}


def endpoint_slice(service_name: str, endpoints: list[Obj], suffix: str = "1") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-{suffix}", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": HTTP_PORT, "protocol": "TCP"}],
            "endpoints": endpoints}


class NodeLab:
    """What the node labs share: a node namespace with a NodeNetwork, pods, the API
    server, and one exit stack that removes everything, also when starting fails.
    A lab's :meth:`_start` builds it (with :meth:`_start_node`, :meth:`_start_api`)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.node_ns: Path
        self.network: NodeNetwork
        self.pods: dict[str, PodNetwork] = {}
        self.api: ApiServer
        self.client: ApiClient
        self._stack = contextlib.AsyncExitStack()

    async def _start(self) -> None:
        raise NotImplementedError

    async def _start_node(self, **network_options: Any) -> None:
        self.node_ns, self.network = await self._stack.enter_async_context(
            node_network(self.tmp_path / "network", **network_options))

    async def _start_api(self) -> None:
        self.api = await self._stack.enter_async_context(ApiServer(self.tmp_path))
        self.client = self.api.client

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        await self._stack.aclose()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Lab(NodeLab):
    """Node namespace + NodeNetwork + pods + API server + proxy (see module docstring)."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.proxy: ServiceProxy
        self.table = f"skiff-proxy-t{secrets.token_hex(3)}"
        self._proxy_task: asyncio.Task[None] | None = None

    # -- pieces -----------------------------------------------------------------

    def start_httpd(self, pod: PodNetwork, name: str) -> None:
        root = self.tmp_path / "www" / name
        root.mkdir(parents=True)
        (root / "index.html").write_text(name + "\n")
        process = subprocess.Popen(
            ["nsenter", f"--net={pod.netns_path}", "busybox", "httpd", "-f",
             "-p", f"0.0.0.0:{HTTP_PORT}", "-h", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._stack.callback(process.wait)
        self._stack.callback(process.kill)

    async def wait_listening(self, pod: PodNetwork) -> None:
        assert pod.netns_path is not None
        deadline = time.monotonic() + DEADLINE
        while True:   # httpd binds a moment after it starts; a refused connect costs ~nothing
            try:
                await http_get(pod.netns_path, pod.ip, HTTP_PORT)
                return
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)

    def proxy_for_node(self) -> ServiceProxy:
        return ServiceProxy(node_name=NODE, cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR,
                            node_netns=self.node_ns, table=self.table)

    async def start_proxy(self) -> ServiceProxy:
        self.proxy = self.proxy_for_node()
        self._proxy_task = await start_task(self.proxy.run(self.client), self.proxy.started, "the proxy")
        return self.proxy

    async def stop_proxy(self) -> None:
        """Stop the proxy task; its rules stay (as after a crash or a restart)."""
        if self._proxy_task is not None:
            task, self._proxy_task = self._proxy_task, None
            await stop_task(task)

    async def wait_proxy(self, predicate: Callable[[], bool]) -> float:
        """Wait until the applied rules satisfy ``predicate``; the seconds it took."""
        started = time.monotonic()
        await asyncio.wait_for(self.proxy.wait_for(predicate), DEADLINE)
        return time.monotonic() - started

    def endpoints_of(self, service_name: str) -> set[str]:
        ports = self.proxy.endpoints(f"default/{service_name}")
        return {address for addresses in ports.values() for address in addresses}

    async def create_service(self, body: Obj, endpoints: list[Obj] | None = None) -> Obj:
        created: Obj = await self.client.create(SERVICES, body, namespace="default")
        if endpoints is not None:
            await self.client.create(ENDPOINTSLICES, endpoint_slice(body["metadata"]["name"], endpoints),
                                     namespace="default")
        return created

    def pod_names(self) -> list[str]:
        return sorted(name for name in self.pods if name.startswith("web-"))

    # -- lifecycle ----------------------------------------------------------------

    async def _start(self) -> None:
        await self._start_node(pod_cidr=POD_CIDR, cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR)
        run(["ip", "-n", self.node_ns.name, "addr", "add", f"{NODE_LB_IP}/32", "dev", "lo"])
        for name in ("web-0", "web-1", "web-2", "client"):
            self.pods[name] = await self.network.add_pod(str(uuid.uuid4()), name, "default")
        for name in self.pod_names():
            self.start_httpd(self.pods[name], name)
        for name in self.pod_names():
            await self.wait_listening(self.pods[name])
        await self._start_api()
        self._stack.push_async_callback(self.stop_proxy)
        await self.start_proxy()


def assert_root() -> None:
    if os.geteuid() != 0:
        raise RuntimeError("the service proxy tests need root (namespaces, veths, nftables)")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
