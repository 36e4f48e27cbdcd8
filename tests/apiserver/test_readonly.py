"""Resources served from a component's memory, not the store: metrics.k8s.io through
real HTTP against the API server on SQLite (skiff.apiserver.readonly)."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from aiohttp.test_utils import TestClient

from skiff.api.kinds import Registry, builtin_registry
from skiff.api.kinds import metrics as metrics_kinds
from skiff.apiserver.app import CONTEXT

from apiserver_kinds import kinds_registry

Obj = dict[str, Any]

GV = "/apis/metrics.k8s.io/v1beta1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PARTIAL = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
STAMP = "2025-01-01T12:00:00Z"


def node_metrics(name: str, cpu: str, memory: str, **labels: str) -> Obj:
    return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": name, "labels": labels, "creationTimestamp": STAMP},
            "timestamp": STAMP, "window": "15s", "usage": {"cpu": cpu, "memory": memory}}


def pod_metrics(namespace: str, name: str, containers: dict[str, tuple[str, str]], **labels: str) -> Obj:
    return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "creationTimestamp": STAMP},
            "timestamp": STAMP, "window": "15s",
            "containers": [{"name": c, "usage": {"cpu": cpu, "memory": mem}}
                           for c, (cpu, mem) in containers.items()]}


class MemorySource:
    """A ReadOnlySource over a fixed set of objects; remembers what it was asked.

    Like skiff.metrics.server's sources, ``get`` looks among what ``list`` would give
    for the namespace, so "" means every namespace for both."""

    def __init__(self, objs: list[Obj]) -> None:
        self.objs = objs
        self.asked: list[tuple[str, str, str]] = []

    def _in(self, namespace: str) -> list[Obj]:
        found = [o for o in self.objs if not namespace or o["metadata"].get("namespace") == namespace]
        return copy.deepcopy(sorted(found, key=lambda o: (o["metadata"].get("namespace", ""),
                                                            o["metadata"]["name"])))

    async def get(self, namespace: str, name: str) -> Obj | None:
        self.asked.append(("get", namespace, name))
        return next((o for o in self._in(namespace) if o["metadata"]["name"] == name), None)

    async def list(self, namespace: str) -> list[Obj]:
        self.asked.append(("list", namespace, ""))
        return self._in(namespace)


NODES = [node_metrics("node-a", "250m", "1024Mi", zone="a"), node_metrics("node-b", "1500m", "2Gi", zone="b")]
PODS = [
    pod_metrics("default", "web-1", {"app": ("120m", "30Mi"), "log": ("5m", "4Mi")}, app="web"),
    pod_metrics("default", "web-2", {"app": ("80m", "28Mi")}, app="web"),
    pod_metrics("default", "db-0", {"pg": ("300m", "200Mi")}, app="db"),
    pod_metrics("kube-system", "coredns-1", {"coredns": ("3m", "12Mi")}, app="dns"),
]


def registry() -> Registry:
    return Registry([*kinds_registry(), *metrics_kinds.RESOURCES])


@pytest.fixture
async def bare(make_client: Callable[..., Any]) -> TestClient:
    """The API server with the metrics kinds but no metrics server registered."""
    return await make_client(registry=registry())


@pytest.fixture
async def served(make_client: Callable[..., Any]) -> tuple[TestClient, MemorySource, MemorySource]:
    client = await make_client(registry=registry())
    nodes, pods = MemorySource(NODES), MemorySource(PODS)
    client.app[CONTEXT].read_only[("metrics.k8s.io", "nodes")] = nodes
    client.app[CONTEXT].read_only[("metrics.k8s.io", "pods")] = pods
    return client, nodes, pods


def names(body: Obj) -> list[str]:
    return [o["metadata"]["name"] for o in body["items"]]


async def expect_status(response: Any, code: int, reason: str) -> Obj:
    assert response.status == code, await response.text()
    body = await response.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason
    return body


# -- no metrics server ----------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{GV}/nodes", f"{GV}/nodes/node-a",
                                  f"{GV}/namespaces/default/pods", f"{GV}/pods"])
async def test_without_a_source_the_metrics_api_is_unavailable(bare: TestClient, path: str) -> None:
    body = await expect_status(await bare.get(path), 503, "ServiceUnavailable")
    assert body["message"]


async def test_the_default_server_offers_metrics_but_has_no_metrics_server(
        make_client: Callable[..., Any]) -> None:
    client = await make_client(registry=builtin_registry())
    resources = await (await client.get(GV)).json()
    assert {r["name"] for r in resources["resources"]} == {"nodes", "pods"}
    await expect_status(await client.get(f"{GV}/nodes"), 503, "ServiceUnavailable")
    await expect_status(await client.get(f"{GV}/namespaces/default/pods"), 503, "ServiceUnavailable")


async def test_one_registered_resource_does_not_make_the_other_available(
        make_client: Callable[..., Any]) -> None:
    client = await make_client(registry=registry())
    client.app[CONTEXT].read_only[("metrics.k8s.io", "pods")] = MemorySource(PODS)
    assert (await client.get(f"{GV}/namespaces/default/pods")).status == 200
    await expect_status(await client.get(f"{GV}/nodes"), 503, "ServiceUnavailable")


async def test_nothing_is_stored_for_a_read_only_kind(bare: TestClient) -> None:
    """A write to a read-only kind is refused even before any metrics server exists."""
    await expect_status(await bare.post(f"{GV}/nodes", json=NODES[0]), 405, "MethodNotAllowed")
    await expect_status(await bare.get(f"{GV}/nodes"), 503, "ServiceUnavailable")


# -- lists --------------------------------------------------------------------------------


async def test_list_pods_of_a_namespace(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, pods = served
    r = await client.get(f"{GV}/namespaces/default/pods")
    assert r.status == 200 and r.content_type == "application/json"
    body = await r.json()
    assert body["kind"] == "PodMetricsList" and body["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert names(body) == ["db-0", "web-1", "web-2"]
    web1 = body["items"][1]
    assert web1 == PODS[0]
    assert pods.asked == [("list", "default", "")]


async def test_list_pods_of_every_namespace(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, pods = served
    body = await (await client.get(f"{GV}/pods")).json()
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in body["items"]] == [
        ("default", "db-0"), ("default", "web-1"), ("default", "web-2"), ("kube-system", "coredns-1")]
    assert pods.asked == [("list", "", "")]


async def test_list_nodes(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    body = await (await client.get(f"{GV}/nodes")).json()
    assert body["kind"] == "NodeMetricsList"
    assert names(body) == ["node-a", "node-b"]
    assert body["items"][1]["usage"] == {"cpu": "1500m", "memory": "2Gi"}


async def test_label_selector(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    web = await (await client.get(f"{GV}/namespaces/default/pods", params={"labelSelector": "app=web"})).json()
    assert names(web) == ["web-1", "web-2"]
    not_web = await (await client.get(f"{GV}/pods", params={"labelSelector": "app!=web"})).json()
    assert names(not_web) == ["db-0", "coredns-1"]
    some = await (await client.get(f"{GV}/pods", params={"labelSelector": "app in (db,dns)"})).json()
    assert names(some) == ["db-0", "coredns-1"]
    none = await (await client.get(f"{GV}/namespaces/kube-system/pods",
                                   params={"labelSelector": "app=web"})).json()
    assert none["kind"] == "PodMetricsList" and none["items"] == []
    nodes = await (await client.get(f"{GV}/nodes", params={"labelSelector": "zone=b"})).json()
    assert names(nodes) == ["node-b"]


async def test_field_selector(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    one = await (await client.get(f"{GV}/namespaces/default/pods",
                                  params={"fieldSelector": "metadata.name=web-2"})).json()
    assert names(one) == ["web-2"]
    elsewhere = await (await client.get(f"{GV}/pods",
                                        params={"fieldSelector": "metadata.namespace=kube-system"})).json()
    assert names(elsewhere) == ["coredns-1"]
    node = await (await client.get(f"{GV}/nodes", params={"fieldSelector": "metadata.name!=node-a"})).json()
    assert names(node) == ["node-b"]
    both = await (await client.get(f"{GV}/pods", params={"fieldSelector": "metadata.name=web-1",
                                                          "labelSelector": "app=db"})).json()
    assert both["items"] == []


async def test_a_bad_selector_is_a_bad_request(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    await expect_status(await client.get(f"{GV}/pods", params={"fieldSelector": "spec.nodeName=n1"}),
                        400, "BadRequest")
    await expect_status(await client.get(f"{GV}/pods", params={"labelSelector": "app in (web"}),
                        400, "BadRequest")


# -- get ----------------------------------------------------------------------------------


async def test_get_by_name(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, nodes, pods = served
    r = await client.get(f"{GV}/namespaces/default/pods/web-1")
    assert r.status == 200
    assert await r.json() == PODS[0]
    assert pods.asked == [("get", "default", "web-1")]
    node = await (await client.get(f"{GV}/nodes/node-b")).json()
    assert node == NODES[1]
    assert nodes.asked == [("get", "", "node-b")]


async def test_get_of_a_missing_name_is_not_found(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    body = await expect_status(await client.get(f"{GV}/namespaces/default/pods/nope"), 404, "NotFound")
    assert body["details"]["name"] == "nope" and body["details"]["group"] == "metrics.k8s.io"
    assert '"nope" not found' in body["message"]
    # a pod of another namespace is not found in this one
    await expect_status(await client.get(f"{GV}/namespaces/kube-system/pods/web-1"), 404, "NotFound")
    body = await expect_status(await client.get(f"{GV}/nodes/node-z"), 404, "NotFound")
    assert body["details"]["name"] == "node-z"


async def test_a_namespaced_name_needs_its_namespace(
        served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    """As for every namespaced resource (and metrics-server behind kube-apiserver),
    ``.../pods/<name>`` without ``namespaces/<ns>`` is not a path: 404, never some
    namespace's pod of that name."""
    client, _, _ = served
    r = await client.get(f"{GV}/pods/web-1")
    await expect_status(r, 404, "NotFound")


