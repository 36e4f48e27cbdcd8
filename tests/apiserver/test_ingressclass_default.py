"""DefaultIngressClass admission: a class-less Ingress gets the default IngressClass."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from skiff.api.kinds import builtin_registry

INGRESSES = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
CLASSES = "/apis/networking.k8s.io/v1/ingressclasses"
DEFAULT = {"ingressclass.kubernetes.io/is-default-class": "true"}


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    return await make_client(registry=builtin_registry())


def ingress(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"defaultBackend": backend, **spec}}


def ingress_class(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"controller": f"example.com/{name}"}}


async def create(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(path, json=body)
    assert r.status == 201, await r.text()
    return dict(await r.json())


async def test_without_a_default_class_nothing_is_set(client: TestClient) -> None:
    await create(client, CLASSES, ingress_class("plain"))
    assert "ingressClassName" not in (await create(client, INGRESSES, ingress("a")))["spec"]


async def test_the_default_class_fills_only_class_less_ingresses(client: TestClient) -> None:
    await create(client, CLASSES, ingress_class("skiff", DEFAULT))
    await create(client, CLASSES, ingress_class("other"))
    assert (await create(client, INGRESSES, ingress("a")))["spec"]["ingressClassName"] == "skiff"
    named = await create(client, INGRESSES, ingress("b", ingressClassName="other"))
    assert named["spec"]["ingressClassName"] == "other"
    legacy = await create(client, INGRESSES, ingress("c", {"kubernetes.io/ingress.class": "other"}))
    assert "ingressClassName" not in legacy["spec"]


async def test_a_deleted_default_no_longer_applies(client: TestClient) -> None:
    await create(client, CLASSES, ingress_class("skiff", DEFAULT))
    r = await client.delete(CLASSES + "/skiff")
    assert r.status == 200, await r.text()
    assert "ingressClassName" not in (await create(client, INGRESSES, ingress("a")))["spec"]


async def test_updates_keep_what_the_user_wrote(client: TestClient) -> None:
    created = await create(client, INGRESSES, ingress("a"))
    await create(client, CLASSES, ingress_class("skiff", DEFAULT))
    r = await client.put(INGRESSES + "/a", json=created)
    assert r.status == 200, await r.text()
    assert "ingressClassName" not in (await r.json())["spec"]
