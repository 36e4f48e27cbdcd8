"""VolumeBinding: claims decide where a pod may go, and binding waits for them (no cluster)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from skiff.scheduler.interface import Code, CycleState
from skiff.scheduler.plugins.volumebinding import (ERR_BIND_CONFLICT, ERR_NODE_CONFLICT, ERR_PV_NOT_EXIST,
                                                   ERR_UNBOUND_IMMEDIATE, VolumeBinding)
from skiff.scheduler.podinfo import PodInfo
from skiff.scheduler.snapshot import NodeInfo, Snapshot

from .builders import node, pod

Obj = dict[str, Any]
WFFC = {"metadata": {"name": "wait"}, "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer"}
LOCAL_PATH = {"metadata": {"name": "standard"}, "provisioner": "skiff.dev/local-path",
              "volumeBindingMode": "WaitForFirstConsumer"}
NOW = {"metadata": {"name": "now"}, "provisioner": "skiff.dev/local-path", "volumeBindingMode": "Immediate"}


class Lister:
    """Claims, volumes and classes as plain dicts (what the informers would hold)."""

    def __init__(self, claims: list[Obj] = (), volumes: list[Obj] = (), classes: list[Obj] = ()) -> None:
        self.claims = {f"{c['metadata']['namespace']}/{c['metadata']['name']}": c for c in claims}
        self.pvs = {v["metadata"]["name"]: v for v in volumes}
        self.classes = {c["metadata"]["name"]: c for c in classes}

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self.claims.get(f"{namespace}/{name}")

    def volume(self, name: str) -> Obj | None:
        return self.pvs.get(name)

    def volumes(self) -> list[Obj]:
        return list(self.pvs.values())

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name)


class Client:
    """Records the writes PreBind makes."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, Obj]] = []

    async def update(self, resource: Any, body: Obj, **_: Any) -> Obj:
        self.writes.append(("update", body["metadata"]["name"], body))
        return body

    async def patch(self, resource: Any, name: str, patch: Obj, **_: Any) -> Obj:
        self.writes.append(("patch", name, patch))
        return patch


def claim(name: str, size: str = "1Gi", *, cls: str = "", volume: str = "", completed: bool = False,
          deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}", "annotations": {}}
    if completed:
        meta["annotations"]["pv.kubernetes.io/bind-completed"] = "yes"
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                 "storageClassName": cls}
    if volume:
        spec["volumeName"] = volume
    return {"metadata": meta, "spec": spec, "status": {"phase": "Bound" if completed else "Pending"}}


def pv(name: str, size: str = "1Gi", *, cls: str = "", host: str | None = None) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                 "hostPath": {"path": f"/d/{name}"}}
    if host:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": "Available"}}


