"""The garbage collector's dependency graph, event by event (no server)."""

from __future__ import annotations

from typing import Any

from skiff.controllers.gc.graph import DependencyGraph

Obj = dict[str, Any]

NAMESPACED = {("apps/v1", "ReplicaSet"): True, ("apps/v1", "Deployment"): True,
              ("v1", "Pod"): True, ("v1", "Node"): False}


def graph() -> DependencyGraph:
    return DependencyGraph(lambda api_version, kind: NAMESPACED.get((api_version, kind)))


def obj(kind: str, name: str, uid: str, *owners: Obj, api_version: str = "",
        namespace: str | None = "ns", finalizers: tuple[str, ...] = (),
        deleting: bool = False) -> Obj:
    api_version = api_version or ("apps/v1" if kind in ("ReplicaSet", "Deployment") else "v1")
    meta: Obj = {"name": name, "uid": uid}
    if namespace:
        meta["namespace"] = namespace
    if owners:
        meta["ownerReferences"] = list(owners)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def ref(owner: Obj, block: bool = True) -> Obj:
    m = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"],
            "uid": m["uid"], "controller": True, "blockOwnerDeletion": block}


def test_a_reference_to_an_unseen_owner_makes_a_virtual_node_to_verify() -> None:
    g = graph()
    rs = obj("ReplicaSet", "web", "r1")
    work = g.observe(obj("Pod", "web-a", "p1", ref(rs)))
    assert work.attempt_delete == {"r1"}
    owner = g.get("r1")
    assert owner is not None and not owner.observed and owner.dependents == {"p1"}
    assert (owner.identity.namespace, owner.identity.kind) == ("ns", "ReplicaSet")
    # seeing the owner itself makes it a real node and asks for nothing more
    assert not g.observe(rs)
    assert g.get("r1").observed  # type: ignore[union-attr]


def test_a_cluster_scoped_owner_gets_no_namespace() -> None:
    g = graph()
    node = obj("Node", "n1", "n1", namespace=None)
    g.observe(obj("Pod", "mirror", "p1", ref(node)))
    owner = g.get("n1")
    assert owner is not None and owner.identity.namespace == ""


def test_deleting_an_owner_schedules_its_dependents() -> None:
    g = graph()
    rs = obj("ReplicaSet", "web", "r1")
    g.observe(rs)
    g.observe(obj("Pod", "web-a", "p1", ref(rs)))
    g.observe(obj("Pod", "web-b", "p2", ref(rs)))
    work = g.forget(rs)
    assert work.attempt_delete == {"p1", "p2"}
    assert g.get("r1") is None


def test_foreground_deletion_schedules_owner_and_dependents_once() -> None:
    g = graph()
    rs = obj("ReplicaSet", "web", "r1")
    g.observe(rs)
    g.observe(obj("Pod", "web-a", "p1", ref(rs)))
    g.observe(obj("Pod", "web-b", "p2", ref(rs, block=False)))
    deleting = obj("ReplicaSet", "web", "r1", finalizers=("foregroundDeletion",), deleting=True)
    work = g.observe(deleting)
    assert work.attempt_delete == {"r1", "p1", "p2"}
    node = g.get("r1")
    assert node is not None and node.deleting_dependents
    assert [d.identity.name for d in g.blocking_dependents(node)] == ["web-a"]
    assert not g.observe(deleting)  # the same state again: nothing new


def test_a_vanished_blocking_dependent_wakes_its_waiting_owner() -> None:
    g = graph()
    rs = obj("ReplicaSet", "web", "r1", finalizers=("foregroundDeletion",), deleting=True)
    g.observe(rs)
    pod = obj("Pod", "web-a", "p1", ref(rs))
    assert g.observe(pod).attempt_delete == {"p1"}  # joins an owner that is deleting dependents
    assert g.forget(pod).attempt_delete == {"r1"}


def test_unblocking_or_dropping_a_reference_wakes_a_waiting_owner() -> None:
    g = graph()
    rs = obj("ReplicaSet", "web", "r1", finalizers=("foregroundDeletion",), deleting=True)
    g.observe(rs)
    g.observe(obj("Pod", "web-a", "p1", ref(rs)))
    assert g.observe(obj("Pod", "web-a", "p1", ref(rs, block=False))).attempt_delete == {"r1"}
    g.observe(obj("Pod", "web-b", "p2", ref(rs)))
    work = g.observe(obj("Pod", "web-b", "p2"))  # reference removed
    assert work.attempt_delete == {"r1"}
    assert g.get("r1").dependents == {"p1"}  # type: ignore[union-attr]


def test_orphan_deletion_asks_for_orphaning() -> None:
    g = graph()
    rs = obj("ReplicaSet", "web", "r1")
    g.observe(rs)
    work = g.observe(obj("ReplicaSet", "web", "r1", finalizers=("orphan",), deleting=True))
    assert work.attempt_orphan == {"r1"} and not work.attempt_delete


def test_a_virtual_owner_without_dependents_is_dropped() -> None:
    g = graph()
    rs = obj("ReplicaSet", "web", "r1")
    g.observe(obj("Pod", "web-a", "p1", ref(rs)))
    g.observe(obj("Pod", "web-a", "p1"))  # the reference is removed
    assert g.get("r1") is None
    assert len(g) == 1
