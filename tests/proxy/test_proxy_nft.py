"""The nftables service proxy on a real kernel: a node namespace, pods answering
with their names, the real API server, real packets (only between namespaces
these tests create)."""

from __future__ import annotations

import asyncio
import collections
import errno
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from background_support import running
from skiff.client.resources import ENDPOINTSLICES, SERVICES
from skiff.kubelet.network.netns import open_socket
from skiff.proxy.loadbalancer import LoadBalancerController
from skiff.proxy.rules import Program
from test_proxy_support import (
    HTTP_PORT, NODE_LB_IP, Lab, assert_root, chain_names, connect_error, endpoint, http_get,
    nft_json, service, tables,
)

assert_root()


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    async with Lab(tmp_path) as node_lab:
        yield node_lab


async def answers(lab: Lab, host: str, port: int, count: int, client: str = "client") -> collections.Counter[str]:
    netns = lab.pods[client].netns_path
    assert netns is not None
    return collections.Counter([await http_get(netns, host, port) for _ in range(count)])


async def test_cluster_ip_balances_over_ready_endpoints_and_follows_readiness(lab: Lab) -> None:
    pods = [lab.pods[name] for name in lab.pod_names()]
    svc = await lab.create_service(service("web"), [endpoint(pod) for pod in pods])
    ip = svc["spec"]["clusterIP"]
    await lab.wait_proxy(lambda: len(lab.endpoints_of("web")) == 3)

    seen = await answers(lab, ip, 80, 60)
    assert set(seen) == {"web-0", "web-1", "web-2"}, seen

    # web-1 turns not ready: it leaves the rotation as soon as the rules change.
    slice_ = await lab.client.get(ENDPOINTSLICES, "web-1", namespace="default")
    slice_["endpoints"][1]["conditions"].update(ready=False, serving=False)
    await lab.client.update(ENDPOINTSLICES, slice_)
    await lab.wait_proxy(lambda: f"{pods[1].ip}:{HTTP_PORT}" not in lab.endpoints_of("web"))
    seen = await answers(lab, ip, 80, 30)
    assert set(seen) == {"web-0", "web-2"}, seen

    # None ready, one serving while terminating: that one keeps answering.
    slice_ = await lab.client.get(ENDPOINTSLICES, "web-1", namespace="default")
    slice_["endpoints"] = [endpoint(pods[0], ready=False, serving=False),
                           endpoint(pods[2], ready=False, serving=True, terminating=True)]
    await lab.client.update(ENDPOINTSLICES, slice_)
    await lab.wait_proxy(lambda: lab.endpoints_of("web") == {f"{pods[2].ip}:{HTTP_PORT}"})
    assert set(await answers(lab, ip, 80, 5)) == {"web-2"}


async def test_no_endpoints_is_refused_at_once(lab: Lab) -> None:
    client = lab.pods["client"].netns_path
    assert client is not None
    svc = await lab.create_service(service("empty"), [])
    ip = svc["spec"]["clusterIP"]
    await lab.wait_proxy(lambda: "default/empty" in lab.proxy.programs)
    code, took = await connect_error(client, ip, 80)
    assert code == errno.ECONNREFUSED and took < 1.0
    # From the node itself too, and a port the Service does not have.
    code, took = await connect_error(lab.node_ns, ip, 80)
    assert code == errno.ECONNREFUSED and took < 1.0
    code, took = await connect_error(client, ip, 81)
    assert code == errno.ECONNREFUSED and took < 1.0
    # An address of the service CIDR nobody has.
    code, took = await connect_error(client, "10.96.255.254", 80)
    assert code == errno.ECONNREFUSED and took < 1.0
    # A NodePort without endpoints, on loopback and on the node's address.
    svc = await lab.create_service(service("empty-np", kind="NodePort"), [])
    node_port = svc["spec"]["ports"][0]["nodePort"]
    await lab.wait_proxy(lambda: "default/empty-np" in lab.proxy.programs)
    for netns, address in ((lab.node_ns, "127.0.0.1"), (lab.node_ns, lab.network.node_ip),
                           (client, lab.network.node_ip)):
        code, took = await connect_error(netns, address, node_port)
        assert code == errno.ECONNREFUSED and took < 1.0, (netns, address)


