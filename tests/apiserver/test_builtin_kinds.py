"""The API server with the built-in kinds: defaults, tables, views over shared storage, protobuf."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from skiff.api.protobuf import encode_object
from skiff.api.schema import builtin_schema

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"


async def builtin(make_client: Any) -> TestClient:
    from skiff.api.kinds import builtin_registry

    return await make_client(registry=builtin_registry())


def deployment(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def test_bootstrap_and_tables(make_client: Any) -> None:
    client = await builtin(make_client)
    ns = await (await client.get("/api/v1/namespaces/default")).json()
    assert ns["status"]["phase"] == "Active"
    table = await (await client.get("/api/v1/namespaces", headers={"Accept": TABLE})).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert [r["cells"][:2] for r in table["rows"]][0] == ["default", "Active"]
    r = await client.post("/apis/apps/v1/namespaces/default/deployments", json=deployment())
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted by the kind
    scale = await (await client.get("/apis/apps/v1/namespaces/default/deployments/web/scale")).json()
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=web"
    rows = await (await client.get("/apis/apps/v1/namespaces/default/deployments",
                                   headers={"Accept": TABLE})).json()
    assert rows["rows"][0]["cells"][0] == "web"


async def test_protobuf_create(make_client: Any) -> None:
    client = await builtin(make_client)
    body = encode_object(deployment("pb"), builtin_schema())
    r = await client.post("/apis/apps/v1/namespaces/default/deployments?fieldManager=kubectl-create",
                          data=body, headers={"Content-Type": PROTOBUF})
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["metadata"]["name"] == "pb"
    assert created["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    cm = encode_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                        "data": {"a": "b"}}, builtin_schema())
    r = await client.post("/api/v1/namespaces/default/configmaps", data=cm, headers={"Content-Type": PROTOBUF})
    assert r.status == 201 and (await r.json())["data"] == {"a": "b"}
    r = await client.post("/api/v1/namespaces/default/configmaps", data=b"k8s\x00garbage",
                          headers={"Content-Type": PROTOBUF})
    assert r.status == 400


async def test_events_are_served_by_both_groups(make_client: Any) -> None:
    client = await builtin(make_client)
    core_event = {"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": "e1", "namespace": "default"},
                  "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                  "reason": "Started", "message": "hello", "type": "Normal",
                  "source": {"component": "kubelet"}, "count": 1}
    r = await client.post("/api/v1/namespaces/default/events", json=core_event)
    assert r.status == 201, await r.text()
    r = await client.get("/apis/events.k8s.io/v1/namespaces/default/events/e1")
    assert r.status == 200, await r.text()
    ev = await r.json()
    assert ev["apiVersion"] == "events.k8s.io/v1"
    assert ev["regarding"]["name"] == "p" and ev["note"] == "hello"
    listed = await (await client.get("/apis/events.k8s.io/v1/events")).json()
    assert listed["kind"] == "EventList" and [i["note"] for i in listed["items"]] == ["hello"]
    by_object = await (await client.get("/api/v1/namespaces/default/events"
                                        "?fieldSelector=involvedObject.name%3Dp")).json()
    assert [i["metadata"]["name"] for i in by_object["items"]] == ["e1"]


async def test_hpa_v1_is_a_view_of_v2(make_client: Any) -> None:
    client = await builtin(make_client)
    hpa = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}}
    r = await client.post("/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers", json=hpa)
    assert r.status == 201, await r.text()
    assert (await r.json())["spec"]["targetCPUUtilizationPercentage"] == 60
    v2 = await (await client.get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")).json()
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    r = await client.patch("/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
                           json={"spec": {"maxReplicas": 9}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 200, await r.text()
    v2 = await (await client.get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")).json()
    assert v2["spec"]["maxReplicas"] == 9


async def test_bindings_collection(make_client: Any) -> None:
    client = await builtin(make_client)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert (await client.post("/api/v1/namespaces/default/pods", json=pod)).status == 201
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"kind": "Node", "name": "n1"}}
    r = await client.post("/api/v1/namespaces/default/bindings", json=binding)
    assert r.status == 201, await r.text()
    got = await (await client.get("/api/v1/namespaces/default/pods/p")).json()
    assert got["spec"]["nodeName"] == "n1"


async def test_access_reviews_are_answered_not_stored(make_client: Any) -> None:
    client = await builtin(make_client)
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}}
    r = await client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review)
    assert r.status == 201, await r.text()
    assert (await r.json())["status"]["allowed"] is True
    body = encode_object(review, builtin_schema())  # kubectl auth can-i sends protobuf
    r = await client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", data=body,
                          headers={"Content-Type": PROTOBUF})
    assert r.status == 201, await r.text()


async def test_eviction_respects_disruption_budgets(make_client: Any) -> None:
    client = await builtin(make_client)
    pods = "/api/v1/namespaces/default/pods"
    for name in ("a", "b"):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "db"}},
               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}
        assert (await client.post(pods, json=pod)).status == 201
        r = await client.patch(f"{pods}/{name}/status", json={"status": {"phase": "Running"}},
                               headers={"Content-Type": "application/merge-patch+json"})
        assert r.status == 200, await r.text()
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}
    pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
    assert (await client.post(pdbs, json=pdb)).status == 201
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a"},
                "deleteOptions": {"gracePeriodSeconds": 0}}
    r = await client.post(f"{pods}/a/eviction", json=eviction)
    assert r.status == 429  # the budget's controller has not computed it yet
    r = await client.patch(f"{pdbs}/db/status", json={"status": {
        "observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1,
        "expectedPods": 2}}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 200, await r.text()
    r = await client.post(f"{pods}/a/eviction", json=eviction)
    assert r.status == 201, await r.text()
    assert (await client.get(f"{pods}/a")).status == 404
    status = (await (await client.get(f"{pdbs}/db")).json())["status"]
    assert status["disruptionsAllowed"] == 0 and "a" in status["disruptedPods"]
    r = await client.post(f"{pods}/b/eviction", json=dict(eviction, metadata={"name": "b"}))
    assert r.status == 429
    body = await r.json()
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0]["message"] == "The disruption budget db needs 1 healthy pods and has 2 currently"


async def test_openapi_v2_json_and_protobuf(make_client: Any) -> None:
    client = await builtin(make_client)
    r = await client.get("/openapi/v2")
    assert r.status == 200
    doc = await r.json()
    assert doc["swagger"] == "2.0" and "io.k8s.api.apps.v1.Deployment" in doc["definitions"]
    etag = r.headers["ETag"]
    r = await client.get("/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert r.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert r.headers["ETag"] == etag and len(await r.read()) > 1000
    r = await client.get("/openapi/v2", headers={"If-None-Match": etag})
    assert r.status == 304
    r = await client.get("/openapi/v2", headers={"Accept": "text/html"})
    assert r.status == 406


async def test_watch_through_a_view(make_client: Any) -> None:
    import asyncio
    import json

    client = await builtin(make_client)
    rv = (await (await client.get("/apis/events.k8s.io/v1/namespaces/default/events")).json())["metadata"]["resourceVersion"]
    core_event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
                  "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                  "reason": "Pulled", "message": "image pulled", "type": "Normal"}
    async with client.get(f"/apis/events.k8s.io/v1/namespaces/default/events?watch=true&resourceVersion={rv}") as r:
        assert (await client.post("/api/v1/namespaces/default/events", json=core_event)).status == 201
        ev = json.loads(await asyncio.wait_for(r.content.readline(), 5))
        assert ev["type"] == "ADDED"
        assert ev["object"]["apiVersion"] == "events.k8s.io/v1" and ev["object"]["note"] == "image pulled"


async def test_scale_of_a_replication_controller_with_a_plain_selector(make_client: Any) -> None:
    client = await builtin(make_client)
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
          "spec": {"replicas": 2, "selector": {"app": "old", "tier": "x"},
                   "template": {"metadata": {"labels": {"app": "old", "tier": "x"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    r = await client.post("/api/v1/namespaces/default/replicationcontrollers", json=rc)
    assert r.status == 201, await r.text()
    scale = await (await client.get("/api/v1/namespaces/default/replicationcontrollers/rc/scale")).json()
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=old,tier=x"


async def test_ephemeral_containers(make_client: Any) -> None:
    client = await builtin(make_client)
    pods = "/api/v1/namespaces/default/pods"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    assert (await client.post(pods, json=pod)).status == 201
    debug = {"spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox", "stdin": True,
                                               "targetContainerName": "c"}]}}
    r = await client.patch(f"{pods}/p/ephemeralcontainers", json=debug,
                           headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status == 200, await r.text()
    got = await (await client.get(f"{pods}/p")).json()
    assert [c["name"] for c in got["spec"]["ephemeralContainers"]] == ["debugger"]
    r = await client.patch(f"{pods}/p/ephemeralcontainers", json={"spec": {"ephemeralContainers": []}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 422
