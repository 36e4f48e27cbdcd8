"""Create, get, update, list and the errors kubectl compares."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp.test_utils import TestClient

from apiserver_kinds import cm, kinds_registry
from skiff.api.kinds import Registry

CMS = "/api/v1/namespaces/default/configmaps"


async def test_create_get_roundtrip(client: TestClient) -> None:
    r = await client.post(CMS, json=cm("a", k="v"))
    assert r.status == 201, await r.text()
    created = await r.json()
    meta = created["metadata"]
    assert meta["name"] == "a" and meta["namespace"] == "default"
    assert len(meta["uid"]) == 36 and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert "generation" not in meta  # no spec, no generation
    r = await client.get(f"{CMS}/a")
    assert r.status == 200
    got = await r.json()
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert got["kind"] == "ConfigMap" and got["apiVersion"] == "v1"


async def test_already_exists_and_not_found_messages(client: TestClient) -> None:
    assert (await client.post(CMS, json=cm("a"))).status == 201
    r = await client.post(CMS, json=cm("a"))
    assert r.status == 409
    status = await r.json()
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "a" already exists'
    assert status["details"] == {"name": "a", "kind": "configmaps"}
    r = await client.get(f"{CMS}/missing")
    assert r.status == 404
    assert (await r.json())["message"] == 'configmaps "missing" not found'
    r = await client.get("/apis/apps/v1/namespaces/default/deployments/web")
    assert (await r.json())["message"] == 'deployments.apps "web" not found'


async def test_update_conflict_on_stale_resource_version(client: TestClient) -> None:
    created = await (await client.post(CMS, json=cm("a", k="1"))).json()
    first = dict(created, data={"k": "2"})
    r = await client.put(f"{CMS}/a", json=first)
    assert r.status == 200, await r.text()
    updated = await r.json()
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, data={"k": "3"})
    r = await client.put(f"{CMS}/a", json=stale)
    assert r.status == 409
    status = await r.json()
    assert status["reason"] == "Conflict"
    assert status["message"] == ('Operation cannot be fulfilled on configmaps "a": the object has been '
                                 'modified; please apply your changes to the latest version and try again')
    # no resourceVersion: unconditional
    body = cm("a", k="4")
    r = await client.put(f"{CMS}/a", json=body)
    assert r.status == 200 and (await r.json())["data"] == {"k": "4"}


async def test_update_keeps_system_fields_and_noop_keeps_version(client: TestClient) -> None:
    created = await (await client.post(CMS, json=cm("a", k="1"))).json()
    body = cm("a", k="1")
    body["metadata"]["uid"] = "forged"
    r = await client.put(f"{CMS}/a", json=body)
    same = await r.json()
    assert same["metadata"]["uid"] == created["metadata"]["uid"]
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_url_and_body_mismatches(client: TestClient) -> None:
    await client.post(CMS, json=cm("a"))
    r = await client.put(f"{CMS}/a", json=cm("b"))
    assert r.status == 400
    assert (await r.json())["message"] == "the name of the object (b) does not match the name on the URL (a)"
    r = await client.post(CMS, json=cm("c", ns="other"))
    assert r.status == 400
    assert (await r.json())["message"] == ("the namespace of the provided object does not match the "
                                           "namespace sent on the request")
    r = await client.post(CMS, json={"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert r.status == 400
    assert "does not match the expected API version (v1)" in (await r.json())["message"]
    r = await client.post(CMS, data=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert (await r.json())["message"].startswith(
        "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error")
    r = await client.post(CMS, data=b"x", headers={"Content-Type": "text/html"})
    assert r.status == 415 and (await r.json())["reason"] == "UnsupportedMediaType"


async def test_namespace_must_exist(client: TestClient) -> None:
    r = await client.post("/api/v1/namespaces/nope/configmaps", json=cm("a", ns="nope"))
    assert r.status == 404
    assert (await r.json())["message"] == 'namespaces "nope" not found'


async def test_generate_name_and_dry_run(client: TestClient) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "web-"}}
    r = await client.post(CMS, json=body)
    name = (await r.json())["metadata"]["name"]
    assert name.startswith("web-") and len(name) == 9
    assert all(c in "bcdfghjklmnpqrstvwxz2456789" for c in name[4:])
    r = await client.post(f"{CMS}?dryRun=All", json=cm("dry"))
    assert r.status == 201
    assert (await client.get(f"{CMS}/dry")).status == 404


async def test_yaml_body(client: TestClient) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: b\n"
    r = await client.post(CMS, data=body, headers={"Content-Type": "application/yaml"})
    assert r.status == 201, await r.text()
    assert (await r.json())["data"] == {"a": "b"}


async def test_bootstrap_objects(client: TestClient) -> None:
    r = await client.get("/api/v1/namespaces")
    names = [i["metadata"]["name"] for i in (await r.json())["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    svc = await (await client.get("/api/v1/namespaces/default/services/kubernetes")).json()
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443


async def test_unknown_paths(client: TestClient) -> None:
    r = await client.get("/api/v1/namespaces/default/nonsense")
    assert r.status == 404 and (await r.json())["reason"] == "NotFound"
    r = await client.get("/version")
    v = await r.json()
    assert (v["major"], v["minor"]) == ("1", "32")
    for path in ("/healthz", "/livez", "/readyz"):
        r = await client.get(path)
        assert (await r.text()) == "ok"


async def test_resource_version_on_create_is_refused(client: TestClient) -> None:
    body = cm("a")
    body["metadata"]["resourceVersion"] = "5"
    r = await client.post(CMS, json=body)
    assert r.status == 500
    assert (await r.json())["message"] == "resourceVersion should not be set on objects to be created"


async def test_internal_errors_are_statuses(make_client: Any) -> None:
    def broken(obj: dict[str, Any], old: object) -> list[Any]:
        raise RuntimeError("kind bug")

    kinds = [dataclasses.replace(r, validate=broken) if r.plural == "configmaps" else r
             for r in kinds_registry()]
    client = await make_client(registry=Registry(kinds))
    r = await client.post(CMS, json=cm("a"))
    assert r.status == 500
    status = await r.json()
    assert status["reason"] == "InternalError" and "kind bug" in status["message"]
    assert "Traceback" not in await r.text()


async def test_injected_clock_stamps_objects(make_client: Any) -> None:
    from skiff.client.clock import FakeClock

    client = await make_client(clock=FakeClock(wall_start=1735689600.0))
    created = await (await client.post(CMS, json=cm("a"))).json()
    assert created["metadata"]["creationTimestamp"] == "2025-01-01T00:00:00Z"


async def test_taken_generated_names_are_drawn_again(client: TestClient, monkeypatch: Any) -> None:
    from skiff.apiserver import writes

    names = iter(["web-bbbbb", "web-bbbbb", "web-ccccc"])
    monkeypatch.setattr(writes, "generate_name", lambda prefix: next(names))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "web-"}}
    first = await (await client.post(CMS, json=body)).json()
    second = await (await client.post(CMS, json=body)).json()
    assert (first["metadata"]["name"], second["metadata"]["name"]) == ("web-bbbbb", "web-ccccc")
