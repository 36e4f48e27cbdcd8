"""DaemonSet placement and rolling-update arithmetic (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.controllers.daemonset import placement, rolling
from skiff.controllers.history import CONTROLLER_REVISION_HASH

Obj = dict[str, Any]
NOW = 1_800_000_000.0
LONG_AGO = "2020-01-01T00:00:00Z"


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def ds(**spec: Any) -> Obj:
    return {"metadata": {"name": "log", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "log"}},
                     "template": {"metadata": {"labels": {"app": "log"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}}}


@pytest.mark.parametrize("taint, expected", [
    ({"key": "dedicated", "value": "db", "effect": "NoSchedule"}, (False, True)),
    ({"key": "dedicated", "value": "db", "effect": "NoExecute"}, (False, False)),
    ({"key": "dedicated", "value": "db", "effect": "PreferNoSchedule"}, (True, True)),
    ({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}, (True, True)),  # cordoned
    ({"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}, (True, True)),
    ({"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}, (False, True)),
])
def test_taints_decide_whether_to_run_and_keep_running(taint: Obj, expected: tuple[bool, bool]) -> None:
    assert placement.should_run(node("n", taints=[taint]), ds()) == expected


def test_host_network_pods_tolerate_an_unavailable_network() -> None:
    taint = {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}
    assert placement.should_run(node("n", taints=[taint]), ds(hostNetwork=True)) == (True, True)


def test_node_selector_and_required_affinity() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}]}}}
    owner = ds(nodeSelector={"disk": "ssd"}, affinity=affinity)
    assert placement.should_run(node("a", {"disk": "ssd", "cores": "16"}), owner) == (True, True)
    assert placement.should_run(node("b", {"disk": "ssd", "cores": "4"}), owner) == (False, False)
    assert placement.should_run(node("special", {"disk": "ssd"}), owner) == (True, True)
    assert placement.should_run(node("c", {"cores": "16"}), owner) == (False, False)


def test_the_pod_for_a_node_is_held_to_it() -> None:
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}}
    placement.with_node_affinity(spec, "n1")
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}
    assert placement.target_node({"spec": spec}) == "n1"
    tolerations = placement.daemon_pod_spec(ds(tolerations=[
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 5}]))["tolerations"]
    assert len(tolerations) == 6  # the user's equal toleration was replaced, not duplicated
    assert all("tolerationSeconds" not in t for t in tolerations)


def pod(name: str, node_name: str, hash_: str, ready: bool = True) -> Obj:
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": LONG_AGO}]
    return {"metadata": {"name": name, "labels": {CONTROLLER_REVISION_HASH: hash_}},
            "spec": {"nodeName": node_name}, "status": {"phase": "Running", "conditions": conditions}}


def updating(**rolling_update: Any) -> Obj:
    owner = ds()
    owner["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling_update}
    return owner


def test_max_unavailable_replaces_broken_old_pods_first_then_up_to_the_limit() -> None:
    node_pods = {"a": [pod("a-old", "a", "old")], "b": [pod("b-old", "b", "old", ready=False)],
                 "c": [pod("c-old", "c", "old")], "d": [pod("d-new", "d", "new")]}
    wanted = {n: True for n in node_pods}
    deletes, creates = rolling.plan(updating(maxUnavailable=2), node_pods, wanted, "new", None, NOW)
    assert [p["metadata"]["name"] for p in deletes] == ["b-old", "a-old"] and creates == []
    deletes, _ = rolling.plan(updating(maxUnavailable="25%"), node_pods, wanted, "new", None, NOW)
    assert [p["metadata"]["name"] for p in deletes] == ["b-old"]  # 25% of 4 = 1, already used


def test_max_surge_starts_new_pods_then_removes_old_ones_once_available() -> None:
    node_pods = {"a": [pod("a-old", "a", "old"), pod("a-new", "a", "new")],
                 "b": [pod("b-old", "b", "old"), pod("b-new", "b", "new", ready=False)],
                 "c": [pod("c-old", "c", "old")], "d": [pod("d-old", "d", "old", ready=False)]}
    wanted = {n: True for n in node_pods}
    deletes, creates = rolling.plan(updating(maxSurge=2, maxUnavailable=0), node_pods, wanted, "new", None, NOW)
    assert [p["metadata"]["name"] for p in deletes] == ["a-old"]
    assert creates == ["d", "c"]  # d's old pod is broken: no surge budget needed; c takes the last slot
    _, creates = rolling.plan(updating(maxSurge=1, maxUnavailable=0), node_pods, wanted, "new", None, NOW)
    assert creates == ["d"]  # b is still surging
