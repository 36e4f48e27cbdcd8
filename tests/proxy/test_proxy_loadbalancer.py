"""The built-in load-balancer controller against the real API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from apiserver_support import ApiServer
from background_support import running
from skiff.client.resources import EVENTS, NODES, SERVICES
from skiff.proxy.loadbalancer import LoadBalancerController, assign, ingress_ips, node_addresses
from test_proxy_support import service

Obj = dict[str, Any]
DEADLINE = 10.0


@contextlib.asynccontextmanager
async def controller(api: ApiServer, addresses: list[str] | None) -> AsyncIterator[LoadBalancerController]:
    lb = LoadBalancerController(api.client, addresses=addresses)
    started = asyncio.Event()
    async with running(lb.run(started=started), started, "the load balancer controller"):
        yield lb


async def ingress_becomes(api: ApiServer, lb: LoadBalancerController, name: str,
                          expected: list[str]) -> Obj:
    """Wait until the controller's cache shows ``expected``; then read it as a client."""
    def shows() -> bool:
        cached = lb.service(f"default/{name}")
        return cached is not None and ingress_ips(cached) == expected
    await asyncio.wait_for(lb.wait_for(shows), DEADLINE)
    svc: Obj = await api.client.get(SERVICES, name, namespace="default")
    assert ingress_ips(svc) == expected
    return svc


async def test_load_balancer_services_get_the_given_addresses(api: ApiServer) -> None:
    async with controller(api, ["192.0.2.10", "192.0.2.11"]) as lb:
        await api.client.create(SERVICES, service("web", kind="LoadBalancer"), namespace="default")
        svc = await ingress_becomes(api, lb, "web", ["192.0.2.10", "192.0.2.11"])
        assert svc["status"]["loadBalancer"]["ingress"][0] == {"ip": "192.0.2.10", "ipMode": "VIP"}
        # Same port: the later Service waits; another port is fine.
        await api.client.create(SERVICES, service("web2", kind="LoadBalancer"), namespace="default")
        await api.client.create(SERVICES, service("other", kind="LoadBalancer", port=81),
                                namespace="default")
        await ingress_becomes(api, lb, "other", ["192.0.2.10", "192.0.2.11"])
        assert ingress_ips(await api.client.get(SERVICES, "web2", namespace="default")) == []
        await lb.recorder.flush()
        events = {(e["involvedObject"]["name"], e["reason"]): e
                  for e in (await api.client.list(EVENTS, namespace="default")).items}
        assert events[("web2", "SyncLoadBalancerFailed")]["message"] == (
            "Error syncing load balancer: port 80/TCP is already taken by Service default/web; "
            "waiting for it to be released")
        assert events[("web2", "SyncLoadBalancerFailed")]["type"] == "Warning"
        assert ("web", "EnsuredLoadBalancer") in events
        await api.client.delete(SERVICES, "web", namespace="default")
        await ingress_becomes(api, lb, "web2", ["192.0.2.10", "192.0.2.11"])
        # Another class is someone else's; a type change clears ours.
        await api.client.create(SERVICES, service("classy", kind="LoadBalancer", port=82,
                                                  loadBalancerClass="example.com/lb"),
                                namespace="default")
        await api.client.patch(SERVICES, "other", {"spec": {
            "type": "ClusterIP", "externalTrafficPolicy": None, "allocateLoadBalancerNodePorts": None,
            "ports": [{"name": "http", "port": 81, "targetPort": 8080, "protocol": "TCP"}]}},
            namespace="default")
        await ingress_becomes(api, lb, "other", [])
        assert ingress_ips(await api.client.get(SERVICES, "classy", namespace="default")) == []


async def test_addresses_come_from_the_nodes_when_not_given(api: ApiServer) -> None:
    await api.client.create(NODES, {"metadata": {"name": "n1"}})
    await api.client.patch(NODES, "n1", {"status": {
        "addresses": [{"type": "InternalIP", "address": "192.0.2.21"},
                      {"type": "Hostname", "address": "n1"}],
        "conditions": [{"type": "Ready", "status": "True"}]}}, subresource="status")
    async with controller(api, None) as lb:
        await api.client.create(SERVICES, service("web", kind="LoadBalancer"), namespace="default")
        await ingress_becomes(api, lb, "web", ["192.0.2.21"])
        await api.client.create(NODES, {"metadata": {"name": "n2"}})
        await api.client.patch(NODES, "n2", {"status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.5"},
                          {"type": "ExternalIP", "address": "192.0.2.22"}]}}, subresource="status")
        await ingress_becomes(api, lb, "web", ["192.0.2.21", "192.0.2.22"])
        # A node turning NotReady drops out (heartbeats alone do not wake the controller).
        await api.client.patch(NODES, "n1", {"status": {
            "conditions": [{"type": "Ready", "status": "False"}]}}, subresource="status")
        await ingress_becomes(api, lb, "web", ["192.0.2.22"])


def test_assignment_and_node_addresses_units() -> None:
    def svc(name: str, created: str, *ports: int) -> Obj:
        return {"metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
                "spec": {"type": "LoadBalancer", "ports": [{"port": p} for p in ports]}}
    services = [svc("b", "2024-01-02T00:00:00Z", 80), svc("a", "2024-01-01T00:00:00Z", 80, 443),
                svc("c", "2024-01-03T00:00:00Z", 8080)]
    assert assign(services, ["192.0.2.1"]) == {"d/a": ["192.0.2.1"], "d/b": [], "d/c": ["192.0.2.1"]}
    assert assign(services, []) == {"d/a": [], "d/b": [], "d/c": []}
    nodes = [{"metadata": {"name": "x"}, "status": {
        "conditions": [{"type": "Ready", "status": "False"}],
        "addresses": [{"type": "InternalIP", "address": "192.0.2.9"}]}},
        {"metadata": {"name": "y"}, "status": {"addresses": [
            {"type": "InternalIP", "address": "fd00::1"}, {"type": "InternalIP", "address": "192.0.2.8"}]}}]
    assert node_addresses(nodes) == ["192.0.2.8"]
