"""Discovery documents (legacy and aggregated v2/v2beta1) and Table answers."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from apiserver_kinds import cm

AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
V2BETA1_ONLY = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


async def test_legacy_discovery(client: TestClient) -> None:
    api = await (await client.get("/api")).json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    apis = await (await client.get("/apis")).json()
    assert apis["kind"] == "APIGroupList"
    apps = next(g for g in apis["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] in apps["versions"]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    group = await (await client.get("/apis/apps")).json()
    assert group["kind"] == "APIGroup" and group["name"] == "apps"
    core = await (await client.get("/api/v1")).json()
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["namespaced"] is True and by_name["pods"]["kind"] == "Pod"
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["categories"] == ["all"]
    assert set(by_name["pods"]["verbs"]) >= {"get", "list", "watch", "create", "delete"}
    assert by_name["pods/exec"]["kind"] == "PodExecOptions"
    assert by_name["pods/status"]["kind"] == "Pod"
    assert by_name["namespaces"]["namespaced"] is False
    apps_v1 = await (await client.get("/apis/apps/v1")).json()
    scale = next(r for r in apps_v1["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert (await client.get("/apis/nope")).status == 404
    assert (await client.get("/apis/apps/v9")).status == 404


async def test_aggregated_discovery_by_accept(client: TestClient) -> None:
    r = await client.get("/apis", headers={"Accept": AGGREGATED})
    assert r.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    body = await r.json()
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    apps = next(i for i in body["items"] if i["metadata"]["name"] == "apps")
    deploy = next(res for res in apps["versions"][0]["resources"] if res["resource"] == "deployments")
    assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert deploy["scope"] == "Namespaced" and deploy["singularResource"] == "deployment"
    assert deploy["shortNames"] == ["deploy"]
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    r = await client.get("/api", headers={"Accept": V2BETA1_ONLY})
    assert r.headers["Content-Type"].endswith("v=v2beta1;as=APIGroupDiscoveryList")
    core = await r.json()
    assert core["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    assert [i["metadata"].get("name", "") for i in core["items"]] == [""]
    r = await client.get("/api", headers={"Accept": "application/json"})
    assert (await r.json())["kind"] == "APIVersions"


async def test_tables_for_lists_and_single_objects(client: TestClient) -> None:
    await client.post("/api/v1/namespaces/default/configmaps", json=cm("a", k="v", l="w"))
    r = await client.get("/api/v1/namespaces/default/configmaps?limit=500", headers={"Accept": TABLE})
    body = await r.json()
    assert body["kind"] == "Table" and body["apiVersion"] == "meta.k8s.io/v1"
    assert body["columnDefinitions"][0] == {"name": "Name", "type": "string", "format": "name",
                                            "description": "", "priority": 0}
    assert body["rows"][0]["cells"] == ["a", 2]
    assert body["rows"][0]["object"]["metadata"]["name"] == "a"
    assert body["metadata"]["resourceVersion"]
    r = await client.get("/api/v1/namespaces/default/configmaps/a?includeObject=Object",
                         headers={"Accept": TABLE})
    single = await r.json()
    assert single["rows"][0]["object"]["kind"] == "ConfigMap"
    meta = await (await client.get("/api/v1/namespaces/default/configmaps",
                                   headers={"Accept": "application/json;as=PartialObjectMetadataList;"
                                                      "v=v1;g=meta.k8s.io"})).json()
    assert meta["kind"] == "PartialObjectMetadataList"
    assert "data" not in meta["items"][0]


async def test_openapi_v3(client: TestClient) -> None:
    index = await (await client.get("/openapi/v3")).json()
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = await (await client.get(url)).json()
    assert doc["openapi"].startswith("3.")
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    assert (await client.get("/openapi/v3/apis/nope/v1")).status == 404
