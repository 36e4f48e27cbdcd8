"""The shortcuts of managedFields bookkeeping give exactly what the plain walks give.

Every write records field ownership, so :class:`~skiff.api.patch.typed.Typed` takes
shortcuts: scalars and shared values are decided inline, without a call, and
:func:`to_fields_v1` sorts elements by their own order when it may.  The slow path
here is the plain recursion those replace (:class:`PlainTyped`, the walk as it was
written first, and :func:`plain_to_fields_v1`); both must agree on a table of
writes, down to the bytes of the result.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from skiff.api.patch import FieldManager
from skiff.api.patch.fieldpath import Path, element_sort_key, from_fields_v1, path_string, to_fields_v1
from skiff.api.patch.shape import Shapes
from skiff.api.patch.typed import (
    _SET_ITEM_SLOT, ABSENT, UNKNOWN_SLOT, Comparison, Slot, Typed, _empty, _implied, _same,
)
from skiff.api.schema import builtin_schema

POD = "io.k8s.api.core.v1.Pod"
LEASE = "io.k8s.api.coordination.v1.Lease"
DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:00:10Z", "2024-05-01T10:00:20Z"


class PlainTyped(Typed):
    """The comparison without shortcuts: every member and item walked, no memory."""

    def _compare(self, old: Any, new: Any, slot: Slot, path: Path, result: Comparison,
                 old_implied: bool) -> None:
        if old is ABSENT:
            if new is not ABSENT:
                self._added(new, slot, path, result, old_implied)
            return
        if new is not ABSENT and _same(old, new):
            return
        old_kind, new_kind = self.kind(slot, old), self.kind(slot, new)
        kind = old_kind if new is ABSENT else (old_kind if old_kind == new_kind else "leaf")
        if kind != "leaf" and _empty(old) and _empty(new):
            kind = "leaf"
        if kind == "leaf":
            if new is ABSENT:
                result.removed.add(path)
            elif not _same(old, new):
                result.modified.add(path)
            return
        if kind in ("struct", "map", "unknown"):
            old_map = old if isinstance(old, dict) else {}
            new_map = new if isinstance(new, dict) else {}
            for key in list(old_map) + [k for k in new_map if k not in old_map]:
                child = self.child(slot, key) or UNKNOWN_SLOT
                self._compare(old_map.get(key, ABSENT), new_map.get(key, ABSENT), child,
                              path + (("f", key),), result, _implied(child))
        else:
            old_items = dict(self._items(slot, old if isinstance(old, list) else [], path, kind, None))
            new_items = dict(self._items(slot, new if isinstance(new, list) else [], path, kind, None))
            item_slot = self._item_slot(slot) if kind == "keyed" else _SET_ITEM_SLOT
            for element in list(old_items) + [e for e in new_items if e not in old_items]:
                self._compare(old_items.get(element, ABSENT), new_items.get(element, ABSENT), item_slot,
                              path + (element,), result, False)
        if path and new is ABSENT:
            result.removed.add(path)

    def _added(self, new: Any, slot: Slot, path: Path, result: Comparison, old_implied: bool) -> None:
        kind = self.kind(slot, new)
        if kind == "leaf" or _empty(new):
            result.added.add(path)
            return
        if kind in ("struct", "map", "unknown"):
            for key, value in new.items():
                child = self.child(slot, key) or UNKNOWN_SLOT
                self._added(value, child, path + (("f", key),), result, old_implied and _implied(child))
        else:
            item_slot = self._item_slot(slot) if kind == "keyed" else _SET_ITEM_SLOT
            for element, item in self._items(slot, new, path, kind, None):
                self._added(item, item_slot, path + (element,), result, False)
        if path and not old_implied:
            result.added.add(path)


def plain_to_fields_v1(paths: frozenset[Path] | set[Path]) -> dict[str, Any]:
    """FieldsV1 as first written: a tree of elements, each level sorted by ``element_sort_key``."""
    member = object()
    tree: dict[Any, Any] = {}
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        if path:
            node[member] = True

    def render(node: dict[Any, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node.pop(member, False) and node:
            out["."] = {}
        for element in sorted(node, key=element_sort_key):
            out[f"{element[0]}:{element[1]}"] = render(node[element])
        return out

    return render(tree)


@pytest.fixture(scope="module")
def managers() -> tuple[FieldManager, FieldManager]:
    """(fast, slow): the server's FieldManager, and one walking plainly."""
    schema = builtin_schema()
    slow = FieldManager(schema, codec_size=0)
    slow.typed = PlainTyped(Shapes(schema))
    return FieldManager(schema), slow


