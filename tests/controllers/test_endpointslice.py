"""The EndpointSlice controller against the real API server (pods with hand-set status)."""

from __future__ import annotations

from typing import Any, Callable

from housekeeping_support import ApiServer
from skiff.client.resources import ENDPOINTSLICES, PODS, SERVICES
from test_endpoints_support import (  # noqa: F401  (api is a fixture)
    MAX_PER_SLICE, api, observing, pod, release, running, service, set_status, start_pod,
)

Obj = dict[str, Any]
MANAGED = "endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io"


def of_service(name: str) -> str:
    return f"kubernetes.io/service-name={name}"


def endpoints(slices: list[Obj]) -> dict[str, Obj]:
    """Every endpoint of these slices by its first address."""
    return {e["addresses"][0]: e for s in slices for e in s.get("endpoints") or []}


def with_count(count: int, extra: Callable[[list[Obj]], bool] = lambda s: True
               ) -> Callable[[list[Obj]], list[Obj] | None]:
    def check(slices: list[Obj]) -> list[Obj] | None:
        return slices if len(endpoints(slices)) == count and extra(slices) else None
    return check


async def test_slice_shape(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTSLICES, label_selector=of_service("web")) as obs:
        svc = await client.create(SERVICES, service("web", {"app": "web"}, labels={"team": "a"}))
        web0 = await start_pod(client, pod("web-0", {"app": "web"}, hostname="web-0",
                                           subdomain="web"), "10.244.0.10")
        await start_pod(client, pod("web-1", {"app": "web"}, node_name="node-b"), "10.244.1.11",
                        ready=False)
        [slice_] = await obs.wait_for(with_count(2), what="2 endpoints")
    meta = slice_["metadata"]
    assert meta["name"].startswith("web-") and len(meta["name"]) > len("web-")
    assert meta["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                              "endpointslice.kubernetes.io/managed-by":
                                  "endpointslice-controller.k8s.io"}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                        "uid": svc["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert meta["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    eps = endpoints([slice_])
    assert eps["10.244.0.10"] == {
        "addresses": ["10.244.0.10"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "hostname": "web-0",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0",
                      "uid": web0["metadata"]["uid"]},
        "nodeName": "node-a", "zone": "zone-1"}
    assert eps["10.244.1.11"]["conditions"] == {"ready": False, "serving": False,
                                                "terminating": False}
    assert "zone" not in eps["10.244.1.11"] and eps["10.244.1.11"]["nodeName"] == "node-b"


async def test_terminating_endpoints_stay_with_their_conditions(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTSLICES, label_selector=of_service("db")) as obs:
        await client.create(SERVICES, service("db", {"app": "db"}))
        await client.create(SERVICES, service("db-all", {"app": "db"}, publish=True))
        await start_pod(client, pod("db-0", {"app": "db"}, finalizer=True), "10.244.0.5")
        try:
            await obs.wait_for(with_count(1), what="one endpoint")
            await client.delete(PODS, "db-0", namespace="default")
            [slice_] = await obs.wait_for(with_count(1, lambda s: endpoints(s)["10.244.0.5"][
                "conditions"]["terminating"]), what="terminating endpoint")
            assert endpoints([slice_])["10.244.0.5"]["conditions"] == {
                "ready": False, "serving": True, "terminating": True}
            async with observing(client, ENDPOINTSLICES,
                                 label_selector=of_service("db-all")) as published:
                [pub] = await published.wait_for(with_count(1, lambda s: endpoints(s)[
                    "10.244.0.5"]["conditions"]["terminating"]), what="published terminating")
            # publishNotReadyAddresses: ready regardless of readiness and termination.
            assert endpoints([pub])["10.244.0.5"]["conditions"] == {
                "ready": True, "serving": True, "terminating": True}
        finally:
            await release(client, "db-0")
        await obs.wait_for(with_count(0), what="finalized pod gone")


async def test_placeholder_then_filled_in_place(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTSLICES, label_selector=of_service("web")) as obs:
        await client.create(SERVICES, service("web", {"app": "web"}))
        [placeholder] = await obs.wait_for(lambda s: s if len(s) == 1 else None,
                                           what="placeholder slice")
        assert not placeholder.get("endpoints") and not placeholder.get("ports")
        await start_pod(client, pod("web-0", {"app": "web"}), "10.244.0.10")
        [filled] = await obs.wait_for(with_count(1), what="endpoint added")
        assert filled["metadata"]["name"] == placeholder["metadata"]["name"]
        assert filled["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        await client.delete(PODS, "web-0", namespace="default", grace_period_seconds=0)
        [empty] = await obs.wait_for(lambda s: s if len(s) == 1 and not endpoints(s) and not
                                     s[0].get("ports") else None, what="back to a placeholder")
        assert empty["metadata"]["name"] == placeholder["metadata"]["name"]


async def test_many_pods_split_and_churn_stays_local(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTSLICES, label_selector=of_service("web")) as obs:
        await client.create(SERVICES, service("web", {"app": "web"}))
        for i in range(7):
            await start_pod(client, pod(f"web-{i}", {"app": "web"}), f"10.244.0.{10 + i}")
        slices = await obs.wait_for(with_count(7), what="7 endpoints")
        assert all(len(s["endpoints"]) <= MAX_PER_SLICE for s in slices)
        assert len(slices) == 3
        where = {e["addresses"][0]: s["metadata"]["name"] for s in slices for e in s["endpoints"]}
        await set_status(client, "web-3", running("10.244.0.13", ready=False))
        slices = await obs.wait_for(with_count(7, lambda s: not endpoints(s)["10.244.0.13"][
            "conditions"]["ready"]), what="web-3 not ready")
        moved = {e["addresses"][0]: s["metadata"]["name"] for s in slices for e in s["endpoints"]}
        assert moved == where  # updated where it was, nothing reshuffled


async def test_pods_with_different_named_ports_get_different_slices(api: ApiServer) -> None:
    client = api.client
    ports = [{"name": "http", "port": 80, "targetPort": "web"}]
    async with observing(client, ENDPOINTSLICES, label_selector=of_service("web")) as obs:
        await client.create(SERVICES, service("web", {"app": "web"}, ports))
        await start_pod(client, pod("a", {"app": "web"}, ports=[
            {"name": "web", "containerPort": 8080}]), "10.244.0.1")
        await start_pod(client, pod("b", {"app": "web"}, ports=[
            {"name": "web", "containerPort": 9090}]), "10.244.0.2")
        await start_pod(client, pod("c", {"app": "web"}), "10.244.0.3")
        slices = await obs.wait_for(with_count(3), what="3 endpoints")
    by_ports = {tuple(p["port"] for p in s.get("ports") or []):
                sorted(e["addresses"][0] for e in s["endpoints"]) for s in slices}
    assert by_ports == {(8080,): ["10.244.0.1"], (9090,): ["10.244.0.2"], (): ["10.244.0.3"]}


async def test_deleted_service_and_foreign_slices(api: ApiServer) -> None:
    client = api.client
    foreign = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-manual", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["192.0.2.1"]}], "ports": []}
    async with observing(client, ENDPOINTSLICES, label_selector=of_service("web")) as obs:
        await client.create(ENDPOINTSLICES, foreign)
        await client.create(SERVICES, service("web", {"app": "web"}))
        await start_pod(client, pod("web-0", {"app": "web"}), "10.244.0.10")
        await obs.wait_for(with_count(2), what="ours + the foreign slice")
        await client.delete(SERVICES, "web", namespace="default")
        left = await obs.wait_for(lambda s: s if len(s) == 1 else None, what="ours deleted")
        assert left[0]["metadata"]["name"] == "web-manual"


async def test_a_tampered_slice_is_repaired(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTSLICES, label_selector=of_service("web")) as obs:
        await client.create(SERVICES, service("web", {"app": "web"}))
        await start_pod(client, pod("web-0", {"app": "web"}), "10.244.0.10")
        [slice_] = await obs.wait_for(with_count(1), what="one endpoint")
        slice_ = {**slice_, "endpoints": []}
        await client.update(ENDPOINTSLICES, slice_, namespace="default")
        await obs.wait_for(with_count(1), what="endpoint restored")


async def test_selectorless_and_external_name_services_get_none(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTSLICES, label_selector=MANAGED) as obs:
        await client.create(SERVICES, service("manual", None))
        ext = service("ext", {"app": "web"}, [])
        ext["spec"] = {"type": "ExternalName", "externalName": "example.org",
                       "selector": {"app": "web"}}
        await client.create(SERVICES, ext)
        await client.create(SERVICES, service("marker", {"app": "none"}))
        await obs.wait_for(lambda s: any(x["metadata"]["labels"]["kubernetes.io/service-name"]
                                         == "marker" for x in s), what="marker's placeholder")
        names = {x["metadata"]["labels"]["kubernetes.io/service-name"] for x in obs.items()}
        assert names == {"marker"}
