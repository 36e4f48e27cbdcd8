"""Escalation prevention: nobody grants, through RBAC objects, what they do not hold.

Write hooks on the four RBAC kinds (run in the write path, after validation)::

    Role / ClusterRole create|update
        allowed if the writer is system:masters, or may "escalate" roles|clusterroles
        (that name, that namespace), or already holds every rule of the role
        (in the role's namespace; cluster-wide for ClusterRoles).
        An aggregationRule needs "escalate" (its rules come from other roles).
    RoleBinding / ClusterRoleBinding create|update
        allowed if system:masters, or may "bind" the referenced role|clusterrole
        (by name, in the binding's namespace), or holds every rule of that role.

Writes by the API server itself (no current user: bootstrap, aggregation)
are trusted.  An update that leaves the rules (or roleRef and subjects) as
they were is not checked again.
"""

from __future__ import annotations

from typing import Any, Iterable

from ...api.errors import forbidden, not_found
from ..hooks import NO_RESERVATION, KindHooks, Reservation
from .policy import GROUP, PolicyCache
from .rbac import Authorizer
from .rules import Rule, compile_rules, describe, uncovered
from .user import UserInfo, current_user

Obj = dict[str, Any]


def _checked_writer(obj: Obj, old: Obj | None, fields: tuple[str, str]) -> UserInfo | None:
    """The user whose write is checked; None when the write is trusted (the API server
    itself, system:masters) or is an update leaving ``fields`` as they were."""
    user = current_user.get()
    if user is None or user.is_master:
        return None
    if old is not None and all(old.get(f) == obj.get(f) for f in fields):
        return None
    return user


def _require_held(authorizer: Authorizer, user: UserInfo, namespace: str, rules: Iterable[Rule],
                  plural: str, name: str) -> None:
    """Forbidden unless ``user`` already holds every one of ``rules`` in ``namespace``."""
    owned, _ = authorizer.rules_for(user, namespace)
    missing = uncovered(owned, rules)
    if missing:
        groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
        raise forbidden(plural, GROUP, name,
                        f'user "{user.name}" (groups={groups}) is attempting to grant RBAC '
                        f"permissions not currently held:\n{describe(missing)}")


class RoleEscalationCheck(KindHooks):
    def __init__(self, authorizer: Authorizer, plural: str) -> None:
        self.authorizer = authorizer
        self.plural = plural  # roles | clusterroles

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        user = _checked_writer(obj, old, ("rules", "aggregationRule"))
        if user is None:
            return NO_RESERVATION
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if self.authorizer.allows(user, "escalate", GROUP, self.plural, ns, name):
            return NO_RESERVATION
        if obj.get("aggregationRule") is not None:
            raise forbidden(self.plural, GROUP, name,
                            "must have cluster-admin privileges to use the aggregationRule")
        _require_held(self.authorizer, user, ns, compile_rules(obj.get("rules")), self.plural, name)
        return NO_RESERVATION


class BindingEscalationCheck(KindHooks):
    def __init__(self, authorizer: Authorizer, policy: PolicyCache, plural: str) -> None:
        self.authorizer = authorizer
        self.policy = policy
        self.plural = plural  # rolebindings | clusterrolebindings

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        user = _checked_writer(obj, old, ("roleRef", "subjects"))
        if user is None:
            return NO_RESERVATION
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        ref = obj.get("roleRef") or {}
        kind, role = ref.get("kind", ""), ref.get("name", "")
        role_plural = "clusterroles" if kind == "ClusterRole" else "roles"
        if self.authorizer.allows(user, "bind", GROUP, role_plural, ns, role):
            return NO_RESERVATION
        rules = self.policy.role_rules(kind, role, ns)
        if rules is None:
            raise not_found(role_plural, GROUP, role)
        _require_held(self.authorizer, user, ns, rules, self.plural, name)
        return NO_RESERVATION