async def test_session_affinity_pins_a_client(lab: Lab) -> None:
    pods = [lab.pods[name] for name in lab.pod_names()]
    svc = await lab.create_service(
        service("sticky", sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}}),
        [endpoint(pod) for pod in pods])
    ip = svc["spec"]["clusterIP"]
    await lab.wait_proxy(lambda: len(lab.endpoints_of("sticky")) == 3)
    assert len(set(await answers(lab, ip, 80, 20))) == 1
    # Another client (the node) is pinned too, independently.
    assert len({await http_get(lab.node_ns, ip, 80) for _ in range(10)}) == 1
    listing = nft_json(lab.node_ns, "list", "table", "ip", lab.table)
    affinity = [e["set"] for e in listing if "set" in e and e["set"]["name"].startswith("affinity-default/sticky/")]
    assert len(affinity) == 3
    remembered = [element["elem"] for s in affinity for element in s.get("elem", [])]
    assert len(remembered) == 2 and {e["timeout"] for e in remembered} == {300}    # two clients


async def test_node_port_from_loopback_and_node_ip_and_pods(lab: Lab) -> None:
    pods = [lab.pods[name] for name in lab.pod_names()]
    svc = await lab.create_service(service("np", kind="NodePort"), [endpoint(pod) for pod in pods])
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    await lab.wait_proxy(lambda: len(lab.endpoints_of("np")) == 3)
    names = set(lab.pod_names())
    assert {await http_get(lab.node_ns, "127.0.0.1", node_port) for _ in range(20)} <= names
    assert await http_get(lab.node_ns, lab.network.node_ip, node_port) in names
    client = lab.pods["client"].netns_path
    assert client is not None
    assert await http_get(client, lab.network.node_ip, node_port) in names
    # The ClusterIP of a NodePort Service works as usual.
    assert await http_get(client, svc["spec"]["clusterIP"], 80) in names


async def test_load_balancer_ingress_answers(lab: Lab) -> None:
    """The built-in controller gives the Service the node's address; the proxy answers there."""
    pods = [lab.pods[name] for name in lab.pod_names()]
    lb = LoadBalancerController(lab.client, addresses=[NODE_LB_IP])
    async with running(lb.run()):
        await lab.create_service(service("lb", kind="LoadBalancer", port=8000),
                                 [endpoint(pod) for pod in pods])
        await lab.wait_proxy(lambda: any(key.startswith(f"{NODE_LB_IP} . tcp . 8000") for key in
                                         lab.proxy.programs.get("default/lb", Program()).service_ips))
    names = set(lab.pod_names())
    assert await http_get(lab.node_ns, NODE_LB_IP, 8000) in names
    client = lab.pods["client"].netns_path
    assert client is not None
    assert await http_get(client, NODE_LB_IP, 8000) in names
    # Without endpoints, the load balancer address refuses at once too.
    await lab.client.delete(ENDPOINTSLICES, "lb-1", namespace="default")
    await lab.wait_proxy(lambda: not lab.endpoints_of("lb"))
    code, took = await connect_error(client, NODE_LB_IP, 8000)
    assert code == errno.ECONNREFUSED and took < 1.0
    code, took = await connect_error(lab.node_ns, NODE_LB_IP, 8000)
    assert code == errno.ECONNREFUSED and took < 1.0


async def test_hairpin_a_pod_reaches_itself_through_its_service(lab: Lab) -> None:
    web0 = lab.pods["web-0"]
    svc = await lab.create_service(service("solo"), [endpoint(web0)])
    await lab.wait_proxy(lambda: len(lab.endpoints_of("solo")) == 1)
    assert web0.netns_path is not None
    for _ in range(3):
        assert await http_get(web0.netns_path, svc["spec"]["clusterIP"], 80) == "web-0"


async def test_internal_traffic_policy_local_uses_this_nodes_endpoints_only(lab: Lab) -> None:
    pods = [lab.pods[name] for name in lab.pod_names()]
    svc = await lab.create_service(service("local", internalTrafficPolicy="Local"),
                                   [endpoint(pods[0], node="node-b"), endpoint(pods[1]),
                                    endpoint(pods[2], node="node-b")])
    await lab.wait_proxy(lambda: len(lab.endpoints_of("local")) == 3)
    assert set(await answers(lab, svc["spec"]["clusterIP"], 80, 15)) == {"web-1"}
    # No endpoint on this node: dropped here (kube-proxy's choice), not sent elsewhere.
    slice_ = await lab.client.get(ENDPOINTSLICES, "local-1", namespace="default")
    del slice_["endpoints"][1]
    await lab.client.update(ENDPOINTSLICES, slice_)
    await lab.wait_proxy(lambda: len(lab.endpoints_of("local")) == 2)
    verdicts = lab.proxy.programs["default/local"].no_endpoint_ips
    assert list(verdicts.values()) == ["drop"]


