"""Patches, generation rules, status/scale subresources, field validation, binding."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from apiserver_kinds import cm

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSONP = {"Content-Type": "application/json-patch+json"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}


def deployment(name: str = "web", replicas: int = 1, image: str = "nginx") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def test_merge_json_and_strategic_patches(client: TestClient) -> None:
    await client.post(CMS, json=cm("a", x="1", y="2"))
    r = await client.patch(f"{CMS}/a", json={"data": {"x": None, "z": "3"}}, headers=MERGE)
    assert r.status == 200, await r.text()
    assert (await r.json())["data"] == {"y": "2", "z": "3"}
    r = await client.patch(f"{CMS}/a", json=[{"op": "replace", "path": "/data/y", "value": "9"}], headers=JSONP)
    assert (await r.json())["data"] == {"y": "9", "z": "3"}
    await client.post(DEPLOYS, json=deployment())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"},
                                                             {"name": "side", "image": "busybox"}]}}}}
    r = await client.patch(f"{DEPLOYS}/web", json=patch, headers=SMP)
    assert r.status == 200, await r.text()
    containers = (await r.json())["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("c", "nginx:2"), ("side", "busybox")]


async def test_patch_with_stale_resource_version_conflicts(client: TestClient) -> None:
    created = await (await client.post(CMS, json=cm("a"))).json()
    await client.patch(f"{CMS}/a", json={"data": {"k": "1"}}, headers=MERGE)
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"k": "2"}}
    r = await client.patch(f"{CMS}/a", json=stale, headers=MERGE)
    assert r.status == 409
    r = await client.patch(f"{CMS}/missing", json={}, headers=MERGE)
    assert r.status == 404
    r = await client.patch(f"{CMS}/a", json={}, headers={"Content-Type": "application/json"})
    assert r.status == 415


async def test_generation_bumps_on_spec_changes_only(client: TestClient) -> None:
    created = await (await client.post(DEPLOYS, json=deployment())).json()
    assert created["metadata"]["generation"] == 1
    labelled = await (await client.patch(f"{DEPLOYS}/web", json={"metadata": {"labels": {"x": "y"}}},
                                         headers=MERGE)).json()
    assert labelled["metadata"]["generation"] == 1
    scaled = await (await client.patch(f"{DEPLOYS}/web", json={"spec": {"replicas": 3}}, headers=MERGE)).json()
    assert scaled["metadata"]["generation"] == 2
    status = await (await client.patch(f"{DEPLOYS}/web/status", json={"status": {"replicas": 3}},
                                       headers=MERGE)).json()
    assert status["metadata"]["generation"] == 2 and status["status"] == {"replicas": 3}


async def test_status_subresource_separation(client: TestClient) -> None:
    await client.post(DEPLOYS, json=deployment())
    # main-resource writes keep the stored status ...
    body = deployment(replicas=2)
    body["status"] = {"replicas": 99}
    updated = await (await client.put(f"{DEPLOYS}/web", json=body)).json()
    assert "status" not in updated and updated["spec"]["replicas"] == 2
    # ... and status writes keep spec and labels
    full = await (await client.get(f"{DEPLOYS}/web")).json()
    full["status"] = {"replicas": 2, "readyReplicas": 1}
    full["spec"]["replicas"] = 7
    full["metadata"]["labels"] = {"changed": "yes"}
    r = await client.put(f"{DEPLOYS}/web/status", json=full)
    assert r.status == 200, await r.text()
    got = await r.json()
    assert got["status"] == {"replicas": 2, "readyReplicas": 1}
    assert got["spec"]["replicas"] == 2 and got["metadata"]["labels"] == {"app": "web"}
    r = await client.get(f"{DEPLOYS}/web/status")
    assert (await r.json())["status"]["readyReplicas"] == 1


async def test_scale_subresource(client: TestClient) -> None:
    await client.post(DEPLOYS, json=deployment(replicas=2))
    scale = await (await client.get(f"{DEPLOYS}/web/scale")).json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=web"}
    r = await client.patch(f"{DEPLOYS}/web/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
    assert r.status == 200, await r.text()
    assert (await r.json())["spec"]["replicas"] == 5
    dep = await (await client.get(f"{DEPLOYS}/web")).json()
    assert dep["spec"]["replicas"] == 5 and dep["metadata"]["generation"] == 2
    scale = await (await client.get(f"{DEPLOYS}/web/scale")).json()
    scale["spec"]["replicas"] = 1
    r = await client.put(f"{DEPLOYS}/web/scale", json=scale)
    assert (await r.json())["spec"]["replicas"] == 1
    r = await client.put(f"{DEPLOYS}/web/scale", json=scale)  # its resourceVersion is stale now
    assert r.status == 409
    r = await client.patch(f"{DEPLOYS}/web/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
    assert r.status == 422
    assert (await r.json())["message"].startswith('Scale.autoscaling "web" is invalid: spec.replicas')


async def test_field_validation(client: TestClient) -> None:
    body = cm("a")
    body["bogus"] = 1
    r = await client.post(f"{CMS}?fieldValidation=Strict", json=body)
    assert r.status == 400
    assert (await r.json())["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                                           'strict decoding error: unknown field "bogus"')
    r = await client.post(f"{CMS}?fieldValidation=Warn", json=body)
    assert r.status == 201
    assert r.headers.getall("Warning") == ['299 - "unknown field \\"bogus\\""']
    assert "bogus" not in await r.json()  # decoded away, as a typed decoder would
    assert "bogus" not in await (await client.get(f"{CMS}/a")).json()
    body["metadata"]["name"] = "b"
    r = await client.post(f"{CMS}?fieldValidation=Ignore", json=body)
    assert r.status == 201 and "Warning" not in r.headers
    r = await client.post(f"{CMS}?fieldValidation=Nope", json=body)
    assert r.status == 400


async def test_validation_errors_are_422(client: TestClient) -> None:
    r = await client.post(DEPLOYS, json=deployment(replicas=-1))
    assert r.status == 422
    status = await r.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "spec.replicas"
    assert status["message"].startswith('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1')
    r = await client.post(CMS, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert r.status == 422
    assert (await r.json())["details"]["causes"][0]["field"] == "metadata.name"


async def test_pod_binding(client: TestClient) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert (await client.post(PODS, json=pod)).status == 201
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    r = await client.post(f"{PODS}/p/binding", json=binding)
    assert r.status == 201, await r.text()
    assert (await r.json())["status"] == "Success"
    got = await (await client.get(f"{PODS}/p")).json()
    assert got["spec"]["nodeName"] == "n1"
    assert [c["type"] for c in got["status"]["conditions"]] == ["PodScheduled"]
    r = await client.post(f"{PODS}/p/binding", json=binding)
    assert r.status == 409
    assert (await r.json())["message"] == ('Operation cannot be fulfilled on pods/binding "p": '
                                           'pod p is already assigned to node "n1"')
    scheduled = await (await client.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")).json()
    assert [i["metadata"]["name"] for i in scheduled["items"]] == ["p"]


APPLY = {"Content-Type": "application/apply-patch+yaml"}


async def test_managed_fields_and_server_side_apply(client: TestClient) -> None:
    r = await client.post(f"{CMS}?fieldManager=creator", json=cm("a", k="v"))
    entries = (await r.json())["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [("creator", "Update")]
    assert entries[0]["fieldsV1"] == {"f:data": {".": {}, "f:k": {}}}
    r = await client.post(CMS, json=cm("b"), headers={"User-Agent": "kubectl/v1.32.4 (linux/amd64)"})
    assert (await r.json())["metadata"]["managedFields"][0]["manager"] == "kubectl"

    applied = deployment("ssa", replicas=2)
    r = await client.patch(f"{DEPLOYS}/ssa?fieldManager=kubectl&force=false", json=applied, headers=APPLY)
    assert r.status == 201, await r.text()  # apply creates
    first = await r.json()
    assert [(e["manager"], e["operation"]) for e in first["metadata"]["managedFields"]] == [("kubectl", "Apply")]
    assert first["spec"]["replicas"] == 2
    r = await client.patch(f"{DEPLOYS}/ssa?fieldManager=kubectl", json=applied, headers=APPLY)
    assert r.status == 200
    assert (await r.json())["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # no-op
    r = await client.patch(f"{DEPLOYS}/ssa/scale?fieldManager=scaler", json={"spec": {"replicas": 4}},
                           headers=MERGE)
    assert r.status == 200
    r = await client.patch(f"{DEPLOYS}/ssa?fieldManager=kubectl", json=applied, headers=APPLY)
    assert r.status == 409, await r.text()
    conflict = await r.json()
    assert conflict["reason"] == "Conflict" and "spec.replicas" in conflict["message"]
    r = await client.patch(f"{DEPLOYS}/ssa?fieldManager=kubectl&force=true", json=applied, headers=APPLY)
    assert r.status == 200 and (await r.json())["spec"]["replicas"] == 2
    r = await client.patch(f"{DEPLOYS}/ssa", json=applied, headers=APPLY)
    assert r.status == 400  # apply needs a field manager


async def test_nested_unknown_fields_are_dropped_with_warnings(client: TestClient) -> None:
    body = deployment("typo")
    body["spec"]["replicass"] = 2
    body["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    r = await client.post(DEPLOYS, json=body)  # no fieldValidation: Warn
    assert r.status == 201
    assert r.headers.getall("Warning") == [  # in document order
        '299 - "unknown field \\"spec.template.spec.containers[0].imagee\\""',
        '299 - "unknown field \\"spec.replicass\\""']
    stored = await (await client.get(f"{DEPLOYS}/typo")).json()
    assert "replicass" not in stored["spec"]
    assert "imagee" not in stored["spec"]["template"]["spec"]["containers"][0]
    r = await client.patch(f"{DEPLOYS}/typo?fieldValidation=Strict", json={"spec": {"paused2": True}},
                           headers=MERGE)
    assert r.status == 400
    assert (await r.json())["message"] == 'strict decoding error: unknown field "spec.paused2"'


def test_generate_name_prefix_is_cut_to_fit_a_name() -> None:
    from skiff.apiserver.writes import generate_name

    name = generate_name("x" * 80)
    assert len(name) == 63 and name.startswith("x" * 58)


async def test_status_write_keeps_spec_but_takes_annotations(client: TestClient) -> None:
    """As the Deployment controller relies on: its revision annotation rides on a status
    write, which must neither move the generation nor let spec or labels change."""
    created = await (await client.post(DEPLOYS, json=deployment())).json()
    body = {**created, "spec": {**created["spec"], "replicas": 7},
            "metadata": {**created["metadata"], "labels": {"changed": "yes"},
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "status": {"observedGeneration": 1, "replicas": 0}}
    r = await client.put(f"{DEPLOYS}/web/status", json=body)
    assert r.status == 200, await r.text()
    got = await r.json()
    assert got["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert got["metadata"]["labels"] == {"app": "web"}  # a Deployment's status write resets labels
    assert got["spec"]["replicas"] == 1
    assert got["metadata"]["generation"] == 1
    assert got["status"]["observedGeneration"] == 1
