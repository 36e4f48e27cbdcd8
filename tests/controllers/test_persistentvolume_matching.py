"""Which volume serves which claim: the pure matching rules (no cluster)."""

from __future__ import annotations

from typing import Any

from skiff.api.kinds.storage import default_class
from skiff.controllers.persistentvolume import matching as mt

Obj = dict[str, Any]


def pv(name: str, size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str = "",
       labels: dict[str, str] | None = None, phase: str = "Available", claim_ref: Obj | None = None,
       hostname: str | None = None, mode: str | None = None) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes), "hostPath": {"path": "/x"}}
    if cls:
        spec["storageClassName"] = cls
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    if hostname is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [hostname]}]}]}}
    if mode:
        spec["volumeMode"] = mode
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": {"phase": phase}}


def pvc(name: str = "data", size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = None,
        selector: Obj | None = None, uid: str = "u-1", mode: str | None = None) -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    if mode:
        spec["volumeMode"] = mode
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}, "spec": spec}


def node(name: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}}}


def names(volume: Obj | None) -> str | None:
    return volume["metadata"]["name"] if volume else None


def test_smallest_volume_that_fits_wins() -> None:
    volumes = [pv("big", "10Gi"), pv("small", "500Mi"), pv("right", "2Gi"), pv("ok", "1Gi")]
    assert names(mt.find_best_match(pvc(size="1Gi"), volumes)) == "ok"
    assert names(mt.find_best_match(pvc(size="1500Mi"), volumes)) == "right"
    assert mt.find_best_match(pvc(size="20Gi"), volumes) is None


def test_class_must_be_equal_and_empty_means_no_class() -> None:
    volumes = [pv("fast", "1Gi", cls="fast"), pv("plain", "5Gi")]
    assert names(mt.find_best_match(pvc(cls="fast"), volumes)) == "fast"
    assert names(mt.find_best_match(pvc(cls=""), volumes)) == "plain"
    assert names(mt.find_best_match(pvc(), volumes)) == "plain"       # unset = ""
    assert mt.find_best_match(pvc(cls="slow"), volumes) is None


def test_access_modes_must_be_a_subset_of_the_volumes() -> None:
    volumes = [pv("rwo", "1Gi"), pv("both", "5Gi", modes=("ReadWriteOnce", "ReadOnlyMany"))]
    assert names(mt.find_best_match(pvc(modes=("ReadOnlyMany",)), volumes)) == "both"
    assert names(mt.find_best_match(pvc(modes=("ReadWriteOnce", "ReadOnlyMany")), volumes)) == "both"
    assert mt.find_best_match(pvc(modes=("ReadWriteMany",)), volumes) is None


def test_selector_match_labels_and_expressions() -> None:
    volumes = [pv("a", "1Gi", labels={"tier": "gold", "zone": "x"}), pv("b", "1Gi", labels={"tier": "silver"})]
    assert names(mt.find_best_match(pvc(selector={"matchLabels": {"tier": "silver"}}), volumes)) == "b"
    chosen = mt.find_best_match(pvc(selector={"matchExpressions": [
        {"key": "zone", "operator": "Exists"}, {"key": "tier", "operator": "NotIn", "values": ["silver"]}]}), volumes)
    assert names(chosen) == "a"
    assert mt.find_best_match(pvc(selector={"matchLabels": {"tier": "bronze"}}), volumes) is None


def test_volume_mode_phase_and_other_claims_volumes_are_skipped() -> None:
    other = {"namespace": "default", "name": "other", "uid": "u-2"}
    volumes = [pv("block", "1Gi", mode="Block"), pv("released", "1Gi", phase="Released"),
               pv("taken", "1Gi", claim_ref=other), pv("free", "3Gi")]
    assert names(mt.find_best_match(pvc(), volumes)) == "free"
    assert names(mt.find_best_match(pvc(mode="Block"), volumes)) == "block"


