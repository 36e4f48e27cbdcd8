"""Incremental syncs end where a full sync would: random Service and endpoint
churn through the real API server, applied one transaction at a time by one
proxy, compared with the table a freshly started proxy builds from scratch.
(A namespace of its own, no pods, no traffic: only loopback, no routes at all.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from apiserver_support import ApiServer
from background_support import running
from skiff.client.resources import ENDPOINTSLICES, SERVICES
from skiff.proxy.preflight import RoutesMissing, uncovered
from skiff.proxy.proxier import ServiceProxy
from test_proxy_support import (
    CLUSTER_CIDR, DEADLINE, SERVICE_CIDR, add_namespace, assert_root, delete_namespace,
    nft_json, tables,
)

assert_root()
Obj = dict[str, Any]


@contextlib.asynccontextmanager
async def proxy_running(api: ApiServer, netns: Path, table: str,
                        resync_period: float = 3600.0) -> AsyncIterator[ServiceProxy]:
    proxy = ServiceProxy(node_name="node-a", cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR,
                         node_netns=netns, table=table, require_routes=False,   # no traffic here
                         resync_period=resync_period)
    async with running(proxy.run(api.client), proxy.started, "the proxy"):
        yield proxy


def normalized(netns: Path, table: str) -> dict[str, Any]:
    """The table's content without handles, names of the table, or element order."""
    content: dict[str, Any] = {}
    for entry in nft_json(netns, "list", "table", "ip", table):
        kind, body = next(iter(entry.items()))
        if kind in ("metainfo", "table"):
            continue
        body = {k: v for k, v in body.items() if k not in ("handle", "table")}
        if kind == "rule":
            content.setdefault(f"chain {body['chain']}", []).append(json.dumps(body["expr"], sort_keys=True))
        elif kind in ("map", "set"):
            body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body.get("elem", []))
            content[f"{kind} {body['name']}"] = body
        elif kind == "chain":
            content.setdefault(f"chain {body['name']}", [])
    return content


