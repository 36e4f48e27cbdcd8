"""DELETE: finalizers, propagation policies, graceful pod deletion, preconditions, namespaces."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from apiserver_kinds import cm

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


def pod(name: str, node: str = "", grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_immediate_delete_answers_status_success(client: TestClient) -> None:
    created = await (await client.post(CMS, json=cm("a"))).json()
    r = await client.delete(f"{CMS}/a")
    assert r.status == 200
    body = await r.json()
    assert body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "a", "kind": "configmaps", "uid": created["metadata"]["uid"]}
    assert (await client.get(f"{CMS}/a")).status == 404
    r = await client.delete(f"{CMS}/a")
    assert r.status == 404


async def test_finalizers_hold_the_object_until_cleared(client: TestClient) -> None:
    body = cm("a")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await client.post(CMS, json=body)
    r = await client.delete(f"{CMS}/a")
    assert r.status == 200
    pending = await r.json()
    assert pending["kind"] == "ConfigMap"
    assert pending["metadata"]["deletionTimestamp"] and pending["metadata"]["deletionGracePeriodSeconds"] == 0
    got = await (await client.get(f"{CMS}/a")).json()
    assert got["metadata"]["deletionTimestamp"] == pending["metadata"]["deletionTimestamp"]
    r = await client.patch(f"{CMS}/a", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert r.status == 200
    assert (await client.get(f"{CMS}/a")).status == 404


async def test_propagation_policies_record_finalizers(client: TestClient) -> None:
    await client.post(CMS, json=cm("fg"))
    await client.post(CMS, json=cm("or"))
    r = await client.delete(f"{CMS}/fg", json={"kind": "DeleteOptions", "apiVersion": "v1",
                                              "propagationPolicy": "Foreground"})
    assert (await r.json())["metadata"]["finalizers"] == ["foregroundDeletion"]
    r = await client.delete(f"{CMS}/or?propagationPolicy=Orphan")
    assert (await r.json())["metadata"]["finalizers"] == ["orphan"]
    r = await client.delete(f"{CMS}/or", json={"propagationPolicy": "Sideways"})
    assert r.status == 400


async def test_preconditions(client: TestClient) -> None:
    created = await (await client.post(CMS, json=cm("a"))).json()
    r = await client.delete(f"{CMS}/a", json={"preconditions": {"uid": "other"}})
    assert r.status == 409
    assert (await r.json())["message"] == (
        f'Operation cannot be fulfilled on configmaps "a": Precondition failed: UID in precondition: other, '
        f'UID in object meta: {created["metadata"]["uid"]}')
    r = await client.delete(f"{CMS}/a", json={"preconditions": {"resourceVersion": "1"}})
    assert r.status == 409
    r = await client.delete(f"{CMS}/a", json={"preconditions": {"uid": created["metadata"]["uid"]}})
    assert r.status == 200


async def test_graceful_pod_deletion(client: TestClient) -> None:
    await client.post(PODS, json=pod("unbound"))
    r = await client.delete(f"{PODS}/unbound")
    assert r.status == 200 and (await r.json())["kind"] == "Pod"  # pods answer with the object
    assert (await client.get(f"{PODS}/unbound")).status == 404  # not on a node: gone at once
    await client.post(PODS, json=pod("bound", node="n1", grace=20))
    r = await client.delete(f"{PODS}/bound")
    pending = await r.json()
    assert pending["metadata"]["deletionGracePeriodSeconds"] == 20
    assert (await client.get(f"{PODS}/bound")).status == 200  # waits for the kubelet
    r = await client.delete(f"{PODS}/bound", json={"gracePeriodSeconds": 5})
    assert (await r.json())["metadata"]["deletionGracePeriodSeconds"] == 5
    r = await client.delete(f"{PODS}/bound", json={"gracePeriodSeconds": 30})  # never lengthened
    assert (await r.json())["metadata"]["deletionGracePeriodSeconds"] == 5
    r = await client.delete(f"{PODS}/bound?gracePeriodSeconds=0")  # the kubelet's final delete
    assert r.status == 200
    assert (await client.get(f"{PODS}/bound")).status == 404


async def test_dry_run_delete_keeps_the_object(client: TestClient) -> None:
    await client.post(CMS, json=cm("a"))
    r = await client.delete(f"{CMS}/a?dryRun=All")
    assert r.status == 200
    assert (await client.get(f"{CMS}/a")).status == 200


async def test_delete_collection_with_selector(client: TestClient) -> None:
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        body = cm(name)
        body["metadata"]["labels"] = {"app": app}
        await client.post(CMS, json=body)
    r = await client.delete(f"{CMS}?labelSelector=app%3Dweb")
    assert r.status == 200
    assert sorted(i["metadata"]["name"] for i in (await r.json())["items"]) == ["a", "b"]
    left = await (await client.get(CMS)).json()
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]


async def test_namespace_terminates_until_finalized(client: TestClient) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    created = await (await client.post("/api/v1/namespaces", json=ns)).json()
    assert created["spec"]["finalizers"] == ["kubernetes"]
    r = await client.delete("/api/v1/namespaces/team")
    terminating = await r.json()
    assert terminating["status"]["phase"] == "Terminating"
    r = await client.post("/api/v1/namespaces/team/configmaps", json=cm("x", ns="team"))
    assert r.status == 403
    assert (await r.json())["message"] == ('configmaps "x" is forbidden: unable to create new content in '
                                           'namespace team because it is being terminated')
    finalize = dict(terminating, spec={"finalizers": []})
    r = await client.put("/api/v1/namespaces/team/finalize", json=finalize)
    assert r.status == 200, await r.text()
    assert (await client.get("/api/v1/namespaces/team")).status == 404


async def test_the_system_namespaces_may_not_be_deleted(client: TestClient) -> None:
    """kube-apiserver's NamespaceLifecycle: default, kube-system and kube-public stay."""
    for name in ("default", "kube-system", "kube-public"):
        r = await client.delete(f"/api/v1/namespaces/{name}")
        assert r.status == 403, name
        body = await r.json()
        assert (body["reason"], body["message"]) == (
            "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        kept = await (await client.get(f"/api/v1/namespaces/{name}")).json()
        assert "deletionTimestamp" not in kept["metadata"]
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-node-lease-not"}}
    assert (await client.post("/api/v1/namespaces", json=ns)).status == 201
    assert (await client.delete("/api/v1/namespaces/kube-node-lease-not")).status == 200