def test_a_volume_pre_bound_to_the_claim_wins_even_when_delayed() -> None:
    mine = {"namespace": "default", "name": "data"}                  # no uid yet: pre-bound by an admin
    volumes = [pv("small", "1Gi"), pv("reserved", "8Gi", claim_ref=mine)]
    assert names(mt.find_best_match(pvc(), volumes)) == "reserved"
    assert names(mt.find_best_match(pvc(), volumes, delay_binding=True)) == "reserved"
    assert mt.find_best_match(pvc(), [pv("small", "1Gi")], delay_binding=True) is None
    wrong_uid = {"namespace": "default", "name": "data", "uid": "old"}
    assert not mt.is_bound_to(pv("v", "1Gi", claim_ref=wrong_uid), pvc())


def test_node_affinity_with_a_node_and_exclusions() -> None:
    volumes = [pv("on-a", "1Gi", hostname="a"), pv("on-b", "2Gi", hostname="b"), pv("anywhere", "4Gi")]
    assert names(mt.find_best_match(pvc(), volumes, delay_binding=True, node=node("b"))) == "on-b"
    assert names(mt.find_best_match(pvc(), volumes, node=node("c"))) == "anywhere"
    assert names(mt.find_best_match(pvc(), volumes, node=node("a"), excluded={"on-a"})) == "anywhere"
    pinned = pv("pinned", "1Gi", hostname="a", claim_ref={"namespace": "default", "name": "data"})
    assert mt.find_best_match(pvc(), [pinned, pv("x", "1Gi")], node=node("b")) is None


def test_node_selector_operators() -> None:
    labels = {"disk": "ssd", "gen": "5"}
    term = {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["3"]},
                                 {"key": "disk", "operator": "In", "values": ["ssd", "nvme"]},
                                 {"key": "gpu", "operator": "DoesNotExist"}]}
    assert mt.node_selector_term_matches(term, labels, "n1")
    assert not mt.node_selector_term_matches(term, {**labels, "gpu": "1"}, "n1")
    fields = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    assert mt.node_selector_term_matches(fields, {}, "n1")
    assert not mt.node_selector_term_matches(fields, {}, "n2")
    assert not mt.node_selector_term_matches({}, labels, "n1")     # an empty term matches nothing


def test_mismatch_reasons_for_a_volume_asked_for_by_name() -> None:
    assert mt.mismatch(pv("v", "1Gi"), pvc(size="2Gi")) == "requested PV is too small"
    assert mt.mismatch(pv("v", "1Gi", cls="x"), pvc()) == "storageClassName does not match"
    assert mt.mismatch(pv("v", "1Gi", mode="Block"), pvc()) == "incompatible volumeMode"
    assert mt.mismatch(pv("v", "1Gi"), pvc(modes=("ReadWriteMany",))) == "incompatible accessMode"
    assert mt.mismatch(pv("v", "1Gi"), pvc()) == ""


def test_claims_of_a_pod_and_the_default_class() -> None:
    pod = {"metadata": {"name": "web-0", "namespace": "ns"}, "spec": {"volumes": [
        {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}},
        {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}, {"name": "tmp", "emptyDir": {}}]}}
    assert mt.pod_claim_keys(pod) == ["ns/www-web-0", "ns/web-0-scratch"]
    ann = {"storageclass.kubernetes.io/is-default-class": "true"}
    classes = [{"metadata": {"name": "old", "annotations": ann, "creationTimestamp": "2024-01-01T00:00:00Z"}},
               {"metadata": {"name": "b-new", "annotations": ann, "creationTimestamp": "2025-01-01T00:00:00Z"}},
               {"metadata": {"name": "a-new", "annotations": ann, "creationTimestamp": "2025-01-01T00:00:00Z"}},
               {"metadata": {"name": "newest-not-default", "creationTimestamp": "2026-01-01T00:00:00Z"}}]
    assert default_class(classes)["metadata"]["name"] == "a-new"
    assert default_class(classes[3:]) is None
