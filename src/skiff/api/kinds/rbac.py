"""The ``rbac.authorization.k8s.io/v1`` group: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

    kubectl get roles                kubectl get rolebindings -o wide
    NAME     CREATED AT              NAME   ROLE          AGE   USERS   GROUPS   SERVICEACCOUNTS
    reader   2024-05-01T10:00:00Z    read   Role/reader   5m    alice            default/app

Roles have no printer in Kubernetes, so their table is the server's default one
(name and creation time).  A binding's ``roleRef`` can never change.  Names only
need to be valid path segments.  (Whether the writer may grant what a role
holds — escalation checks — is the authorizer's business, not validation's.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from ..errors import Cause
from ..resource import Column, ResourceInfo
from . import meta as m
from .apps import selector as sel

Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _validate_rule(rule: Obj, namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(m.required(m.child(path, "verbs"), "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            causes.append(m.invalid(m.child(path, "nonResourceURLs"), urls,
                                    "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(m.invalid(m.child(path, "nonResourceURLs"), urls,
                                    "rules cannot apply to both regular resources and non-resource URLs"))
        return causes
    if not rule.get("apiGroups"):
        causes.append(m.required(m.child(path, "apiGroups"), "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(m.required(m.child(path, "resources"), "resource rules must supply at least one resource"))
    return causes


def _validate_meta(obj: Obj, old: Obj | None, namespaced: bool) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), namespaced, name_fn=m.name_is_path_segment)
    if old is not None:
        causes += m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return causes


def _role_validator(namespaced: bool) -> Callable[[Obj, Obj | None], list[Cause]]:
    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        causes = _validate_meta(obj, old, namespaced)
        for i, rule in enumerate(obj.get("rules") or []):
            causes += _validate_rule(rule, namespaced, m.index("rules", i))
        aggregation = obj.get("aggregationRule")
        if not namespaced and aggregation is not None:
            selectors = aggregation.get("clusterRoleSelectors") or []
            spath = "aggregationRule.clusterRoleSelectors"
            if not selectors:
                causes.append(m.required(spath, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
            for i, selector in enumerate(selectors):
                causes += sel.validate_label_selector(selector, m.index(spath, i))
                if not sel.is_well_formed(selector):
                    causes.append(m.invalid(m.index(spath, i), selector, "invalid label selector."))
        return causes
    return validate


def default_binding(obj: Obj) -> None:
    """SetDefaults for bindings and subjects: the RBAC API group where it is implied."""
    role_ref = obj.get("roleRef")
    if isinstance(role_ref, dict) and not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = GROUP
            else:  # ServiceAccount: the core group, "" -- omitted on the wire (omitempty)
                subject.pop("apiGroup", None)


def _validate_subject(subject: Obj, namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    name = subject.get("name") or ""
    if not name:
        causes.append(m.required(m.child(path, "name")))
    kind = subject.get("kind", "")
    api_group = subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            causes += m.invalid_each(m.child(path, "name"), name, m.name_is_dns_subdomain(name))
        if api_group:
            causes.append(m.not_supported(m.child(path, "apiGroup"), api_group, [""]))
        if not namespaced and not subject.get("namespace"):
            causes.append(m.required(m.child(path, "namespace")))
    elif kind in ("User", "Group"):
        if api_group != GROUP:
            causes.append(m.not_supported(m.child(path, "apiGroup"), api_group, [GROUP]))
    else:
        causes.append(m.not_supported(m.child(path, "kind"), kind, SUBJECT_KINDS))
    return causes


def _go_role_ref(ref: Obj) -> str:
    return (f'rbac.RoleRef{{APIGroup:{sel._go_string(ref.get("apiGroup", ""))}, '
            f'Kind:{sel._go_string(ref.get("kind", ""))}, Name:{sel._go_string(ref.get("name", ""))}}}')


def _binding_validator(namespaced: bool) -> Callable[[Obj, Obj | None], list[Cause]]:
    role_kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]

    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        causes = m.validate_object_meta(obj.get("metadata"), namespaced, name_fn=m.name_is_path_segment)
        ref = obj.get("roleRef") or {}
        if ref.get("apiGroup", "") != GROUP:
            causes.append(m.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
        if ref.get("kind", "") not in role_kinds:
            causes.append(m.not_supported("roleRef.kind", ref.get("kind", ""), role_kinds))
        name = ref.get("name") or ""
        if not name:
            causes.append(m.required("roleRef.name"))
        else:
            causes += m.invalid_each("roleRef.name", name, m.name_is_path_segment(name))
        for i, subject in enumerate(obj.get("subjects") or []):
            causes += _validate_subject(subject, namespaced, m.index("subjects", i))
        if old is not None:
            causes += m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
            old_ref = old.get("roleRef") or {}
            if any(ref.get(k, "") != old_ref.get(k, "") for k in ("apiGroup", "kind", "name")):
                causes.append(sel.invalid_quoted("roleRef", _go_role_ref(ref), "cannot change roleRef"))
        return causes
    return validate


def subjects_cells(obj: Obj) -> list[str]:
    """USERS, GROUPS and SERVICEACCOUNTS cells (service accounts as ``namespace/name``)."""
    users, groups, accounts = [], [], []
    for subject in obj.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace', '')}/{name}")
    return [", ".join(users), ", ".join(groups), ", ".join(accounts)]


BINDING_COLUMNS = (
    m.NAME_COLUMN,
    Column("Role", description="The role granted."),
    m.AGE_COLUMN,
    Column("Users", priority=1, description="Users in the binding."),
    Column("Groups", priority=1, description="Groups in the binding."),
    Column("ServiceAccounts", priority=1, description="Service accounts in the binding."),
)


def binding_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    ref = obj.get("roleRef") or {}
    return [m.object_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", m.object_age(obj, now),
            *subjects_cells(obj)]


def _record(kind: str, plural: str, namespaced: bool) -> ResourceInfo:
    binding = kind.endswith("Binding")
    return ResourceInfo(
        group=GROUP, version="v1", kind=kind, plural=plural, singular=kind.lower(), namespaced=namespaced,
        schema_type=f"io.k8s.api.rbac.v1.{kind}",
        columns=BINDING_COLUMNS if binding else m.DEFAULT_COLUMNS,
        row=binding_row if binding else m.name_created_row,
        default=default_binding if binding else (lambda obj: None),
        validate=_binding_validator(namespaced) if binding else _role_validator(namespaced),
    )


ROLES = _record("Role", "roles", True)
CLUSTERROLES = _record("ClusterRole", "clusterroles", False)
ROLEBINDINGS = _record("RoleBinding", "rolebindings", True)
CLUSTERROLEBINDINGS = _record("ClusterRoleBinding", "clusterrolebindings", False)

RESOURCES: tuple[ResourceInfo, ...] = (CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES)
