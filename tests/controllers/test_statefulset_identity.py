"""StatefulSet member identity and claim retention references (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.controllers.statefulset import identity as ident

Obj = dict[str, Any]


def sts(replicas: int, when_deleted: str = "Retain", when_scaled: str = "Retain") -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted,
                                                              "whenScaled": when_scaled},
                     "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "db"}},
                                               "spec": {"accessModes": ["ReadWriteOnce"]}}]}}


def pod(ordinal: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{ordinal}", "namespace": "ns", "uid": f"pod-{ordinal}"}}


def refs(claim_refs: list[Obj] | None) -> list[tuple[str, bool]]:
    return sorted((r["uid"], bool(r.get("controller"))) for r in claim_refs or [])


@pytest.mark.parametrize("when_deleted, when_scaled, ordinal, expected", [
    ("Retain", "Retain", 0, []),
    ("Retain", "Retain", 5, []),
    ("Delete", "Retain", 0, [("set-uid", True)]),
    ("Delete", "Retain", 5, [("set-uid", True)]),
    ("Retain", "Delete", 0, []),
    ("Retain", "Delete", 5, [("pod-5", True)]),
    ("Delete", "Delete", 0, [("set-uid", True)]),
    ("Delete", "Delete", 5, [("pod-5", True)]),
])
def test_claim_references_follow_the_retention_policy(when_deleted: str, when_scaled: str,
                                                      ordinal: int, expected: list[tuple[str, bool]]) -> None:
    owner = sts(2, when_deleted, when_scaled)  # ordinal 5 is scaled down
    claim = {"metadata": {"name": f"www-web-{ordinal}"}}
    wanted = ident.desired_claim_refs(claim, owner, pod(ordinal))
    assert refs(wanted) == expected if expected else wanted is None
    if wanted is not None:  # once applied, nothing more to do
        assert ident.desired_claim_refs({"metadata": {"ownerReferences": wanted}}, owner, pod(ordinal)) is None


def test_references_are_removed_when_the_policy_returns_to_retain() -> None:
    claim = {"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid", "controller": True},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "cm"}]}}
    assert refs(ident.desired_claim_refs(claim, sts(2), pod(0))) == [("cm", False)]


def test_claims_of_an_earlier_owner_of_the_same_name_are_left_alone() -> None:
    stale = {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-5", "uid": "an-earlier-web-5", "controller": True}]}}
    assert ident.desired_claim_refs(stale, sts(2, "Retain", "Delete"), pod(5)) is None
    assert ident.claim_is_stale(stale, {"metadata": {"name": "web-5"}})  # a member yet to be created
    assert not ident.claim_is_stale(stale, {"metadata": {"name": "web-5", "uid": "an-earlier-web-5"}})


def test_another_controller_keeps_its_claim() -> None:
    claim = {"metadata": {"ownerReferences": [
        {"apiVersion": "example.com/v1", "kind": "Backup", "name": "b", "uid": "b", "controller": True}]}}
    assert ident.desired_claim_refs(claim, sts(2, "Delete", "Delete"), pod(0)) is None


def test_member_names_claims_and_pods() -> None:
    owner = sts(3)
    owner["spec"]["serviceName"] = "web-headless"
    owner["spec"]["template"] = {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}],
                                          "volumes": [{"name": "www", "emptyDir": {}},
                                                      {"name": "cache", "emptyDir": {}}]}}
    assert ident.parent_and_ordinal({"metadata": {"name": "my-web-12"}}) == ("my-web", 12)
    assert ident.parent_and_ordinal({"metadata": {"name": "web-x"}}) == ("", -1)
    assert ident.parent_and_ordinal({"metadata": {"name": "web-99999999999"}})[1] == -1
    claim = ident.claims_for(owner, 2)["www"]
    assert claim["metadata"] == {"name": "www-web-2", "namespace": "ns", "labels": {"tier": "db", "app": "web"}}
    member = ident.new_pod(owner, owner["spec"]["template"], 2, "web-abc")
    assert member["metadata"]["name"] == "web-2" and member["metadata"]["generateName"] == "web-"
    assert member["spec"]["hostname"] == "web-2" and member["spec"]["subdomain"] == "web-headless"
    # the claim replaces the template's volume of the same name; other volumes stay
    assert member["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}},
                                         {"name": "cache", "emptyDir": {}}]
    assert ident.identity_matches(owner, {**member, "metadata": {**member["metadata"]}})
    assert ident.storage_matches(owner, member)
    assert not ident.storage_matches(owner, {**member, "spec": {"volumes": []}})
