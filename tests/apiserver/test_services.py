"""Service ClusterIP and NodePort allocation, and its rebuild from the store."""

from __future__ import annotations

import ipaddress
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from apiserver_kinds import kinds_registry
from apiserver_support import http_client

SVCS = "/api/v1/namespaces/default/services"
MERGE = {"Content-Type": "application/merge-patch+json"}


def svc(name: str, type_: str = "ClusterIP", ip: str = "", node_port: int = 0) -> dict[str, Any]:
    port: dict[str, Any] = {"port": 80, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    spec: dict[str, Any] = {"type": type_, "ports": [port]}
    if ip:
        spec["clusterIP"] = ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def test_cluster_ips(client: TestClient) -> None:
    a = await (await client.post(SVCS, json=svc("a"))).json()
    ip = ipaddress.ip_address(a["spec"]["clusterIP"])
    assert ip in ipaddress.ip_network("10.96.0.0/12") and str(ip) not in ("10.96.0.0", "10.96.0.1")
    assert a["spec"]["clusterIPs"] == [str(ip)]
    r = await client.post(SVCS, json=svc("b", ip="10.96.0.50"))
    assert (await r.json())["spec"]["clusterIP"] == "10.96.0.50"
    r = await client.post(SVCS, json=svc("c", ip="10.96.0.50"))
    assert r.status == 422
    assert (await r.json())["message"] == ('Service "c" is invalid: spec.clusterIPs: Invalid value: '
                                           '[]string{"10.96.0.50"}: failed to allocate IP 10.96.0.50: '
                                           'provided IP is already allocated')
    r = await client.post(SVCS, json=svc("d", ip="192.168.1.1"))
    assert r.status == 422 and "not in the valid range" in (await r.json())["message"]
    headless = await (await client.post(SVCS, json=svc("h", ip="None"))).json()
    assert headless["spec"]["clusterIP"] == "None"
    await client.delete(f"{SVCS}/b")
    r = await client.post(SVCS, json=svc("c", ip="10.96.0.50"))  # released on delete
    assert r.status == 201
    r = await client.patch(f"{SVCS}/c", json={"spec": {"clusterIP": "10.96.0.51"}}, headers=MERGE)
    assert r.status == 422 and "may not change once set" in (await r.json())["message"]


async def test_node_ports(client: TestClient) -> None:
    a = await (await client.post(SVCS, json=svc("a", "NodePort"))).json()
    port = a["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    r = await client.post(SVCS, json=svc("b", "NodePort", node_port=port))
    assert r.status == 422
    assert (await r.json())["message"] == (f'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: '
                                           f'{port}: provided port is already allocated')
    # a failed create gives back its ClusterIP: no leak
    # updates keep the port; a type change to ClusterIP releases it
    full = await (await client.get(f"{SVCS}/a")).json()
    full["spec"]["ports"][0].pop("nodePort")
    kept = await (await client.put(f"{SVCS}/a", json=full)).json()
    assert kept["spec"]["ports"][0]["nodePort"] == port
    r = await client.patch(f"{SVCS}/a", json={"spec": {"type": "ClusterIP"}}, headers=MERGE)
    assert "nodePort" not in (await r.json())["spec"]["ports"][0]
    r = await client.post(SVCS, json=svc("b", "NodePort", node_port=port))
    assert r.status == 201
    r = await client.post(SVCS, json=svc("c", "NodePort", node_port=80))
    assert r.status == 422 and "The range of valid ports is 30000-32767" in (await r.json())["message"]


async def test_allocations_survive_restart(tmp_path: Path) -> None:
    def start() -> AbstractAsyncContextManager[TestClient]:
        return http_client(tmp_path / "db", registry=kinds_registry(), service_cidr="10.0.0.0/29",
                           node_port_range=(30000, 30001))

    async with start() as client:
        taken = set()
        for name in ("a", "b"):
            body = await (await client.post(SVCS, json=svc(name, "NodePort"))).json()
            taken.add(body["spec"]["clusterIP"])
        r = await client.post(SVCS, json=svc("c", "NodePort"))
        assert r.status == 422  # no NodePort left in a range of two
        kubernetes = await (await client.get(f"{SVCS}/kubernetes")).json()
        assert kubernetes["spec"]["clusterIP"] == "10.0.0.1"
    async with start() as client:  # bootstrap again: idempotent, allocations rebuilt
        names = [i["metadata"]["name"] for i in (await (await client.get(SVCS)).json())["items"]]
        assert names == ["a", "b", "kubernetes"]
        r = await client.post(SVCS, json=svc("c", "NodePort"))
        assert r.status == 422  # the rebuilt allocator knows both ports are taken
        # /29: .2-.6 are usable for dynamic picks: a and b hold two, three are left
        for name in ("d", "e", "f"):
            r = await client.post(SVCS, json=svc(name))
            assert r.status == 201
            assert (await r.json())["spec"]["clusterIP"] not in taken
        r = await client.post(SVCS, json=svc("g"))
        assert r.status == 422 and "range is full" in (await r.json())["message"]


async def test_load_balancer_ports(client: TestClient) -> None:
    lb = svc("lb", "LoadBalancer")
    lb["spec"]["externalTrafficPolicy"] = "Local"
    created = await (await client.post(SVCS, json=lb)).json()
    health = created["spec"]["healthCheckNodePort"]
    node_port = created["spec"]["ports"][0]["nodePort"]
    assert 30000 <= health <= 32767 and health != node_port
    r = await client.post(SVCS, json=svc("x", "NodePort", node_port=health))
    assert r.status == 422  # the health check port is taken too
    r = await client.patch(f"{SVCS}/lb", json={"spec": {"externalTrafficPolicy": "Cluster"}}, headers=MERGE)
    assert "healthCheckNodePort" not in (await r.json())["spec"]
    r = await client.post(SVCS, json=svc("x", "NodePort", node_port=health))
    assert r.status == 201  # released by the update
    quiet = svc("quiet", "LoadBalancer")
    quiet["spec"]["allocateLoadBalancerNodePorts"] = False
    created = await (await client.post(SVCS, json=quiet)).json()
    assert "nodePort" not in created["spec"]["ports"][0]
