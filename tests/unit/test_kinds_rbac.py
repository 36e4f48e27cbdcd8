"""rbac.authorization.k8s.io/v1: roles, bindings, their defaults, validation and tables."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.rbac import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
CREATED = "2024-01-01T00:55:00Z"


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def role(rules: list[dict[str, Any]], namespace: str | None = "default") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "reader", "creationTimestamp": CREATED}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "rules": rules}


def binding(kind: str = "Role", subjects: list[dict[str, Any]] | None = None, namespace: str | None = "default"
            ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "read", "creationTimestamp": CREATED}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "roleRef": {"kind": kind, "name": "reader"},
            "subjects": subjects if subjects is not None else [{"kind": "User", "name": "alice"}]}


def test_roles_use_the_default_table() -> None:
    obj = role([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    assert [c.name for c in ROLES.columns] == ["Name", "Created At"]
    assert ROLES.row(obj) == ["reader", "2024-01-01T00:55:00Z"]
    assert ROLES.validate(obj, None) == []


@pytest.mark.parametrize("rule, expected", [
    ({"apiGroups": [""], "resources": ["pods"]}, ["rules[0].verbs: Required value: verbs must contain at least one value"]),
    ({"verbs": ["get"]}, ["rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                          "rules[0].resources: Required value: resource rules must supply at least one resource"]),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
     ['rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: '
      "namespaced rules cannot apply to non-resource URLs"]),
])
def test_role_rules(rule: dict[str, Any], expected: list[str]) -> None:
    assert messages(ROLES.validate(role([rule]), None)) == expected


def test_cluster_roles_allow_non_resource_urls_and_aggregation() -> None:
    obj = role([{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}], namespace=None)
    assert CLUSTERROLES.validate(obj, None) == []
    obj["aggregationRule"] = {"clusterRoleSelectors": []}
    assert messages(CLUSTERROLES.validate(obj, None)) == [
        "aggregationRule.clusterRoleSelectors: Required value: "
        "at least one clusterRoleSelector required if aggregationRule is non-nil"]


def test_binding_defaults_and_row() -> None:
    obj = binding(subjects=[{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                            {"kind": "ServiceAccount", "name": "app", "namespace": "default"},
                            {"kind": "User", "name": "bob"}])
    ROLEBINDINGS.default(obj)
    assert obj["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s.get("apiGroup") for s in obj["subjects"]] == [
        "rbac.authorization.k8s.io", "rbac.authorization.k8s.io", None, "rbac.authorization.k8s.io"]
    assert ROLEBINDINGS.validate(obj, None) == []
    assert [c.name for c in ROLEBINDINGS.columns] == ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    assert ROLEBINDINGS.row(obj, NOW) == ["read", "Role/reader", "5m", "alice, bob", "devs", "default/app"]


def test_role_ref_cannot_change() -> None:
    old = binding()
    ROLEBINDINGS.default(old)
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "writer"
    assert messages(ROLEBINDINGS.validate(new, old)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"writer"}: '
        "cannot change roleRef"]


def test_cluster_role_binding_rules() -> None:
    obj = binding(kind="Role", subjects=[{"kind": "ServiceAccount", "name": "app"}, {"kind": "Robot", "name": "r"}],
                  namespace=None)
    CLUSTERROLEBINDINGS.default(obj)
    assert messages(CLUSTERROLEBINDINGS.validate(obj, None)) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
        'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"']
    assert not CLUSTERROLEBINDINGS.namespaced and ROLEBINDINGS.namespaced
