"""The namespace controller: ``kubectl delete namespace`` empties it, then it goes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import ApiServer, background, meta, running_controllers, watch_until
from skiff.api.errors import StatusError
from skiff.client.resources import (
    CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS, SECRETS, SERVICES,
)
from skiff.controllers.gc import GarbageCollector
from skiff.controllers.namespace import NamespaceController
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs

Obj = dict[str, Any]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        agents = [FakeNodeAgent(server.client, spec) for spec in fake_node_specs(1)]
        fleet = FakeNodeFleet(server.client, agents, workers=2)
        async with background(fleet.run()):
            await asyncio.wait_for(fleet.registered.wait(), 10)
            async with running_controllers(server.client, [
                    ("garbagecollector", GarbageCollector), ("namespace", NamespaceController)]):
                yield server


async def fill(api: ApiServer, ns: str) -> None:
    """A bit of everything: running pods on a node, a deployment, config, a service."""
    await api.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": ns}})
    for i in range(3):
        await api.client.create(PODS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
            "spec": {"nodeName": "skiff-node-0",
                     "containers": [{"name": "c", "image": "nginx"}]}}, namespace=ns)
    await api.client.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
        namespace=ns)
    await api.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "cfg"}, "data": {"a": "b"}},
                            namespace=ns)
    await api.client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                      "metadata": {"name": "s"}, "stringData": {"a": "b"}},
                            namespace=ns)
    await api.client.create(SERVICES, {"apiVersion": "v1", "kind": "Service",
                                       "metadata": {"name": "svc"},
                                       "spec": {"ports": [{"port": 80}]}}, namespace=ns)


async def assert_gone(api: ApiServer, ns: str) -> None:
    with pytest.raises(StatusError) as err:
        await api.client.get(NAMESPACES, ns)
    assert err.value.code == 404


async def test_kubectl_delete_namespace_returns_once_everything_is_gone(api: ApiServer) -> None:
    await fill(api, "doomed")
    code, out, err = await api.kubectl("delete", "namespace", "doomed")
    assert code == 0, err
    assert 'namespace "doomed" deleted' in out
    await assert_gone(api, "doomed")
    for res in (PODS, DEPLOYMENTS, CONFIGMAPS, SECRETS, SERVICES):
        assert (await api.client.list(res, namespace="doomed")).items == []
    # a namespace of the same name starts empty
    await api.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "doomed"}})
    assert (await api.client.list(PODS, namespace="doomed")).items == []


async def test_terminating_namespace_reports_what_holds_it(api: ApiServer) -> None:
    await fill(api, "held")
    await api.client.create(CONFIGMAPS, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "stubborn", "finalizers": ["example.com/hold"]}}, namespace="held")
    since = (await api.client.list(NAMESPACES)).resource_version
    deleting = asyncio.ensure_future(api.kubectl("delete", "namespace", "held"))

    only_held = "Some resources are remaining: configmaps. has 1 resource instances"

    def reports_hold(_type: str, ns: Obj) -> bool:
        # the first passes may still see pods finishing on their node; wait for the end state
        conds = {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}
        return conds.get("NamespaceContentRemaining", {}).get("message") == only_held
    ns = await watch_until(api.client, NAMESPACES, reports_hold,
                           field_selector="metadata.name=held", since=since)
    assert ns["status"]["phase"] == "Terminating"
    conds = {c["type"]: c for c in ns["status"]["conditions"]}
    assert (conds["NamespaceContentRemaining"]["status"],
            conds["NamespaceContentRemaining"]["reason"]) == ("True", "SomeResourcesRemain")
    assert (conds["NamespaceFinalizersRemaining"]["reason"],
            conds["NamespaceFinalizersRemaining"]["message"]) == (
        "SomeFinalizerRemain", "Some finalizers are remaining: example.com/hold in 1 resource instances")
    assert conds["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
    assert conds["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    assert conds["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    # everything else is already gone; the held object is marked for deletion
    assert (await api.client.list(PODS, namespace="held")).items == []
    stubborn = await api.client.get(CONFIGMAPS, "stubborn", namespace="held")
    assert meta(stubborn).get("deletionTimestamp")
    assert not deleting.done()
    # new content is refused while it terminates
    with pytest.raises(StatusError) as refused:
        await api.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "late"}}, namespace="held")
    assert refused.value.code == 403

    await api.client.patch(CONFIGMAPS, "stubborn", {"metadata": {"finalizers": None}},
                           namespace="held")
    code, _, err = await asyncio.wait_for(deleting, 20)
    assert code == 0, err
    await assert_gone(api, "held")


async def test_a_namespace_not_being_deleted_is_left_alone(api: ApiServer) -> None:
    await fill(api, "alive")
    await api.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "gone-soon"}})
    code, _, err = await api.kubectl("delete", "namespace", "gone-soon")
    assert code == 0, err
    ns = await api.client.get(NAMESPACES, "alive")
    assert ns["status"]["phase"] == "Active" and "conditions" not in ns["status"]
    assert len((await api.client.list(PODS, namespace="alive")).items) == 3
