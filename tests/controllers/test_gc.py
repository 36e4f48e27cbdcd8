"""The garbage collector against the real API server, driven by the real kubectl.

Pods are bound to a simulated node, so their deletion is graceful and finished
by the node's "kubelet", as in a real cluster.  No ReplicaSet controller runs:
the tests make the owners and dependents themselves, so every deletion seen is
the collector's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import (
    ApiServer, background, meta, owner_ref, running_controllers, wait_gone, watch_until,
)
from skiff.api.errors import StatusError
from skiff.client.resources import CONFIGMAPS, DEPLOYMENTS, PODS, REPLICASETS
from skiff.controllers.gc import GarbageCollector
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs

Obj = dict[str, Any]
NODE = "skiff-node-0"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        agents = [FakeNodeAgent(server.client, spec) for spec in fake_node_specs(1)]
        fleet = FakeNodeFleet(server.client, agents, workers=2)
        async with background(fleet.run()):
            await asyncio.wait_for(fleet.registered.wait(), 10)
            async with running_controllers(server.client, [("garbagecollector", GarbageCollector)]):
                yield server


def template(app: str) -> Obj:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


async def make_replicaset(api: ApiServer, name: str, owner: Obj | None = None) -> Obj:
    body: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                 "metadata": {"name": name, "namespace": "default"},
                 "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                          "template": template(name)}}
    if owner is not None:
        body["metadata"]["ownerReferences"] = [owner_ref(owner)]
    return await api.client.create(REPLICASETS, body)


async def make_pods(api: ApiServer, owner: Obj, count: int = 2, **ref_kwargs: bool) -> set[str]:
    names = set()
    for i in range(count):
        name = f"{meta(owner)['name']}-{i}"
        await api.client.create(PODS, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"app": meta(owner)["name"]},
                         "ownerReferences": [owner_ref(owner, **ref_kwargs)]},
            "spec": {"nodeName": NODE, **template("x")["spec"]}})
        names.add(name)
    return names


async def test_deleting_a_replicaset_deletes_its_pods(api: ApiServer) -> None:
    rs = await make_replicaset(api, "web")
    pods = await make_pods(api, rs)
    code, out, err = await api.kubectl("delete", "replicaset", "web")
    assert code == 0, err
    assert 'replicaset.apps "web" deleted' in out
    await wait_gone(api.client, PODS, pods, namespace="default")


async def test_cascade_orphan_leaves_the_pods_unowned(api: ApiServer) -> None:
    rs = await make_replicaset(api, "web")
    pods = await make_pods(api, rs)
    code, _, err = await api.kubectl("delete", "replicaset", "web", "--cascade=orphan")
    assert code == 0, err  # kubectl waited until the ReplicaSet was gone
    with pytest.raises(StatusError) as gone:
        await api.client.get(REPLICASETS, "web", namespace="default")
    assert gone.value.code == 404
    for name in pods:
        pod = await api.client.get(PODS, name, namespace="default")
        assert "ownerReferences" not in meta(pod)
        assert not meta(pod).get("deletionTimestamp")


async def test_cascade_foreground_deletes_the_pods_before_the_replicaset(api: ApiServer) -> None:
    rs = await make_replicaset(api, "web")
    pods = await make_pods(api, rs, 3)
    start = (await api.client.list(PODS, namespace="default")).resource_version
    seen_waiting = asyncio.ensure_future(watch_until(
        api.client, REPLICASETS, lambda _t, o: meta(o).get("finalizers") == ["foregroundDeletion"]
        and bool(meta(o).get("deletionTimestamp")), namespace="default", since=start))
    rs_gone = asyncio.ensure_future(watch_until(
        api.client, REPLICASETS, lambda t, o: t == "DELETED", namespace="default", since=start))
    pods_gone = asyncio.ensure_future(wait_gone(api.client, PODS, pods, namespace="default",
                                                since=start))
    code, _, err = await api.kubectl("delete", "replicaset", "web", "--cascade=foreground")
    assert code == 0, err
    waiting = await seen_waiting
    deleted_rs = await rs_gone
    last_pod_rv = await pods_gone
    assert meta(waiting)["uid"] == meta(rs)["uid"]
    # the ReplicaSet went only after its last pod did (resourceVersions are one global order)
    assert int(meta(deleted_rs)["resourceVersion"]) > int(last_pod_rv)


async def test_deleting_a_deployment_deletes_its_replicasets_and_their_pods(api: ApiServer) -> None:
    deploy = await api.client.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": template("web")}})
    old = await make_replicaset(api, "web-old", owner=deploy)
    new = await make_replicaset(api, "web-new", owner=deploy)
    pods = await make_pods(api, old) | await make_pods(api, new)
    code, _, err = await api.kubectl("delete", "deployment", "web")
    assert code == 0, err
    await wait_gone(api.client, REPLICASETS, {"web-old", "web-new"}, namespace="default")
    await wait_gone(api.client, PODS, pods, namespace="default")


async def test_a_dependent_with_another_live_owner_survives_without_the_dead_reference(
        api: ApiServer) -> None:
    keeper = await api.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "keeper"}}, namespace="default")
    doomed = await api.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "doomed"}}, namespace="default")
    await api.client.create(CONFIGMAPS, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared", "ownerReferences": [
            owner_ref(keeper, controller=False), owner_ref(doomed, controller=False)]}},
        namespace="default")
    since = (await api.client.list(CONFIGMAPS, namespace="default")).resource_version
    await api.client.delete(CONFIGMAPS, "doomed", namespace="default")
    shared = await watch_until(
        api.client, CONFIGMAPS,
        lambda _t, o: meta(o)["name"] == "shared" and len(meta(o).get("ownerReferences") or []) == 1,
        namespace="default", since=since)
    assert meta(shared)["ownerReferences"][0]["uid"] == meta(keeper)["uid"]


async def test_an_object_whose_owner_never_existed_is_collected(api: ApiServer) -> None:
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost",
             "uid": "00000000-0000-0000-0000-000000000001"}
    await api.client.create(CONFIGMAPS, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "orphaned", "ownerReferences": [ghost]}}, namespace="default")
    await wait_gone(api.client, CONFIGMAPS, {"orphaned"}, namespace="default")


async def test_a_same_named_successor_is_not_an_owner(api: ApiServer) -> None:
    """The reference names the old UID: a new object with the same name does not keep it."""
    old = await api.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "owner"}}, namespace="default")
    await api.client.delete(CONFIGMAPS, "owner", namespace="default")
    await api.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "owner"}}, namespace="default")
    await api.client.create(CONFIGMAPS, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "child", "ownerReferences": [owner_ref(old, controller=False)]}},
        namespace="default")
    await wait_gone(api.client, CONFIGMAPS, {"child"}, namespace="default")
    assert meta(await api.client.get(CONFIGMAPS, "owner", namespace="default"))["name"] == "owner"


async def test_foreground_deletion_of_a_deployment_goes_down_the_whole_chain(api: ApiServer) -> None:
    """Deployment -> ReplicaSet -> pods: the ReplicaSet is itself deleted in the foreground,
    so the pods go first, then the ReplicaSet, then the Deployment."""
    deploy = await api.client.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": template("web")}})
    rs = await make_replicaset(api, "web-1", owner=deploy)
    pods = await make_pods(api, rs)
    start = (await api.client.list(PODS, namespace="default")).resource_version
    rs_waiting = asyncio.ensure_future(watch_until(
        api.client, REPLICASETS, lambda _t, o: "foregroundDeletion" in (meta(o).get("finalizers") or []),
        namespace="default", since=start))
    rs_gone = asyncio.ensure_future(watch_until(
        api.client, REPLICASETS, lambda t, _o: t == "DELETED", namespace="default", since=start))
    deploy_gone = asyncio.ensure_future(watch_until(
        api.client, DEPLOYMENTS, lambda t, _o: t == "DELETED", namespace="default", since=start))
    pods_gone = asyncio.ensure_future(wait_gone(api.client, PODS, pods, namespace="default",
                                                since=start))
    code, _, err = await api.kubectl("delete", "deployment", "web", "--cascade=foreground")
    assert code == 0, err
    await rs_waiting
    last_pod = int(await pods_gone)
    rs_rv = int(meta(await rs_gone)["resourceVersion"])
    deploy_rv = int(meta(await deploy_gone)["resourceVersion"])
    assert last_pod < rs_rv < deploy_rv
