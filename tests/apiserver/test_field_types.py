"""A value of the wrong JSON type is 400 BadRequest with Go's decoding message, as
kube-apiserver answers it -- never a validator's crash (500) and never stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

Obj = dict[str, Any]
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
PREFIX = 'Deployment in version "v1" cannot be handled as a Deployment: '


def deployment() -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def changed(path: str, value: Any) -> Obj:
    obj = deployment()
    *parents, last = path.split(".")
    target = obj
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[last] = value
    return obj


@pytest.mark.parametrize(("path", "value", "message"), [
    ("spec.replicas", "two",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("spec.replicas", 1.5,
     "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("spec.paused", "yes",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"),
    ("metadata.labels", {"x": 1},
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
    ("spec.template.spec.containers", {"name": "c"},
     "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type "
     "[]v1.Container"),
    ("spec.template.spec.containers.0.args", [1],
     "json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.args "
     "of type string"),
    ("spec.template.spec.containers.0.resources", {"limits": {"cpu": True}},
     "json: cannot unmarshal bool into Go struct field ResourceRequirements.spec.template.spec.containers"
     ".resources.limits of type resource.Quantity"),
])
async def test_a_mistyped_field_is_a_bad_request(client: TestClient, path: str, value: Any, message: str) -> None:
    r = await client.post(DEPLOYMENTS, json=changed(path, value))
    body = await r.json()
    assert (r.status, body["reason"], body["message"]) == (400, "BadRequest", PREFIX + message)
    assert (await client.get(f"{DEPLOYMENTS}/web")).status == 404


async def test_a_mistyped_patch_is_a_bad_request_and_changes_nothing(client: TestClient) -> None:
    created = await (await client.post(DEPLOYMENTS, json=deployment())).json()
    for content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        r = await client.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": "two"}},
                               headers={"Content-Type": content_type})
        assert (r.status, (await r.json())["message"]) == (
            400, "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32")
    kept = await (await client.get(f"{DEPLOYMENTS}/web")).json()
    assert kept["spec"]["replicas"] == 2
    assert kept["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_null_integral_floats_and_quantities_as_numbers_are_accepted(client: TestClient) -> None:
    obj = copy.deepcopy(deployment())
    obj["spec"]["replicas"] = 3.0                      # what some YAML tools write
    obj["spec"]["paused"] = None
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 1, "memory": "64Mi"}}
    r = await client.post(DEPLOYMENTS, json=obj)
    assert r.status == 201, await r.text()