def random_service(rng: random.Random, name: str) -> Obj:
    kind = rng.choice(["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"])
    spec: Obj = {"type": kind, "ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        *([{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}] if rng.random() < 0.4 else [])]}
    if rng.random() < 0.3:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": rng.choice([60, 600])}}
    if rng.random() < 0.3:
        spec["internalTrafficPolicy"] = "Local"
    if kind != "ClusterIP" and rng.random() < 0.4:
        spec["externalTrafficPolicy"] = "Local"
    if rng.random() < 0.2:
        spec["externalIPs"] = [f"192.0.2.{rng.randrange(1, 5)}"]     # collisions on purpose
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def random_slice(rng: random.Random, name: str) -> Obj:
    endpoints = [{"addresses": [f"10.244.0.{rng.randrange(2, 30)}"],
                  "nodeName": rng.choice(["node-a", "node-b"]),
                  "conditions": {"ready": (ready := rng.random() < 0.7),
                                 "serving": ready or rng.random() < 0.5,
                                 "terminating": rng.random() < 0.3}}
                 for _ in range(rng.randrange(0, 5))]
    return {"metadata": {"name": f"{name}-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": endpoints}


async def churn(api: ApiServer, rng: random.Random, names: list[str], alive: set[str]) -> None:
    """Change four random Services: create the absent ones; delete, re-slice,
    retype or re-time (session affinity) the others."""
    for name in rng.sample(names, 4):
        action = rng.random()
        if name not in alive:
            await api.client.create(SERVICES, random_service(rng, name), namespace="default")
            await api.client.create(ENDPOINTSLICES, random_slice(rng, name), namespace="default")
            alive.add(name)
        elif action < 0.2:
            await api.client.delete(SERVICES, name, namespace="default")
            await api.client.delete(ENDPOINTSLICES, f"{name}-1", namespace="default")
            alive.discard(name)
        elif action < 0.6:
            old = await api.client.get(ENDPOINTSLICES, f"{name}-1", namespace="default")
            fresh = random_slice(rng, name)
            fresh["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            await api.client.update(ENDPOINTSLICES, fresh, namespace="default")
        elif action < 0.8:
            await api.client.patch(SERVICES, name, {"spec": {
                "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": rng.choice([60, 600, 900])}}}},
                namespace="default")
        else:
            await api.client.patch(SERVICES, name, {"spec": {
                "internalTrafficPolicy": rng.choice(["Local", "Cluster"]),
                "externalIPs": [f"192.0.2.{rng.randrange(1, 5)}"]}}, namespace="default")


async def test_incremental_syncs_match_a_full_rebuild(api: ApiServer) -> None:
    rng = random.Random(20)
    netns = add_namespace()
    try:
        names = [f"s{i}" for i in range(8)]
        alive: set[str] = set()
        await churn(api, rng, names, alive)
        async with proxy_running(api, netns, "skiff-proxy-inc") as proxy:
            for round_ in range(10):
                await churn(api, rng, names, alive)
                mark = await marker(api, round_)
                await asyncio.wait_for(proxy.wait_for(lambda: _caught_up(proxy, mark)), DEADLINE)
                async with proxy_running(api, netns, "skiff-proxy-full") as fresh:
                    await asyncio.wait_for(fresh.wait_for(lambda: _caught_up(fresh, mark)), DEADLINE)
                    assert set(fresh.programs) == set(proxy.programs), round_
                    assert normalized(netns, "skiff-proxy-inc") == normalized(netns, "skiff-proxy-full"), round_
                    await fresh.delete_rules()
            assert any(not s.full for s in proxy.syncs)
            assert proxy.failures == 0
            await proxy.delete_rules()
        assert tables(netns) == set()
    finally:
        delete_namespace(netns)


async def marker(api: ApiServer, round_: int) -> tuple[str, str]:
    """Write a marker Service and slice last: a proxy whose caches hold them has seen
    everything written before (watch events arrive in order)."""
    svc, slice_ = random_service(random.Random(0), "zz-marker"), random_slice(random.Random(0), "zz-marker")
    svc["metadata"]["annotations"] = slice_["metadata"]["annotations"] = {"round": str(round_)}
    if round_ == 0:
        svc = await api.client.create(SERVICES, svc, namespace="default")
        slice_ = await api.client.create(ENDPOINTSLICES, slice_, namespace="default")
    else:
        svc = await api.client.patch(SERVICES, "zz-marker", {"metadata": svc["metadata"]},
                                     namespace="default")
        slice_ = await api.client.patch(ENDPOINTSLICES, "zz-marker-1", {"metadata": slice_["metadata"]},
                                        namespace="default")
    return svc["metadata"]["resourceVersion"], slice_["metadata"]["resourceVersion"]


def _caught_up(proxy: ServiceProxy, mark: tuple[str, str]) -> bool:
    """The proxy's caches hold the markers and nothing is waiting to be applied."""
    assert proxy._services is not None and proxy._slices is not None
    svc, slice_ = proxy._services.get("default/zz-marker"), proxy._slices.get("default/zz-marker-1")
    return (svc is not None and slice_ is not None and proxy.idle
            and (svc["metadata"]["resourceVersion"], slice_["metadata"]["resourceVersion"]) == mark)


async def test_the_proxy_refuses_a_namespace_without_cluster_routes(api: ApiServer) -> None:
    netns = add_namespace()
    try:
        proxy = ServiceProxy(node_name="node-a", cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR,
                             node_netns=netns, table="skiff-proxy-x")
        with pytest.raises(RoutesMissing, match="10.244.0.0/16, 10.96.0.0/12"):
            await asyncio.wait_for(proxy.run(api.client), DEADLINE)
        assert tables(netns) == set()
    finally:
        delete_namespace(netns)


def test_route_coverage() -> None:
    routes = [{"dst": "default", "gateway": "192.0.2.1"}, {"dst": "10.244.0.0/16", "dev": "skiff0"},
              {"dst": "10.96.0.0/12", "type": "unreachable"}, {"dst": "10.0.0.0/8", "dev": "eth1"}]
    assert uncovered(routes, ["10.244.0.0/16", "10.96.0.0/12"]) == []
    assert uncovered(routes[:3], ["10.244.0.0/16", "10.96.0.0/12"]) == ["10.96.0.0/12"]


async def test_the_periodic_full_sync_repairs_the_table(api: ApiServer) -> None:
    await api.client.create(SERVICES, random_service(random.Random(1), "web"), namespace="default")
    netns = add_namespace()
    try:
        async with proxy_running(api, netns, "skiff-proxy-r", resync_period=0.3) as proxy:
            before = normalized(netns, "skiff-proxy-r")
            await proxy.nft.run("delete", "table", "ip", "skiff-proxy-r")      # someone else did it
            assert "ip skiff-proxy-r" not in tables(netns)
            count = len(proxy.syncs)
            await asyncio.wait_for(proxy.wait_for(lambda: len(proxy.syncs) > count), DEADLINE)
            assert proxy.syncs[-1].full and normalized(netns, "skiff-proxy-r") == before
            await proxy.delete_rules()
    finally:
        delete_namespace(netns)