async def settle() -> None:
    """Let the PreBind task run up to its next wait (no timers involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


def user(name: str, *claims: str) -> PodInfo:
    return PodInfo(pod(name, volumes=[{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]))


NODES = {n: NodeInfo(n, node(n, labels={"zone": z})) for n, z in (("a", "east"), ("b", "west"))}


def run_filters(plugin: VolumeBinding, pi: PodInfo) -> tuple[CycleState, dict[str, Any]]:
    state = CycleState()
    _, status = plugin.pre_filter(state, pi, Snapshot())
    if not status.is_success:
        return state, {"prefilter": (status.code, status.reasons)}
    out = {}
    for name, info in NODES.items():
        s = plugin.filter(state, pi, info)
        out[name] = s.reasons
    return state, out


def test_pods_without_claims_and_a_bare_framework_stand_aside() -> None:
    assert VolumeBinding(Lister()).pre_filter(CycleState(), user("p"), Snapshot())[1].is_skip
    assert VolumeBinding(None).pre_filter(CycleState(), user("p", "data"), Snapshot())[1].is_skip


def test_missing_deleting_and_unbound_immediate_claims_reject_the_pod_everywhere() -> None:
    plugin = VolumeBinding(Lister([claim("gone", deleting=True), claim("loose"), claim("now", cls="now"),
                                   claim("named", cls="wait", volume="pv-x")], classes=[WFFC, NOW]))
    unresolvable = Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert run_filters(plugin, user("p", "nope"))[1] == {
        "prefilter": (unresolvable, ('persistentvolumeclaim "nope" not found',))}
    assert run_filters(plugin, user("p", "gone"))[1] == {
        "prefilter": (unresolvable, ('persistentvolumeclaim "gone" is being deleted',))}
    for name in ("loose", "now", "named"):   # no class, an Immediate class, pre-bound but not yet bound
        assert run_filters(plugin, user("p", name))[1] == {"prefilter": (unresolvable, (ERR_UNBOUND_IMMEDIATE,))}


def test_bound_claims_follow_their_volumes_node_affinity() -> None:
    lister = Lister([claim("pinned", volume="pv-a", completed=True), claim("free", volume="pv-any", completed=True),
                     claim("lost", volume="pv-gone", completed=True)],
                    [pv("pv-a", host="a"), pv("pv-any")])
    plugin = VolumeBinding(lister)
    assert run_filters(plugin, user("p", "pinned", "free"))[1] == {"a": (), "b": (ERR_NODE_CONFLICT,)}
    assert run_filters(plugin, user("p", "lost"))[1] == {"a": (ERR_PV_NOT_EXIST,), "b": (ERR_PV_NOT_EXIST,)}


def test_delayed_claims_need_a_volume_there_or_a_class_that_provisions_there() -> None:
    lister = Lister([claim("static", cls="wait"), claim("dynamic", cls="standard")], [pv("disk-b", host="b", cls="wait")],
                    [WFFC, LOCAL_PATH])
    plugin = VolumeBinding(lister)
    state, result = run_filters(plugin, user("p", "static", "dynamic"))
    assert result == {"a": (ERR_BIND_CONFLICT,), "b": ()}
    choice = state.read("PreFilterVolumeBinding").per_node["b"]
    assert [(c["metadata"]["name"], v["metadata"]["name"]) for c, v in choice.static] == [("static", "disk-b")]
    assert [c["metadata"]["name"] for c in choice.provision] == ["dynamic"]
    east_only = copy.deepcopy(LOCAL_PATH)
    east_only["allowedTopologies"] = [{"matchLabelExpressions": [{"key": "zone", "values": ["east"]}]}]
    plugin = VolumeBinding(Lister([claim("dynamic", cls="standard")], classes=[east_only]))
    assert run_filters(plugin, user("p", "dynamic"))[1] == {"a": (), "b": (ERR_BIND_CONFLICT,)}


def test_smallest_claim_first_and_volumes_promised_to_another_pod_are_not_offered() -> None:
    lister = Lister([claim("small", "1Gi", cls="wait"), claim("large", "5Gi", cls="wait"), claim("next", "1Gi", cls="wait")],
                    [pv("ten", "10Gi", cls="wait"), pv("five", "5Gi", cls="wait")], [WFFC])
    plugin = VolumeBinding(lister)
    state, result = run_filters(plugin, user("p", "large", "small"))
    assert result == {"a": (), "b": ()}
    choice = state.read("PreFilterVolumeBinding").per_node["a"]
    assert [(c["metadata"]["name"], v["metadata"]["name"]) for c, v in choice.static] == [
        ("small", "five"), ("large", "ten")]
    assert plugin.reserve(state, user("p", "large", "small"), "a").is_success
    # Both volumes are promised to p until it binds or gives up: q finds nothing.
    assert run_filters(plugin, user("q", "next"))[1] == {"a": (ERR_BIND_CONFLICT,), "b": (ERR_BIND_CONFLICT,)}
    plugin.unreserve(state, user("p", "large", "small"), "a")
    assert run_filters(plugin, user("q", "next"))[1] == {"a": (), "b": ()}


async def test_prebind_writes_then_waits_until_every_claim_is_bound() -> None:
    lister = Lister([claim("static", cls="wait"), claim("dynamic", cls="standard")], [pv("disk", cls="wait")],
                    [WFFC, LOCAL_PATH])
    client = Client()
    plugin = VolumeBinding(lister, client=client)
    pi = user("p", "static", "dynamic")
    state, _ = run_filters(plugin, pi)
    assert plugin.reserve(state, pi, "b").is_success
    task = asyncio.create_task(plugin.pre_bind(state, pi, "b"))
    while len(client.writes) < 2:
        await asyncio.sleep(0)
    (op1, name1, body1), (op2, name2, body2) = client.writes
    assert (op1, name1) == ("update", "disk")
    assert body1["spec"]["claimRef"]["name"] == "static" and body1["spec"]["claimRef"]["uid"] == "uid-static"
    assert body1["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert (op2, name2, body2) == ("patch", "dynamic", {"metadata": {"annotations": {
        "volume.kubernetes.io/selected-node": "b"}}})
    # What the controllers do next, as the informers would show it:
    lister.pvs["disk"] = body1
    lister.claims["default/dynamic"]["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = "b"
    lister.claims["default/static"] = claim("static", cls="wait", volume="disk", completed=True)
    plugin.changed()
    await settle()
    assert not task.done()   # "dynamic" is not bound yet
    bound = claim("dynamic", cls="standard", volume="pvc-uid-dynamic", completed=True)
    lister.claims["default/dynamic"] = bound
    plugin.changed()
    assert (await task).is_success


async def test_prebind_gives_up_when_provisioning_is_abandoned_or_takes_too_long() -> None:
    lister = Lister([claim("dynamic", cls="standard")], classes=[LOCAL_PATH])
    # An earlier attempt already chose node a for the claim: no write, the wait starts at once.
    lister.claims["default/dynamic"]["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = "a"
    client = Client()
    plugin = VolumeBinding(lister, client=client)
    pi = user("p", "dynamic")
    state, _ = run_filters(plugin, pi)
    plugin.reserve(state, pi, "a")
    task = asyncio.create_task(plugin.pre_bind(state, pi, "a"))
    await settle()
    assert not task.done() and client.writes == []
    del lister.claims["default/dynamic"]["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]
    plugin.changed()
    status = await task
    assert status.code is Code.ERROR
    assert status.message == 'binding volumes: provisioning failed for persistentvolumeclaim "dynamic"'
    lister.claims["default/dynamic"]["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = "a"
    quick = VolumeBinding(lister, client=Client(), bind_timeout=0.05)
    state, _ = run_filters(quick, pi)
    quick.reserve(state, pi, "a")
    status = await quick.pre_bind(state, pi, "a")
    assert status.message == "binding volumes: timed out waiting for the condition"
