"""The EndpointSlice mirroring controller: hand-written Endpoints reach EndpointSlices."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import ApiServer, running_controllers
from skiff.client.resources import ENDPOINTS, ENDPOINTSLICES, SERVICES
from skiff.controllers.endpointslicemirroring import EndpointSliceMirroringController
from test_endpoints_support import observing, service

Obj = dict[str, Any]
MIRRORED = "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io"


@pytest.fixture
async def mirror(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        async with running_controllers(server.client, [
                ("endpointslicemirroring", EndpointSliceMirroringController)]):
            yield server


def manual(name: str, subsets: list[Obj], **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "default", "labels": labels,
                         "annotations": {"team": "db",
                                         "endpoints.kubernetes.io/last-change-trigger-time":
                                             "2025-01-01T00:00:00Z"}},
            "subsets": subsets}


PORTS = [{"name": "pg", "port": 5432, "protocol": "TCP"}]


async def test_manual_endpoints_are_mirrored(mirror: ApiServer) -> None:
    client = mirror.client
    async with observing(client, ENDPOINTSLICES, label_selector=MIRRORED) as obs:
        await client.create(SERVICES, service("db", None, [{"name": "pg", "port": 5432}]))
        eps = await client.create(ENDPOINTS, manual("db", [
            {"addresses": [{"ip": "192.0.2.10", "hostname": "db-a"}],
             "notReadyAddresses": [{"ip": "192.0.2.11"}], "ports": PORTS},
            {"addresses": [{"ip": "2001:db8::1"}], "ports": PORTS}], tier="data"))
        slices = await obs.wait_for(lambda s: s if len(s) == 2 else None, what="2 slices")
    by_type = {s["addressType"]: s for s in slices}
    v4 = by_type["IPv4"]
    assert v4["metadata"]["labels"] == {
        "tier": "data", "kubernetes.io/service-name": "db",
        "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert v4["metadata"]["annotations"] == {"team": "db"}
    assert v4["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert v4["metadata"]["ownerReferences"][0]["uid"] == eps["metadata"]["uid"]
    assert v4["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    assert v4["endpoints"] == [
        {"addresses": ["192.0.2.10"], "conditions": {"ready": True}, "hostname": "db-a"},
        {"addresses": ["192.0.2.11"], "conditions": {"ready": False}}]
    assert by_type["IPv6"]["endpoints"] == [{"addresses": ["2001:db8::1"],
                                             "conditions": {"ready": True}}]


async def test_mirror_follows_changes_and_stops(mirror: ApiServer) -> None:
    client = mirror.client
    async with observing(client, ENDPOINTSLICES, label_selector=MIRRORED) as obs:
        await client.create(SERVICES, service("db", None, [{"name": "pg", "port": 5432}]))
        eps = await client.create(ENDPOINTS, manual("db", [
            {"addresses": [{"ip": "192.0.2.10"}], "ports": PORTS}]))
        [first] = await obs.wait_for(lambda s: s if len(s) == 1 else None, what="mirrored")
        eps["subsets"][0]["addresses"].append({"ip": "192.0.2.12"})
        eps = await client.update(ENDPOINTS, eps)
        [second] = await obs.wait_for(lambda s: s if len(s) == 1 and len(
            s[0]["endpoints"]) == 2 else None, what="second address")
        assert second["metadata"]["name"] == first["metadata"]["name"]
        eps["metadata"]["labels"] = {"endpointslice.kubernetes.io/skip-mirror": "true"}
        await client.update(ENDPOINTS, eps)
        await obs.wait_for(lambda s: not s, what="skip-mirror removes the slices")


async def test_selector_services_and_missing_services_are_not_mirrored(mirror: ApiServer) -> None:
    client = mirror.client
    async with observing(client, ENDPOINTSLICES, label_selector=MIRRORED) as obs:
        await client.create(SERVICES, service("web", {"app": "web"}))
        await client.create(ENDPOINTS, manual("web", [
            {"addresses": [{"ip": "192.0.2.20"}], "ports": PORTS}]))
        await client.create(ENDPOINTS, manual("orphan", [
            {"addresses": [{"ip": "192.0.2.21"}], "ports": PORTS}]))
        await client.create(SERVICES, service("db", None, [{"name": "pg", "port": 5432}]))
        await client.create(ENDPOINTS, manual("db", [
            {"addresses": [{"ip": "192.0.2.22"}], "ports": PORTS}]))
        await obs.wait_for(lambda s: s if len(s) == 1 else None, what="db mirrored")
        names = {s["metadata"]["labels"]["kubernetes.io/service-name"] for s in obs.items()}
        assert names == {"db"}
        await client.delete(SERVICES, "db", namespace="default")
        await obs.wait_for(lambda s: not s, what="service gone, mirror gone")
