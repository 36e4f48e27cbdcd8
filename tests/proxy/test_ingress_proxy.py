"""The ingress controller against the real API server, proxying to real HTTP backends."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from apiserver_support import ApiServer
from skiff.client.resources import ENDPOINTSLICES, EVENTS, SERVICES
from skiff.proxy.ingress import IngressController
from skiff.proxy.ingress.controller import INGRESSCLASSES, INGRESSES
from skiff.proxy.ingress.routes import BackendRef
from test_ingress_support import (DEADLINE, Backend, create_ingress, endpoint_slice, expose, get,
                                  http_path, ingress, running_controller, served_by, wait_for)

Obj = dict[str, Any]


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, Backend]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {name: await stack.enter_async_context(Backend(name)) for name in ("a", "b", "x", "d", "e")}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_paths_hosts_default_backend_headers_status_and_class(
        api: ApiServer, backends: dict[str, Backend], session: aiohttp.ClientSession) -> None:
    for name in ("a", "b", "x", "d"):
        await expose(api.client, f"svc-{name}", backends[name])
    async with running_controller(api.client, status_address="127.0.0.1") as controller:
        skiff_class = await api.client.get(INGRESSCLASSES, "skiff")
        assert skiff_class["spec"]["controller"] == "skiff.dev/ingress"
        assert skiff_class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
        await create_ingress(api.client, controller, ingress("web", [
            {"http": {"paths": [http_path("/a", "svc-a"), http_path("/b", "svc-b", port="http")]}},
            {"host": "x.test", "http": {"paths": [http_path("/", "svc-x")]}}], default="svc-d"))

        assert await served_by(session, controller, "/a") == "a"
        assert await served_by(session, controller, "/a/deeper") == "a"
        assert await served_by(session, controller, "/b") == "b"          # port by name
        assert await served_by(session, controller, "/a", host="x.test") == "x"
        assert await served_by(session, controller, "/abc") == "d"        # not element-wise /a: default
        assert await served_by(session, controller, "/", host="elsewhere.test") == "d"

        # Method, path, query, body and headers arrive; forwarding headers are set.
        status, echo = await get(session, controller, "/a/p%20q?x=1&y=%2F", method="POST", host="h.test:8080",
                                 data=b"payload", headers={"X-Custom": "kept", "X-Forwarded-For": "6.6.6.6"})
        assert status == 200
        assert (echo["method"], echo["path"], echo["body"]) == ("POST", "/a/p%20q?x=1&y=%2F", "payload")
        headers = echo["headers"]
        assert headers["Host"] == "h.test:8080" and headers["X-Custom"] == "kept"
        assert headers["X-Forwarded-For"] == "127.0.0.1" and headers["X-Real-IP"] == "127.0.0.1"
        assert headers["X-Forwarded-Proto"] == "http" and headers["X-Forwarded-Host"] == "h.test:8080"
        assert headers["X-Forwarded-Port"] == str(controller.http_port)
        assert "User-Agent" in headers and headers["User-Agent"].startswith("Python")  # the client's own

        # Status: the controller's address; kubectl's ADDRESS column shows it.
        web = await api.client.get(INGRESSES, "web", namespace="default")
        assert web["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
        # An Event says the controller took the Ingress in.
        await asyncio.wait_for(_event_seen(api, "web", "Sync"), DEADLINE)

        # Another class is not ours; no class is ours (skiff is the default class).
        await create_ingress(api.client, controller, ingress("theirs", [
            {"host": "theirs.test", "http": {"paths": [http_path("/", "svc-a")]}}], class_name="nginx"),
            served=False)
        assert await served_by(session, controller, "/", host="theirs.test") == "d"
        theirs = await api.client.get(INGRESSES, "theirs", namespace="default")
        assert not (theirs.get("status") or {}).get("loadBalancer")
        await create_ingress(api.client, controller, ingress("legacy", [
            {"host": "legacy.test", "http": {"paths": [http_path("/", "svc-b")]}}],
            annotations={"kubernetes.io/ingress.class": "skiff"}))
        assert await served_by(session, controller, "/", host="legacy.test") == "b"

        # Switching an Ingress to another class takes it out, and our address off it.
        await api.client.patch(INGRESSES, "legacy", {"metadata": {"annotations": {
            "kubernetes.io/ingress.class": "nginx"}}}, namespace="default")
        await wait_for(controller, lambda: "default/legacy" not in controller.served)
        legacy = await _wait_status(api, controller, "legacy", [])
        assert legacy["metadata"]["name"] == "legacy"


async def test_not_found_and_unavailable(api: ApiServer, backends: dict[str, Backend],
                                         session: aiohttp.ClientSession) -> None:
    await expose(api.client, "svc-a", backends["a"])
    await expose(api.client, "no-endpoints", None)
    await api.client.create(SERVICES, {"metadata": {"name": "not-ready"}, "spec": {
        "ports": [{"name": "http", "port": 80}]}}, namespace="default")
    await api.client.create(ENDPOINTSLICES, endpoint_slice("not-ready", [backends["b"].port], ready=False),
                            namespace="default")
    async with running_controller(api.client) as controller:
        status, body = await get(session, controller, "/anything")
        assert status == 404 and "404 Not Found" in body                # nothing served yet
        await create_ingress(api.client, controller, ingress("web", [{"host": "h.test", "http": {"paths": [
            http_path("/a", "svc-a"), http_path("/empty", "no-endpoints"), http_path("/gone", "missing"),
            http_path("/down", "not-ready"), http_path("/badport", "svc-a", port=81)]}}]))
        assert await served_by(session, controller, "/a", host="h.test") == "a"
        status, body = await get(session, controller, "/nope", host="h.test")
        assert status == 404 and "404 Not Found" in body
        for path in ("/empty", "/gone", "/down", "/badport"):
            status, body = await get(session, controller, path, host="h.test")
            assert status == 503 and "503" in body, path


async def test_endpoint_changes_are_picked_up(api: ApiServer, backends: dict[str, Backend],
                                              session: aiohttp.ClientSession) -> None:
    await expose(api.client, "web", backends["a"])
    async with running_controller(api.client) as controller:
        await create_ingress(api.client, controller, ingress("web", [{"http": {"paths": [
            http_path("/", "web")]}}]))
        assert await served_by(session, controller, "/") == "a"
        ref = BackendRef("default", "web", 80)
        await api.client.patch(ENDPOINTSLICES, "web-manual", {"ports": [
            {"name": "http", "port": backends["e"].port, "protocol": "TCP"}]}, namespace="default")
        await wait_for(controller, lambda: controller.endpoints(ref) == [("127.0.0.1", backends["e"].port)])
        assert await served_by(session, controller, "/") == "e"
        await api.client.patch(ENDPOINTSLICES, "web-manual", {"endpoints": [
            {"addresses": ["127.0.0.1"], "conditions": {"ready": False}}]}, namespace="default")
        await wait_for(controller, lambda: controller.endpoints(ref) == [])
        assert (await get(session, controller, "/"))[0] == 503


async def test_endpoints_the_host_does_not_route_are_never_dialled(
        api: ApiServer, backends: dict[str, Backend], session: aiohttp.ClientSession) -> None:
    # Stand-in for a simulated pod's address: the guard says this host does not route it.
    await api.client.create(SERVICES, {"metadata": {"name": "sim"}, "spec": {
        "ports": [{"name": "http", "port": 80}]}}, namespace="default")
    far = endpoint_slice("sim", [backends["a"].port])
    far["endpoints"] = [{"addresses": ["127.0.0.3"], "conditions": {"ready": True}}]
    await api.client.create(ENDPOINTSLICES, far, namespace="default")
    await expose(api.client, "svc-a", backends["a"])
    asked: list[str] = []

    async def guard(address: str) -> bool:
        asked.append(address)
        return address != "127.0.0.3"

    async with running_controller(api.client, dial_guard=guard) as controller:
        await create_ingress(api.client, controller, ingress("sim", [{"http": {"paths": [
            http_path("/sim", "sim"), http_path("/a", "svc-a")]}}]))
        status, body = await get(session, controller, "/sim")
        assert status == 503 and asked == ["127.0.0.3"]      # 503 without a try (a try would be 502)
        assert await served_by(session, controller, "/a") == "a"


async def test_round_robin_and_a_refusing_endpoint_is_skipped(
        api: ApiServer, backends: dict[str, Backend], session: aiohttp.ClientSession) -> None:
    await api.client.create(SERVICES, {"metadata": {"name": "pool"}, "spec": {
        "ports": [{"name": "http", "port": 80}]}}, namespace="default")
    # Two live backends on 127.0.0.1 and one address where nothing listens (127.0.0.2 on a's port).
    for name in ("a", "b"):
        await api.client.create(ENDPOINTSLICES, {
            **endpoint_slice("pool", [backends[name].port]),
            "metadata": {"name": f"pool-{name}", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "pool"}}}, namespace="default")
    dead = endpoint_slice("pool", [backends["a"].port])
    dead["metadata"]["name"] = "pool-dead"
    dead["endpoints"] = [{"addresses": ["127.0.0.2"], "conditions": {"ready": True}}]
    await api.client.create(ENDPOINTSLICES, dead, namespace="default")
    async with running_controller(api.client) as controller:
        await create_ingress(api.client, controller, ingress("pool", [{"http": {"paths": [
            http_path("/", "pool")]}}]))
        await wait_for(controller, lambda: len(controller.endpoints(BackendRef("default", "pool", 80))) == 3)
        seen = [await served_by(session, controller, "/") for _ in range(6)]
        assert sorted(set(seen)) == ["a", "b"]                 # the dead one never answers, never fails


async def test_streaming_both_ways_and_websockets(api: ApiServer, backends: dict[str, Backend],
                                                  session: aiohttp.ClientSession) -> None:
    await expose(api.client, "svc-a", backends["a"])
    async with running_controller(api.client) as controller:
        await create_ingress(api.client, controller, ingress("web", [{"http": {"paths": [
            http_path("/", "svc-a")]}}]))
        base = f"http://127.0.0.1:{controller.http_port}"
        # The first half of a response reaches the client before the backend writes the rest.
        async with session.get(f"{base}/stream") as response:
            assert await asyncio.wait_for(response.content.readline(), DEADLINE) == b"first-half\n"
            backends["a"].release_stream.set()
            assert await asyncio.wait_for(response.content.read(), DEADLINE) == b"second-half\n"

        # A chunked upload (no Content-Length) arrives whole.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 65536
        async with session.post(f"{base}/upload", data=chunks()) as response:
            echo = await response.json()
        assert echo["body_length"] == 64 * 65536 and echo["chunked"]
        # A client that waits for "100 Continue" before its body gets it from the proxy.
        async with asyncio.timeout(DEADLINE):
            async with session.put(f"{base}/upload", data=b"y" * 100_000, expect100=True) as response:
                echo = await response.json()
        assert echo["body_length"] == 100_000 and "Expect" not in echo["headers"]

        async with session.ws_connect(f"{base}/ws", protocols=("echo",)) as ws:
            assert ws.protocol == "echo"
            await ws.send_str("hello")
            assert (await ws.receive_str(timeout=DEADLINE)) == "a:hello"
            await ws.send_bytes(b"abc")
            assert (await ws.receive_bytes(timeout=DEADLINE)) == b"cba"


async def test_rewrite_target_and_regex_paths(api: ApiServer, backends: dict[str, Backend],
                                             session: aiohttp.ClientSession) -> None:
    await expose(api.client, "svc-a", backends["a"])
    async with running_controller(api.client) as controller:
        await create_ingress(api.client, controller, ingress("rewrite", [{"host": "rw.test", "http": {"paths": [
            http_path("/something(/|$)(.*)", "svc-a", "ImplementationSpecific")]}}],
            annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}))
        status, echo = await get(session, controller, "/something/new/page?x=1", host="rw.test")
        assert status == 200 and echo["path"] == "/new/page?x=1"
        status, echo = await get(session, controller, "/something", host="rw.test")
        assert status == 200 and echo["path"] == "/"
        assert (await get(session, controller, "/other", host="rw.test"))[0] == 404


async def test_listeners_close_when_cancelled(api: ApiServer) -> None:
    async with running_controller(api.client) as controller:
        port = controller.http_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def _event_seen(api: ApiServer, name: str, reason: str) -> None:
    listing = await api.client.list(EVENTS, namespace="default")
    if any(_is(e, name, reason) for e in listing.items):
        return
    async with api.client.watch(EVENTS, namespace="default",
                                resource_version=listing.resource_version) as events:
        async for _, event in events:
            if _is(event, name, reason):
                return


def _is(event: Obj, name: str, reason: str) -> bool:
    return bool(event.get("involvedObject", {}).get("name") == name and event.get("reason") == reason
                and event.get("involvedObject", {}).get("kind") == "Ingress")


async def _wait_status(api: ApiServer, controller: IngressController, name: str, expected: list[Obj]) -> Obj:
    def shows() -> bool:
        cached = controller.ingress(f"default/{name}")
        current = ((cached or {}).get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        return cached is not None and current == expected
    await wait_for(controller, shows)
    obj: Obj = await api.client.get(INGRESSES, name, namespace="default")
    return obj


async def test_a_port_in_use_fails_the_start_and_leaks_no_socket(api: ApiServer) -> None:
    async with running_controller(api.client) as first:
        taken = first.https_port
        await api.client.list(INGRESSES)                      # the API connection is open already
        sockets_before = _socket_count()
        controller = IngressController(api.client, host="127.0.0.1", http_port=0, https_port=taken)
        with pytest.raises(OSError) as failure:
            await asyncio.wait_for(controller.run(), DEADLINE)
        assert failure.value.errno == errno.EADDRINUSE
        assert _socket_count() == sockets_before            # the HTTP socket it had bound is closed


def _socket_count() -> int:
    return sum(os.readlink(f"/proc/self/fd/{fd}").startswith("socket:") for fd in os.listdir("/proc/self/fd")
               if os.path.exists(f"/proc/self/fd/{fd}"))
