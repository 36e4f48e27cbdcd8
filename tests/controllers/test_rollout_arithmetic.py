"""Pure parts of the workload controllers: fenceposts, proportions, history, ranking, status, events."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.controllers import ranking
from skiff.controllers.deployment import history as h
from skiff.controllers.deployment import progress as p
from skiff.controllers.deployment import replicas as r
from skiff.controllers.eventcorrelation import COMBINED_PREFIX, EventCorrelator
from skiff.controllers.podcontrol import pod_from_template, slow_start
from skiff.controllers.replicaset import replica_status

Obj = dict[str, Any]
NOW = 1_750_000_000.0


def stamp(t: float) -> str:
    return p.stamp(t)


def deploy(replicas: int, surge: Any = "25%", unavailable: Any = "25%", **spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": surge, "maxUnavailable": unavailable}}, **spec}}


@pytest.mark.parametrize("replicas,surge,unavailable,want", [
    (10, "25%", "25%", (3, 2)),      # surge rounds up, unavailable rounds down
    (4, "25%", "25%", (1, 1)),
    (1, "25%", "25%", (1, 0)),
    (3, 0, "10%", (0, 1)),           # both 0: one may be unavailable
    (5, 2, 3, (2, 3)),
    (100, "1%", "99%", (1, 99)),
])
def test_fenceposts(replicas: int, surge: Any, unavailable: Any, want: tuple[int, int]) -> None:
    assert r.fenceposts(deploy(replicas, surge, unavailable)) == want


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert r.max_unavailable(deploy(2, 0, 5)) == 2
    recreate = deploy(4)
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    assert r.max_unavailable(recreate) == 0 and r.max_surge(recreate) == 0


def rs(name: str, replicas: int, created: float = NOW, available: int = 0, **annotations: str) -> Obj:
    return {"metadata": {"name": name, "uid": f"{name}-uid", "creationTimestamp": stamp(created),
                         "annotations": dict(annotations)},
            "spec": {"replicas": replicas}, "status": {"availableReplicas": available,
                                                       "replicas": replicas}}


def test_new_rs_grows_only_within_the_surge() -> None:
    d = deploy(10, 3, 2)
    old, new = rs("old", 10), rs("new", 0)
    assert r.new_rs_replicas(d, [old, new], new) == 3
    old["spec"]["replicas"] = 8
    new["spec"]["replicas"] = 3
    assert r.new_rs_replicas(d, [old, new], new) == 5
    old["spec"]["replicas"] = 12
    assert r.new_rs_replicas(d, [old, new], new) == 3  # already over the budget


def test_proportions_follow_the_max_replicas_annotation() -> None:
    d = deploy(20, 3, 2)
    old = rs("old", 8, **{h.MAX_REPLICAS_ANNOTATION: "13"})
    new = rs("new", 5, **{h.MAX_REPLICAS_ANNOTATION: "13"})
    # 23 allowed, 13 now: +10, split 6 (round(8*23/13)-8) and 4.
    assert r.proportion(old, d, 10, 0) == 6
    assert r.proportion(new, d, 10, 6) == 4
    # scaling down to 0 removes everything
    zero = deploy(0, 3, 2)
    assert r.proportion(old, zero, -13, 0) == -8


def test_surviving_available_ignores_pods_being_scaled_away() -> None:
    shrinking = rs("old", 5, available=9)
    assert r.surviving_available(shrinking) == 5
    assert r.surviving_available(rs("new", 5, available=2)) == 2


def test_template_hash_is_stable_and_sensitive() -> None:
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}
    reordered = {"spec": {"containers": [{"image": "nginx:1.27", "name": "c"}]},
                 "metadata": {"labels": {"app": "web"}}}
    first = h.template_hash(template)
    assert first == h.template_hash(reordered)
    assert first != h.template_hash(template, 1)
    changed = {**template, "spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}}
    assert first != h.template_hash(changed)
    # as Kubernetes writes a 32-bit hash: its decimal digits mapped to 4-9, b, c, d, f
    assert set(first) <= set("456789bcdf") and 1 <= len(first) <= 10
    lengths = {len(h.template_hash(template, n)) for n in range(1, 200)}
    assert max(lengths) == 10 and min(lengths) >= 7  # e.g. web-7c5ddbdf54-x2kq9


def test_find_new_ignores_the_hash_label_and_prefers_the_oldest() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    d = {"spec": {"template": template}}
    a = rs("a", 1, created=NOW)
    b = rs("b", 1, created=NOW - 10)
    for x in (a, b):
        x["spec"]["template"] = {"metadata": {"labels": {"app": "web", h.POD_TEMPLATE_HASH: "x"}},
                                 "spec": {"containers": [{"name": "c"}]}}
    assert h.find_new(d, [a, b]) is b
    assert h.find_old(b, [a, b]) == [a]


def test_revision_moves_and_history_is_kept() -> None:
    d = {"metadata": {"annotations": {"team": "a", "kubectl.kubernetes.io/last-applied-configuration": "{}"}}}
    back = rs("back", 0, **{h.REVISION_ANNOTATION: "1"})
    assert h.set_new_rs_annotations(d, back, 3, exists=True, desired=2, most=3)
    annotations = back["metadata"]["annotations"]
    assert annotations[h.REVISION_ANNOTATION] == "3"
    assert annotations[h.REVISION_HISTORY_ANNOTATION] == "1"
    assert annotations["team"] == "a"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    assert h.DESIRED_REPLICAS_ANNOTATION not in annotations  # only for new ReplicaSets
    assert h.set_new_rs_annotations(d, back, 5, exists=True, desired=2, most=3)
    assert annotations[h.REVISION_HISTORY_ANNOTATION] == "1,3"
    assert not h.set_new_rs_annotations(d, back, 5, exists=True, desired=2, most=3)


def test_cleanup_spares_replicasets_with_pods() -> None:
    d = {"spec": {"revisionHistoryLimit": 1}}
    olds = [rs(f"r{i}", 0, **{h.REVISION_ANNOTATION: str(i)}) for i in range(1, 5)]
    for x in olds:
        x["status"]["replicas"] = 0
    olds[0]["status"]["replicas"] = 1  # still has a pod going away
    assert [x["metadata"]["name"] for x in h.to_clean_up(d, olds)] == ["r2", "r3"]


def test_progress_conditions() -> None:
    d = deploy(2, 1, 0, progressDeadlineSeconds=10)
    new = rs("new", 2, available=2)
    status = p.rollout_status(d, [new], new, NOW)
    assert p.condition(status, p.PROGRESSING)["reason"] == p.NEW_RS_AVAILABLE  # type: ignore[index]
    assert p.condition(status, p.AVAILABLE)["reason"] == p.MIN_AVAILABLE  # type: ignore[index]
    # A rollout that stopped moving 11 s ago has exceeded its 10 s deadline.
    stuck = deploy(2, 1, 0, progressDeadlineSeconds=10)
    stuck["status"] = {"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
                       "conditions": [p.new_condition(p.PROGRESSING, "True", p.RS_UPDATED, "x",
                                                      NOW - 11)]}
    old, new = rs("old", 2, available=2), rs("new", 1, available=0)
    new["status"]["replicas"] = 1
    status = p.rollout_status(stuck, [old, new], new, NOW)
    cond = p.condition(status, p.PROGRESSING)
    assert cond is not None and cond["status"] == "False" and cond["reason"] == p.TIMED_OUT
    assert cond["message"] == 'ReplicaSet "new" has timed out progressing.'
    assert p.condition(status, p.AVAILABLE)["status"] == "True"  # type: ignore[index]


def pod(name: str, *, node: str = "n1", phase: str = "Running", ready_at: float | None = None,
        created: float = NOW - 100, restarts: int = 0, cost: int | None = None) -> Obj:
    conditions = [] if ready_at is None else [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready_at)}]
    annotations = {} if cost is None else {ranking.POD_DELETION_COST: str(cost)}
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": stamp(created),
                         "annotations": annotations},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_deletion_ranking() -> None:
    pods = [
        pod("ready-old", ready_at=NOW - 10_000, created=NOW - 20_000),
        pod("unscheduled", node="", phase="Pending"),
        pod("pending", phase="Pending"),
        pod("not-ready"),
        pod("expensive-not-ready", cost=100),
        pod("ready-new", ready_at=NOW - 1),
    ]
    order = [x["metadata"]["name"] for x in ranking.pods_to_delete(pods, 5, now=NOW)]
    assert order == ["unscheduled", "pending", "not-ready", "expensive-not-ready", "ready-new"]


def test_ranking_prefers_doubled_up_nodes_then_restarts() -> None:
    pods = [pod("alone", node="a", ready_at=NOW - 50), pod("crowded", node="b", ready_at=NOW - 50),
            pod("crowd2", node="b", ready_at=NOW - 50, restarts=3)]
    order = [x["metadata"]["name"] for x in ranking.pods_to_delete(pods, 2, now=NOW)]
    assert order == ["crowd2", "crowded"]


def test_replica_status_and_failure_condition() -> None:
    owner = {"metadata": {"generation": 4}, "spec": {"replicas": 3, "minReadySeconds": 5,
             "template": {"metadata": {"labels": {"app": "web", "tier": "x"}}}}}
    pods = [pod("a", ready_at=NOW - 10), pod("b", ready_at=NOW - 1), pod("c")]
    pods[2]["metadata"]["labels"] = {"app": "web", "tier": "x"}
    error = StatusError(403, "Forbidden", 'pods "web-x" is forbidden: exceeded quota')
    status = replica_status(owner, pods[:2], error, NOW)
    assert status["replicas"] == 2 and status["readyReplicas"] == 2
    assert status["availableReplicas"] == 1 and status["fullyLabeledReplicas"] == 0
    assert status["observedGeneration"] == 4
    (cond,) = status["conditions"]
    assert cond["type"] == "ReplicaFailure" and cond["reason"] == "FailedCreate"
    assert cond["message"] == 'pods "web-x" is forbidden: exceeded quota'
    owner["status"] = status
    healed = replica_status(owner, pods, None, NOW)
    assert "conditions" not in healed and healed["fullyLabeledReplicas"] == 1


def test_pod_from_template() -> None:
    template = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u",
           "controller": True, "blockOwnerDeletion": True}
    made = pod_from_template(template, namespace="ns", owner_name="web", owner_ref=ref)
    assert made["metadata"] == {"generateName": "web-", "namespace": "ns", "labels": {"app": "web"},
                                "annotations": {"a": "1"}, "ownerReferences": [ref]}
    made["spec"]["containers"][0]["image"] = "changed"
    assert template["spec"]["containers"][0]["image"] == "nginx"


async def test_slow_start_doubles_and_stops_at_the_first_failing_batch() -> None:
    calls = 0

    async def ok() -> None:
        nonlocal calls
        calls += 1

    assert await slow_start(10, ok) == (10, [])
    assert calls == 10
    calls = 0

    async def fails_after_3() -> None:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise RuntimeError("quota")

    done, errors = await slow_start(20, fails_after_3)
    # batches of 1 and 2 succeed; the batch of 4 fails entirely; no batch of 8 is tried.
    assert (done, len(errors), calls) == (3, 4, 7)


def test_event_correlator_spam_filter_and_aggregation() -> None:
    c = EventCorrelator()
    key = ("replicaset-controller", "ReplicaSet", "default", "web", "uid", "apps/v1", "Normal")
    assert sum(c.allow(key, NOW) for _ in range(30)) == 25
    assert not c.allow(key, NOW + 299)
    assert c.allow(key, NOW + 301)  # one token back after 5 minutes
    sent = [c.aggregate(key + ("SuccessfulCreate",), f"Created pod: web-{i}", NOW) for i in range(12)]
    assert sent[:10] == [f"Created pod: web-{i}" for i in range(10)]
    assert sent[10] == COMBINED_PREFIX + "Created pod: web-10"
    assert c.aggregate(key + ("SuccessfulCreate",), "Created pod: web-99", NOW + 601) == \
        "Created pod: web-99"
