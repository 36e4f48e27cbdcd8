"""Priority admission: PriorityClass names become pod priorities, as in Kubernetes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from skiff.api.kinds import builtin_registry

PODS = "/api/v1/namespaces/default/pods"
CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    """The built-in kinds: Pod defaulting and PriorityClass as skiff serves them."""
    return await make_client(registry=builtin_registry())


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def priority_class(name: str, value: int, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, **extra}


async def test_a_class_name_sets_priority_and_policy(client: TestClient) -> None:
    r = await client.post(CLASSES, json=priority_class("high", 1000, preemptionPolicy="Never"))
    assert r.status == 201, await r.text()
    created = await (await client.post(PODS, json=pod("p", priorityClassName="high"))).json()
    assert created["spec"]["priority"] == 1000
    assert created["spec"]["preemptionPolicy"] == "Never"


async def test_system_classes_exist_and_unknown_names_are_refused(client: TestClient) -> None:
    names = {c["metadata"]["name"] for c in (await (await client.get(CLASSES)).json())["items"]}
    assert {"system-node-critical", "system-cluster-critical"} <= names
    critical = await (await client.post(PODS, json=pod("c", priorityClassName="system-node-critical"))).json()
    assert critical["spec"]["priority"] == 2000001000
    r = await client.post(PODS, json=pod("x", priorityClassName="nope"))
    assert r.status == 403
    assert (await r.json())["message"] == \
        'pods "x" is forbidden: no PriorityClass with name nope was found'


async def test_global_default_and_conflicting_priority(client: TestClient) -> None:
    plain = await (await client.post(PODS, json=pod("before"))).json()
    assert plain["spec"]["priority"] == 0
    await client.post(CLASSES, json=priority_class("everyone", 7, globalDefault=True))
    after = await (await client.post(PODS, json=pod("after"))).json()
    assert (after["spec"]["priorityClassName"], after["spec"]["priority"]) == ("everyone", 7)
    r = await client.post(PODS, json=pod("bad", priorityClassName="everyone", priority=5))
    assert r.status == 403
    await client.delete(f"{CLASSES}/everyone")
    later = await (await client.post(PODS, json=pod("later"))).json()
    assert later["spec"]["priority"] == 0 and "priorityClassName" not in later["spec"]