async def test_node_metrics_are_not_namespaced(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, nodes, _ = served
    await expect_status(await client.get(f"{GV}/namespaces/default/nodes"), 404, "NotFound")
    assert nodes.asked == []


# -- no writes, no watch ------------------------------------------------------------------


async def test_writes_are_not_allowed(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, nodes, pods = served
    pod = PODS[0]
    for response in [
        await client.post(f"{GV}/namespaces/default/pods", json=pod),
        await client.put(f"{GV}/namespaces/default/pods/web-1", json=pod),
        await client.patch(f"{GV}/namespaces/default/pods/web-1", data=b'{"metadata":{"labels":{"x":"y"}}}',
                           headers={"Content-Type": "application/merge-patch+json"}),
        await client.delete(f"{GV}/namespaces/default/pods/web-1"),
        await client.delete(f"{GV}/namespaces/default/pods"),
        await client.post(f"{GV}/nodes", json=NODES[0]),
        await client.delete(f"{GV}/nodes/node-a"),
    ]:
        await expect_status(response, 405, "MethodNotAllowed")
    assert nodes.asked == [] and pods.asked == []
    assert await (await client.get(f"{GV}/namespaces/default/pods/web-1")).json() == pod


async def test_watch_is_not_allowed(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, nodes, pods = served
    await expect_status(await client.get(f"{GV}/namespaces/default/pods", params={"watch": "true"}),
                        405, "MethodNotAllowed")
    await expect_status(await client.get(f"{GV}/nodes", params={"watch": "1"}), 405, "MethodNotAllowed")
    await expect_status(await client.get(f"{GV}/watch/nodes"), 405, "MethodNotAllowed")
    await expect_status(await client.get(f"{GV}/watch/namespaces/default/pods/web-1"), 405, "MethodNotAllowed")
    assert nodes.asked == [] and pods.asked == []


# -- Table and metadata-only forms --------------------------------------------------------


async def test_table_of_node_metrics(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    body = await (await client.get(f"{GV}/nodes", headers={"Accept": TABLE})).json()
    assert body["kind"] == "Table" and body["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "CPU", "Memory", "Window"]
    assert [r["cells"] for r in body["rows"]] == [["node-a", "250m", "1024Mi", "15s"],
                                                  ["node-b", "1500m", "2Gi", "15s"]]


async def test_table_of_pod_metrics(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    body = await (await client.get(f"{GV}/namespaces/default/pods", params={"labelSelector": "app=web"},
                                   headers={"Accept": TABLE})).json()
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Containers", "Window"]
    assert [r["cells"] for r in body["rows"]] == [["web-1", "app,log", "15s"], ["web-2", "app", "15s"]]
    single = await (await client.get(f"{GV}/namespaces/default/pods/db-0?includeObject=Object",
                                     headers={"Accept": TABLE})).json()
    assert single["kind"] == "Table"
    assert [r["cells"] for r in single["rows"]] == [["db-0", "pg", "15s"]]
    assert single["rows"][0]["object"]["kind"] == "PodMetrics"


async def test_metadata_only_list(served: tuple[TestClient, MemorySource, MemorySource]) -> None:
    client, _, _ = served
    body = await (await client.get(f"{GV}/nodes", headers={"Accept": PARTIAL})).json()
    assert body["kind"] == "PartialObjectMetadataList"
    assert [o["metadata"]["name"] for o in body["items"]] == ["node-a", "node-b"]
    assert all("usage" not in o for o in body["items"])


# -- discovery ----------------------------------------------------------------------------


async def test_discovery_lists_the_group_read_only(bare: TestClient) -> None:
    apis = await (await bare.get("/apis")).json()
    group = next(g for g in apis["groups"] if g["name"] == "metrics.k8s.io")
    assert group["versions"] == [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}]
    assert group["preferredVersion"] == {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
    one = await (await bare.get("/apis/metrics.k8s.io")).json()
    assert one["kind"] == "APIGroup" and one["name"] == "metrics.k8s.io"
    resources = await (await bare.get(GV)).json()
    assert resources["kind"] == "APIResourceList" and resources["groupVersion"] == "metrics.k8s.io/v1beta1"
    by_name = {r["name"]: r for r in resources["resources"]}
    assert set(by_name) == {"nodes", "pods"}
    assert by_name["nodes"]["kind"] == "NodeMetrics" and by_name["nodes"]["namespaced"] is False
    assert by_name["pods"]["kind"] == "PodMetrics" and by_name["pods"]["namespaced"] is True
    assert by_name["nodes"]["verbs"] == ["get", "list"]
    assert by_name["pods"]["verbs"] == ["get", "list"]


async def test_aggregated_discovery_lists_the_group_read_only(bare: TestClient) -> None:
    body = await (await bare.get("/apis", headers={"Accept": AGGREGATED})).json()
    group = next(i for i in body["items"] if i["metadata"]["name"] == "metrics.k8s.io")
    resources = {r["resource"]: r for r in group["versions"][0]["resources"]}
    assert set(resources) == {"nodes", "pods"}
    assert resources["pods"]["verbs"] == ["get", "list"] and resources["nodes"]["verbs"] == ["get", "list"]
    assert resources["pods"]["scope"] == "Namespaced" and resources["nodes"]["scope"] == "Cluster"
    assert resources["pods"]["responseKind"] == {"group": "metrics.k8s.io", "version": "v1beta1",
                                                 "kind": "PodMetrics"}
