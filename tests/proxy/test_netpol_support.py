"""Support for the NetworkPolicy tests against the kernel: a node with pods, the API
server, the agent.

A :class:`PolicyLab` is a network namespace standing for a node (made here, empty,
no way out of the machine) with a NodeNetwork inside (bridge ``skiff-np0``, pod
CIDR 10.244.0.0/24, routes for the cluster and service CIDRs through the bridge);
four pods, each with TCP servers on ports 8080 and 9090 that answer with the
client's address as they saw it::

    a   default    access=true
    b   default    app=db        (container port 8080 named "http")
    c   default    (no labels)
    d   frontend   (namespace labelled team=frontend)

the matching Pod objects (with their IPs in status) in the real API server,
in-process, and the agent under test in the node namespace. Traffic goes only
between those namespaces. Everything is removed at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import errno
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from background_support import start_task, stop_task
from skiff.client.resources import NAMESPACES, PODS
from skiff.proxy.netpol.agent import NETWORKPOLICIES, NetworkPolicyAgent
from test_proxy_support import DEADLINE, NodeLab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kubelet" / "network"))
from podnet_support import PeerAddressServer, ask_peer_address  # noqa: E402

Obj = dict[str, Any]
NODE = "node-np"
BRIDGE = "skiff-np0"
PORTS = (8080, 9090)
BLOCKED = "blocked"          # the connect failed with EHOSTUNREACH (rejected by policy)

POD_SPECS: dict[str, tuple[str, dict[str, str]]] = {
    "a": ("default", {"access": "true"}),
    "b": ("default", {"app": "db"}),
    "c": ("default", {}),
    "d": ("frontend", {}),
}


def pod_object(name: str, namespace: str, labels: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": NODE, "containers": [{
                "name": "main", "image": "busybox",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]}}


def network_policy(name: str, spec: Obj, namespace: str = "default") -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


class PolicyLab(NodeLab):
    """Node namespace + NodeNetwork + pods + API server + agent (module docstring)."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.agent: NetworkPolicyAgent
        self._agent_task: asyncio.Task[None] | None = None

    def ip(self, name: str) -> str:
        return self.pods[name].ip

    def netns(self, name: str) -> Path:
        path = self.pods[name].netns_path
        assert path is not None
        return path

    # -- traffic --------------------------------------------------------------------

    async def connect(self, source: str | None, host: str, port: int = 8080) -> str:
        """Connect from pod ``source`` (None: the node itself) to host:port; the
        address the server saw, or BLOCKED. Anything else is an error."""
        netns = self.node_ns if source is None else self.netns(source)
        try:
            return await ask_peer_address(netns, host, port)
        except OSError as error:
            if error.errno == errno.EHOSTUNREACH:
                return BLOCKED
            raise

    async def reaches(self, source: str | None, target: str, port: int = 8080) -> bool:
        seen = await self.connect(source, self.ip(target), port)
        if seen == BLOCKED:
            return False
        expected = self.network.gateway.ip if source is None else self.ip(source)
        assert seen == str(expected), seen            # the server saw the client's own address
        return True

    # -- policy ---------------------------------------------------------------------

    async def apply(self, name: str, spec: Obj, namespace: str = "default") -> None:
        await self.client.create(NETWORKPOLICIES, network_policy(name, spec, namespace),
                                 namespace=namespace)

    async def delete(self, name: str, namespace: str = "default") -> None:
        await self.client.delete(NETWORKPOLICIES, name, namespace=namespace)

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait (with a deadline) until the agent has applied a state where ``predicate`` holds."""
        await asyncio.wait_for(self.agent.wait_for(lambda: self.agent.idle and predicate()), DEADLINE)

    async def start_agent(self, *, delete_on_exit: bool = True) -> NetworkPolicyAgent:
        self.agent = NetworkPolicyAgent(node_name=NODE, bridge_name=BRIDGE, node_netns=self.node_ns,
                                        coalesce=0.01)
        self._agent_task = await start_task(self.agent.run(self.client, delete_on_exit=delete_on_exit),
                                            self.agent.started, "the agent")
        return self.agent

    async def stop_agent(self) -> None:
        if self._agent_task is not None:
            task, self._agent_task = self._agent_task, None
            await stop_task(task)

    # -- lifecycle ----------------------------------------------------------------

    async def _start(self) -> None:
        await self._start_node(pod_cidr="10.244.0.0/24", bridge_name=BRIDGE)
        for name, (namespace, _) in POD_SPECS.items():
            self.pods[name] = await self.network.add_pod(str(uuid.uuid4()), name, namespace)
            for port in PORTS:
                server = await PeerAddressServer.start(self.netns(name), port)
                self._stack.push_async_callback(server.close)
        await self._start_api()
        await self.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "frontend", "labels": {"team": "frontend"}}})
        for name, (namespace, labels) in POD_SPECS.items():
            await self.client.create(PODS, pod_object(name, namespace, labels), namespace=namespace)
            ip = self.ip(name)
            await self.client.patch(PODS, name, {"status": {
                "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}},
                namespace=namespace, subresource="status")
        self._stack.push_async_callback(self.stop_agent)
        await self.start_agent()