async def test_deleting_a_service_removes_its_rules(lab: Lab) -> None:
    pods = [lab.pods[name] for name in lab.pod_names()]
    svc = await lab.create_service(service("gone"), [endpoint(pod) for pod in pods])
    await lab.wait_proxy(lambda: len(lab.endpoints_of("gone")) == 3)
    assert "svc-default/gone/tcp/http" in chain_names(lab.node_ns, lab.table)
    await lab.client.delete(SERVICES, "gone", namespace="default")
    await lab.wait_proxy(lambda: "default/gone" not in lab.proxy.programs)
    assert not [name for name in chain_names(lab.node_ns, lab.table) if "default/gone/" in name]
    elements = [e for e in nft_json(lab.node_ns, "list", "map", "ip", lab.table, "service-ips")
                if "map" in e][0]["map"].get("elem", [])
    assert elements == []
    client = lab.pods["client"].netns_path
    assert client is not None
    code, took = await connect_error(client, svc["spec"]["clusterIP"], 80)
    assert code == errno.ECONNREFUSED and took < 1.0


async def test_restart_rebuilds_from_the_api_and_touches_no_other_table(lab: Lab) -> None:
    pods = [lab.pods[name] for name in lab.pod_names()]
    svc = await lab.create_service(service("web"), [endpoint(pod) for pod in pods])
    ip = svc["spec"]["clusterIP"]
    await lab.wait_proxy(lambda: len(lab.endpoints_of("web")) == 3)
    other = [e for e in nft_json(lab.node_ns, "list", "table", "inet", lab.network.table)]
    before_tables = tables(lab.node_ns)

    await lab.stop_proxy()
    assert await http_get(lab.pods["client"].netns_path, ip, 80) in lab.pod_names()  # type: ignore[arg-type]
    # While it is down, web-2 goes away and a new Service appears.
    slice_ = await lab.client.get(ENDPOINTSLICES, "web-1", namespace="default")
    slice_["endpoints"] = slice_["endpoints"][:2]
    await lab.client.update(ENDPOINTSLICES, slice_)
    late = await lab.create_service(service("late"), [endpoint(pods[2])])

    proxy = await lab.start_proxy()
    assert proxy.syncs[0].full and len(proxy.syncs) == 1
    assert lab.endpoints_of("web") == {f"{pods[0].ip}:{HTTP_PORT}", f"{pods[1].ip}:{HTTP_PORT}"}
    assert set(await answers(lab, ip, 80, 20)) <= {"web-0", "web-1"}
    assert await http_get(lab.pods["client"].netns_path, late["spec"]["clusterIP"], 80) == "web-2"  # type: ignore[arg-type]
    assert tables(lab.node_ns) == before_tables
    assert nft_json(lab.node_ns, "list", "table", "inet", lab.network.table) == other


async def test_external_name_services_get_nothing(lab: Lab) -> None:
    await lab.client.create(SERVICES, {"metadata": {"name": "ext", "namespace": "default"},
                                       "spec": {"type": "ExternalName", "externalName": "example.com"}},
                            namespace="default")
    marker = await lab.create_service(service("marker"), [])
    await lab.wait_proxy(lambda: "default/marker" in lab.proxy.programs)
    assert "default/ext" not in lab.proxy.programs
    assert not [name for name in chain_names(lab.node_ns, lab.table) if "/ext/" in name]
    assert marker["spec"]["clusterIP"]



async def test_udp_service(lab: Lab) -> None:
    """A UDP echo in two pods (answering with their names) behind one ClusterIP."""
    servers = []
    for name in ("web-0", "web-1"):
        sock = await open_socket(lab.pods[name].netns_path, socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 5353))
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda name=name: _Echo(name.encode()), sock=sock)
        servers.append(transport)
    try:
        body = service("dns", ports=[{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}])
        slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": "dns-1", "namespace": "default",
                               "labels": {"kubernetes.io/service-name": "dns"}},
                  "addressType": "IPv4", "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
                  "endpoints": [endpoint(lab.pods["web-0"]), endpoint(lab.pods["web-1"])]}
        svc = await lab.client.create(SERVICES, body, namespace="default")
        await lab.client.create(ENDPOINTSLICES, slice_, namespace="default")
        await lab.wait_proxy(lambda: len(lab.endpoints_of("dns")) == 2)
        seen = set()
        for _ in range(30):     # a new source port each time: a new conntrack entry, a new pick
            sock = await open_socket(lab.pods["client"].netns_path, socket.AF_INET, socket.SOCK_DGRAM)
            with sock:
                sock.setblocking(False)
                loop = asyncio.get_running_loop()
                await loop.sock_connect(sock, (svc["spec"]["clusterIP"], 53))
                await loop.sock_sendall(sock, b"who")
                seen.add((await asyncio.wait_for(loop.sock_recv(sock, 100), 5)).decode())
        assert seen == {"web-0", "web-1"}
    finally:
        for transport in servers:
            transport.close()


class _Echo(asyncio.DatagramProtocol):
    def __init__(self, name: bytes) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name, addr)
