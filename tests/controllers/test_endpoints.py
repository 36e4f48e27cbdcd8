"""The Endpoints controller against the real API server (pods with hand-set status)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller_cluster import Cluster
from housekeeping_support import ApiServer, running_controllers
from skiff.client.resources import ENDPOINTS, PODS, SERVICES
from skiff.controllers.endpoints import desired_subsets, truncate
from test_endpoints_support import (  # noqa: F401  (api is a fixture)
    api, controllers, named, observing, pod, release, running, service, set_status, start_pod,
)

Obj = dict[str, Any]
HTTP = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def ips(subset: Obj, section: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(section) or []]


async def test_ready_and_not_ready_pods_with_their_details(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTS) as eps:
        svc = await client.create(SERVICES, service("web", {"app": "web"},
                                                    labels={"team": "a"}))
        await start_pod(client, pod("web-1", {"app": "web"}), "10.244.0.11")
        await start_pod(client, pod("web-2", {"app": "web"}, node_name="node-b"), "10.244.1.12",
                        ready=False)
        await start_pod(client, pod("other", {"app": "db"}), "10.244.0.13")
        ep = await eps.wait_for(lambda items: (e := named("web")(items)) and e.get("subsets")
                                and len(ips(e["subsets"][0])) + len(
                                    ips(e["subsets"][0], "notReadyAddresses")) == 2 and e,
                                what="both pods in web's Endpoints")
    assert ep["metadata"]["labels"] == {"team": "a"}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]
    [subset] = ep["subsets"]
    pods = {p["metadata"]["name"]: p for p in (await client.list(PODS, namespace="default")).items}
    assert subset["addresses"] == [{
        "ip": "10.244.0.11", "nodeName": "node-a",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1",
                      "uid": pods["web-1"]["metadata"]["uid"]}}]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.244.1.12"]
    assert subset["notReadyAddresses"][0]["nodeName"] == "node-b"
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {"app": "web"}


async def test_readiness_changes_move_addresses(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTS) as eps:
        await client.create(SERVICES, service("web", {"app": "web"}))
        await start_pod(client, pod("web-1", {"app": "web"}), "10.244.0.11", ready=False)
        await eps.wait_for(lambda items: (e := named("web")(items)) and e.get("subsets") and
                           ips(e["subsets"][0], "notReadyAddresses") == ["10.244.0.11"],
                           what="not ready address")
        await set_status(client, "web-1", running("10.244.0.11", ready=True))
        ep = await eps.wait_for(lambda items: (e := named("web")(items)) and e.get("subsets") and
                                ips(e["subsets"][0]) == ["10.244.0.11"] and e, what="ready address")
        assert "notReadyAddresses" not in ep["subsets"][0]
        await client.patch(PODS, "web-1", {"metadata": {"labels": {"app": "other"}}},
                           namespace="default")
        await eps.wait_for(lambda items: (e := named("web")(items)) and not e.get("subsets"),
                           what="relabelled pod gone from the Endpoints")


async def test_named_target_port_resolved_per_pod(api: ApiServer) -> None:
    client = api.client
    ports = [{"name": "http", "port": 80, "targetPort": "web"},
             {"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    async with observing(client, ENDPOINTS) as eps:
        await client.create(SERVICES, service("web", {"app": "web"}, ports))
        await start_pod(client, pod("a", {"app": "web"}, ports=[
            {"name": "web", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]),
            "10.244.0.1")
        await start_pod(client, pod("b", {"app": "web"}, ports=[
            {"name": "web", "containerPort": 8081}]), "10.244.0.2")
        await start_pod(client, pod("c", {"app": "web"}, ports=[
            {"name": "other", "containerPort": 1}]), "10.244.0.3")
        ep = await eps.wait_for(lambda items: (e := named("web")(items)) and len(
            e.get("subsets") or []) == 2 and e, what="two subsets")
    by_ip = {tuple(ips(s)): s["ports"] for s in ep["subsets"]}
    assert by_ip == {
        ("10.244.0.1",): [{"name": "http", "port": 8080, "protocol": "TCP"},
                          {"name": "metrics", "port": 9100, "protocol": "TCP"}],
        ("10.244.0.2",): [{"name": "http", "port": 8081, "protocol": "TCP"}],
    }


async def test_publish_not_ready_and_terminating_pods(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTS) as eps:
        await client.create(SERVICES, service("plain", {"app": "db"}))
        await client.create(SERVICES, service("published", {"app": "db"}, publish=True))
        await start_pod(client, pod("db-0", {"app": "db"}, finalizer=True), "10.244.0.5",
                        ready=False)
        await start_pod(client, pod("db-1", {"app": "db"}, finalizer=True), "10.244.0.6")
        try:
            await eps.wait_for(lambda items: (e := named("published")(items)) and e.get("subsets")
                               and ips(e["subsets"][0]) == ["10.244.0.5", "10.244.0.6"],
                               what="published: both ready")
            await eps.wait_for(lambda items: (e := named("plain")(items)) and e.get("subsets")
                               and ips(e["subsets"][0]) == ["10.244.0.6"]
                               and ips(e["subsets"][0], "notReadyAddresses") == ["10.244.0.5"],
                               what="plain: one ready, one not")
            await client.delete(PODS, "db-1", namespace="default")
            await eps.wait_for(lambda items: (e := named("plain")(items)) and e.get("subsets")
                               and not ips(e["subsets"][0]), what="terminating pod dropped")
            published = named("published")(eps.items())
            assert published is not None
            assert ips(published["subsets"][0]) == ["10.244.0.5", "10.244.0.6"]
        finally:
            await release(client, "db-0")
            await release(client, "db-1")


async def test_headless_hostnames_and_label(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTS) as eps:
        await client.create(SERVICES, service("web", {"app": "web"}, headless=True))
        await start_pod(client, pod("web-0", {"app": "web"}, hostname="web-0", subdomain="web"),
                        "10.244.0.20")
        await start_pod(client, pod("stray", {"app": "web"}, hostname="stray", subdomain="nope"),
                        "10.244.0.21")
        ep = await eps.wait_for(lambda items: (e := named("web")(items)) and e.get("subsets")
                                and len(ips(e["subsets"][0])) == 2 and e, what="2 addresses")
    assert ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
    hosts = {a["ip"]: a.get("hostname") for a in ep["subsets"][0]["addresses"]}
    assert hosts == {"10.244.0.20": "web-0", "10.244.0.21": None}


async def test_services_without_selector_keep_manual_endpoints(api: ApiServer) -> None:
    client = api.client
    await client.create(SERVICES, service("external", None))
    manual = {"apiVersion": "v1", "kind": "Endpoints",
              "metadata": {"name": "external", "namespace": "default"},
              "subsets": [{"addresses": [{"ip": "192.0.2.10"}],
                           "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]}
    created = await client.create(ENDPOINTS, manual)
    # A selector Service created afterwards is handled; by then "external" would have been too.
    async with observing(client, ENDPOINTS) as eps:
        await client.create(SERVICES, service("later", {"app": "x"}))
        await eps.wait_for(named("later"), what="Endpoints of the selector Service")
        kept = named("external")(eps.items())
        assert kept is not None and kept["subsets"] == created["subsets"]
        assert kept["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        # The API server's default/kubernetes Service has no selector: not ours to fill.
        assert named("kubernetes")(eps.items()) is None


async def test_deleted_service_deletes_its_endpoints(api: ApiServer) -> None:
    client = api.client
    async with observing(client, ENDPOINTS) as eps:
        await client.create(SERVICES, service("web", {"app": "web"}))
        await eps.wait_for(named("web"), what="Endpoints created")
        await client.delete(SERVICES, "web", namespace="default")
        await eps.wait_for(lambda items: named("web")(items) is None, what="Endpoints deleted")


async def test_leftover_endpoints_are_cleaned_up_at_start(tmp_path: Path) -> None:
    async with ApiServer(tmp_path) as server:
        client = server.client
        await client.create(ENDPOINTS, {"apiVersion": "v1", "kind": "Endpoints",
                                        "metadata": {"name": "ghost", "namespace": "default"}})
        async with observing(client, ENDPOINTS) as eps:
            async with running_controllers(client, controllers()[:1]):
                await eps.wait_for(lambda items: named("ghost")(items) is None,
                                   what="orphaned Endpoints removed")


async def test_real_pods_through_fake_nodes(tmp_path: Path) -> None:
    """Pods scheduled by the test binder and started by the fake kubelet."""
    async with Cluster(tmp_path, nodes=2, controllers=[]) as cluster:
        client = cluster.client
        async with running_controllers(client, controllers()), \
                observing(client, ENDPOINTS) as eps:
            await client.create(SERVICES, service("web", {"app": "web"}))
            for i in range(3):
                body = pod(f"web-{i}", {"app": "web"}, ports=HTTP)
                del body["spec"]["nodeName"]
                await client.create(PODS, body)
            ep = await eps.wait_for(lambda items: (e := named("web")(items)) and e.get("subsets")
                                    and len(ips(e["subsets"][0])) == 3 and e, what="3 ready pods")
        running_pods = (await client.list(PODS, namespace="default")).items
        assert sorted(ips(ep["subsets"][0])) == sorted(p["status"]["podIP"] for p in running_pods)
        assert {a["nodeName"] for a in ep["subsets"][0]["addresses"]} <= {
            "skiff-node-0", "skiff-node-1"}


def test_truncation_keeps_ready_addresses_first() -> None:
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(6)],
                "notReadyAddresses": [{"ip": f"10.0.1.{i}"} for i in range(4)]}]
    assert truncate(subsets, capacity=8)
    assert len(subsets[0]["addresses"]) == 6 and len(subsets[0]["notReadyAddresses"]) == 2
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(6)],
                "notReadyAddresses": [{"ip": "10.0.1.1"}]}]
    assert truncate(subsets, capacity=4)
    assert len(subsets[0]["addresses"]) == 4 and "notReadyAddresses" not in subsets[0]
    assert not truncate([{"addresses": [{"ip": "10.0.0.1"}]}], capacity=4)


def test_headless_service_without_ports_lists_addresses_only() -> None:
    svc = service("h", {"app": "h"}, [], headless=True)
    svc["metadata"]["uid"] = "s"
    p = pod("h-0", {"app": "h"})
    p["metadata"]["uid"] = "u"
    p["status"] = running("10.1.2.3")
    assert desired_subsets(svc, [p]) == [{"addresses": [{
        "ip": "10.1.2.3", "nodeName": "node-a",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "h-0", "uid": "u"}}]}]
    clusterip = service("c", {"app": "h"}, [])
    clusterip["spec"]["clusterIP"] = "10.96.0.5"
    assert desired_subsets(clusterip, [p]) == []