# -- objects ---------------------------------------------------------------------------


def pod(name: str = "web-1", **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"},
                     "uid": f"uid-{name}", "resourceVersion": "5"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                 "ports": [{"containerPort": 80}],
                                 "resources": {"requests": {"cpu": "10m"}}}],
                 "tolerations": [{"key": "k", "operator": "Exists"}],
                 "enableServiceLinks": True, "priority": 0},
    }
    if status:
        obj["status"] = status
    return obj


def running(ip: str, ready: str = "True") -> dict[str, Any]:
    return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": T1},
                           {"type": "PodScheduled", "status": "True", "lastTransitionTime": T0}],
            "containerStatuses": [{"name": "app", "ready": ready == "True", "restartCount": 0,
                                   "state": {"running": {"startedAt": T1}}}]}


def lease(renew: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "node-1", "namespace": "kube-node-lease", "resourceVersion": "9"},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": renew}}


def deployment(replicas: int, image: str = "nginx:1.27") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def edited(obj: dict[str, Any], change: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    change(out)
    return out


# -- a table of writes: each step is (operation, new object or change, manager, subresource) --


def steps_create_then_renew() -> list[tuple[str, Any, str, str, str]]:
    return [("update", lease("2024-05-01T10:00:00.000001Z"), "kubelet", "", LEASE),
            ("update", lease("2024-05-01T10:00:10.000002Z"), "kubelet", "", LEASE),  # only owned fields
            ("update", lease("2024-05-01T10:00:10.000002Z"), "kubelet", "", LEASE),  # a no-op
            ("update", edited(lease("x"), lambda o: o["spec"].update(holderIdentity="node-2")),
             "kube-controller-manager", "", LEASE)]                                 # another manager


def steps_pod_life() -> list[tuple[str, Any, str, str, str]]:
    bound = edited(pod(), lambda o: o["spec"].update(nodeName="node-1"))
    return [
        ("update", pod(), "kubectl", "", POD),
        ("update", bound, "kube-scheduler", "", POD),                              # new field, new manager
        ("update", edited(bound, lambda o: o.update(status=running("10.244.0.7"))), "kubelet", "status", POD),
        ("update", edited(bound, lambda o: o.update(status=running("10.244.0.7", ready="False"))),
         "kubelet", "status", POD),                                               # owned fields only
        ("update", edited(bound, lambda o: o.update(status=running("10.244.0.8"))),
         "kubelet", "status", POD),                                               # a keyed item replaced
        ("update", edited(bound, lambda o: (o.update(status=running("10.244.0.8")),
                                            o["metadata"]["labels"].update(tier="x"))),
         "kubectl-label", "", POD),                                               # a label added
        ("update", edited(bound, lambda o: (o.update(status=running("10.244.0.8")),
                                            o["spec"].update(enableServiceLinks=1))),
         "kubectl-edit", "", POD),                                                # true -> 1 is a change
        ("update", edited(bound, lambda o: (o.update(status=running("10.244.0.8")),
                                            o["spec"].pop("tolerations"))),
         "kubectl-edit", "", POD),                                                # a removal
    ]


def steps_apply_then_update() -> list[tuple[str, Any, str, str, str]]:
    return [
        ("apply", deployment(2), "kubectl", "", DEPLOYMENT),
        ("update", deployment(5), "kubectl-scale", "", DEPLOYMENT),               # takes .spec.replicas
        ("update", deployment(5, image="nginx:1.28"), "kubectl-edit", "", DEPLOYMENT),
        ("apply", deployment(5, image="nginx:1.28"), "kubectl", "", DEPLOYMENT),  # shares again
        ("update", deployment(5, image="nginx:1.28"), "kubectl-edit", "", DEPLOYMENT),
    ]


def run(fm: FieldManager, steps: list[tuple[str, Any, str, str, str]]) -> list[bytes]:
    """Each step's resulting object, as bytes (so key order counts too)."""
    live: dict[str, Any] | None = None
    out = []
    for i, (operation, obj, manager, subresource, type_name) in enumerate(steps):
        now = (T0, T1, T2)[i % 3]
        new = copy.deepcopy(obj)
        if operation == "apply":
            live = fm.apply(live, new, manager=manager, force=True, type_name=type_name, now=now)
        else:
            if live is not None:  # the server carries managedFields over from the stored object
                new["metadata"]["managedFields"] = copy.deepcopy(live["metadata"].get("managedFields"))
            live = fm.update(live, new, manager, type_name=type_name, now=now, subresource=subresource)
        out.append(orjson.dumps(live))
    return out


@pytest.mark.parametrize("steps", [steps_create_then_renew, steps_pod_life, steps_apply_then_update])
def test_fast_and_slow_bookkeeping_agree(managers: tuple[FieldManager, FieldManager], steps: Any) -> None:
    fast, slow = managers
    assert run(fast, steps()) == run(slow, steps())
    assert run(fast, steps()) == run(slow, steps())  # again: now from the fast path's memories


def test_creates_agree(managers: tuple[FieldManager, FieldManager]) -> None:
    fast, slow = managers
    for name in ("a", "b", "c"):
        obj = edited(pod(name), lambda o: o["spec"].update(nodeName="n"))
        assert (orjson.dumps(fast.update(None, copy.deepcopy(obj), "kubectl", type_name=POD, now=T0))
                == orjson.dumps(slow.update(None, copy.deepcopy(obj), "kubectl", type_name=POD, now=T0)))
    # equal to Python (80 == 80.0) but not the same JSON: another field
    changed = edited(pod("d"), lambda o: o["spec"]["containers"][0].update(ports=[{"containerPort": 80.0}]))
    assert (fast.update(None, copy.deepcopy(changed), "kubectl", type_name=POD, now=T0)
            == slow.update(None, copy.deepcopy(changed), "kubectl", type_name=POD, now=T0))


def test_renewal_by_the_owner_keeps_its_fields_and_moves_its_time(managers: tuple[FieldManager, FieldManager]) -> None:
    """As kube-apiserver: an Update that changed a field stamps its manager's entry with
    the current time, even when it owned that field already; one that changed nothing
    leaves every entry, time included, as it was."""
    fast, _ = managers
    first = fast.update(None, lease("r1"), "kubelet", type_name=LEASE, now=T0)
    renewed = fast.update(first, edited(first, lambda o: o["spec"].update(renewTime="r2")), "kubelet",
                          type_name=LEASE, now=T1)
    [before], [after] = first["metadata"]["managedFields"], renewed["metadata"]["managedFields"]
    assert after["fieldsV1"] == before["fieldsV1"]
    assert {path_string(p) for p in from_fields_v1(after["fieldsV1"])} == {
        ".spec.holderIdentity", ".spec.leaseDurationSeconds", ".spec.renewTime"}
    assert (before["time"], after["time"]) == (T0, T1)
    unchanged = fast.update(renewed, copy.deepcopy(renewed), "kubelet", type_name=LEASE, now=T2)
    assert unchanged["metadata"]["managedFields"] == renewed["metadata"]["managedFields"]


def test_to_fields_v1_agrees_with_the_plain_encoding() -> None:
    rnd = random.Random(7)
    texts = ["a", "b", "name", "0", "10", '{"name":"x"}', '{"port":80,"protocol":"TCP"}', '"v"']
    for _ in range(3000):
        paths = frozenset(tuple((rnd.choice("fffkvi"), rnd.choice(texts)) for _ in range(rnd.randint(1, 4)))
                          for _ in range(rnd.randint(0, 10)))
        assert orjson.dumps(to_fields_v1(paths)) == orjson.dumps(plain_to_fields_v1(paths)), paths
