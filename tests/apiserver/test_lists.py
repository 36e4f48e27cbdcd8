"""LIST: pagination over many objects, resourceVersion semantics, selectors, 410s."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from apiserver_kinds import cm
from skiff.apiserver.app import CONTEXT

CMS = "/api/v1/namespaces/default/configmaps"


async def _create_many(client: TestClient, n: int) -> None:
    backend = client.app[CONTEXT].backend
    # the same path as HTTP creates, minus the HTTP round trips, to keep the test fast
    writer_path = [f"c{i:04d}" for i in range(n)]
    for name in writer_path:
        r = await client.post(CMS, json=cm(name, idx=name))
        assert r.status == 201
    assert backend.revision > n


async def test_pagination_over_1000_objects(client: TestClient) -> None:
    await _create_many(client, 1000)
    seen: list[str] = []
    token = ""
    pages = 0
    list_rv = None
    while True:
        url = f"{CMS}?limit=300" + (f"&continue={token}" if token else "")
        body = await (await client.get(url)).json()
        pages += 1
        seen += [i["metadata"]["name"] for i in body["items"]]
        list_rv = list_rv or body["metadata"]["resourceVersion"]
        assert body["metadata"]["resourceVersion"] == list_rv  # one snapshot across pages
        token = body["metadata"].get("continue", "")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == 1000 - len(seen)
        if pages == 1:
            # a write between pages does not show up in the paged snapshot
            await client.post(CMS, json=cm("zzz-late"))
    assert pages == 4
    assert seen == [f"c{i:04d}" for i in range(1000)]
    full = await (await client.get(CMS)).json()
    assert len(full["items"]) == 1001 and full["kind"] == "ConfigMapList"


async def test_selectors_with_limit_fill_pages(client: TestClient) -> None:
    for i in range(30):
        body = cm(f"o{i:02d}")
        body["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd"}
        await client.post(CMS, json=body)
    body = await (await client.get(f"{CMS}?labelSelector=parity%3Deven&limit=10")).json()
    assert [i["metadata"]["name"] for i in body["items"]] == [f"o{i:02d}" for i in range(0, 20, 2)]
    token = body["metadata"]["continue"]
    rest = await (await client.get(f"{CMS}?labelSelector=parity%3Deven&limit=10&continue={token}")).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == [f"o{i:02d}" for i in range(20, 30, 2)]
    assert "continue" not in rest["metadata"]
    by_name = await (await client.get(f"{CMS}?fieldSelector=metadata.name%3Do03")).json()
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["o03"]
    all_ns = await (await client.get("/api/v1/configmaps?labelSelector=parity+in+(odd)")).json()
    assert len(all_ns["items"]) == 15


async def test_selector_errors_are_400(client: TestClient) -> None:
    r = await client.get(f"{CMS}?labelSelector=a%20in%20b")
    assert r.status == 400
    assert (await r.json())["message"] == "unable to parse requirement: found 'b' expected: '('"
    r = await client.get(f"{CMS}?fieldSelector=spec.nodeName%3Dx")
    assert r.status == 400
    assert (await r.json())["message"] == "field label not supported: spec.nodeName"
    r = await client.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dx")
    assert r.status == 200


async def test_exact_resource_version_and_compaction(client: TestClient) -> None:
    first = await (await client.post(CMS, json=cm("a", v="1"))).json()
    rv1 = first["metadata"]["resourceVersion"]
    await client.put(f"{CMS}/a", json=cm("a", v="2"))
    old = await (await client.get(f"{CMS}?resourceVersion={rv1}&resourceVersionMatch=Exact")).json()
    assert old["metadata"]["resourceVersion"] == rv1
    assert [i["data"]["v"] for i in old["items"]] == ["1"]
    latest = await (await client.get(f"{CMS}?resourceVersion=0")).json()
    assert [i["data"]["v"] for i in latest["items"]] == ["2"]
    await client.post(CMS, json=cm("b"))
    page = await (await client.get(f"{CMS}?limit=1")).json()
    await client.put(f"{CMS}/a", json=cm("a", v="3"))
    backend = client.app[CONTEXT].backend
    await backend.compact(backend.revision)
    r = await client.get(f"{CMS}?resourceVersion={rv1}&resourceVersionMatch=Exact")
    assert r.status == 410 and (await r.json())["reason"] == "Expired"
    r = await client.get(f"{CMS}?limit=1&continue={page['metadata']['continue']}")
    assert r.status == 410
    assert (await r.json())["message"].startswith("The provided continue parameter is too old")
    r = await client.get(f"{CMS}?continue=garbage")
    assert r.status == 400


async def test_continue_with_resource_version_is_rejected(client: TestClient) -> None:
    for n in "abc":
        await client.post(CMS, json=cm(n))
    page = await (await client.get(f"{CMS}?limit=1")).json()
    token = page["metadata"]["continue"]
    r = await client.get(f"{CMS}?limit=1&continue={token}&resourceVersion=5")
    assert r.status == 400
    assert (await r.json())["message"] == "specifying resource version is not allowed when using continue"


async def test_large_lists_are_gzipped_when_accepted(client: TestClient) -> None:
    big = "x" * 4000
    for i in range(40):
        await client.post(CMS, json=cm(f"big{i}", blob=big))
    r = await client.get(CMS, headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("Content-Encoding") == "gzip"
    assert len((await r.json())["items"]) == 40  # the client inflates it
    r = await client.get(CMS, headers={"Accept-Encoding": "identity"}, auto_decompress=False)
    assert "Content-Encoding" not in r.headers
