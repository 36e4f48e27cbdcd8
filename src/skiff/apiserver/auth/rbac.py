"""The authorizer: system:masters short-circuit, then RBAC over the in-memory policy.

::

    authorize(attrs)
      user in system:masters  -> allowed (no lookup at all)
      decision cache hit      -> the cached answer (one dict lookup)
      otherwise               ClusterRoleBindings and RoleBindings of the request's
                              namespace that name the user or one of its groups;
                              the first rule of a bound role that allows the request
                              decides; none -> denied ("RBAC: ..." lists missing roles)

Decisions are cached per (user name + groups, verb, namespace, group, resource,
subresource, name) and the cache is dropped whenever the policy's generation
moves, so a new RoleBinding counts from the next request on.
"""

from __future__ import annotations

from dataclasses import dataclass

from .attributes import Attributes, forbidden_error
from .policy import PolicyCache, missing_role
from .rules import Rule
from .user import UserInfo

MAX_CACHED = 50_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOWED = Decision(True)


class Authorizer:
    def __init__(self, policy: PolicyCache) -> None:
        self.policy = policy
        self._decisions: dict[tuple[str, tuple[str, ...]], Decision] = {}
        self._generation = -1

    def authorize(self, attrs: Attributes) -> Decision:
        if attrs.user.is_master:
            return ALLOWED
        if self._generation != self.policy.generation:
            self._decisions.clear()
            self._generation = self.policy.generation
        key = (attrs.user.key, attrs.cache_key)
        hit = self._decisions.get(key)
        if hit is None:
            hit = self._decide(attrs)
            if len(self._decisions) >= MAX_CACHED:
                self._decisions.clear()
            self._decisions[key] = hit
        return hit

    def check(self, attrs: Attributes) -> None:
        """Raise Kubernetes' 403 Forbidden unless ``attrs`` is allowed."""
        decision = self.authorize(attrs)
        if not decision.allowed:
            raise forbidden_error(attrs, decision.reason)

    def allows(self, user: UserInfo, verb: str, group: str, resource: str, namespace: str = "",
               name: str = "", subresource: str = "") -> bool:
        return self.authorize(Attributes(user, verb, True, namespace, group, "", resource,
                                         subresource, name)).allowed

    def _decide(self, attrs: Attributes) -> Decision:
        policy = self.policy
        errors: list[str] = []
        for binding in policy.bindings_for(attrs.user, attrs.namespace if attrs.resource_request else ""):
            rules = policy.role_rules(binding.role_kind, binding.role_name, binding.namespace)
            if rules is None:
                errors.append(missing_role(binding.role_kind, binding.role_name))
                continue
            for rule in rules:
                if rule.allows(attrs):
                    where = f' in namespace "{binding.namespace}"' if binding.namespace else ""
                    return Decision(True, f'RBAC: allowed by {binding.kind} "{binding.name}" of '
                                          f'{binding.role_kind} "{binding.role_name}" to '
                                          f'{binding.subject_for(attrs.user)}{where}')
        if errors:
            return Decision(False, "RBAC: " + _aggregate(errors))
        return Decision(False)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        if user.is_master:
            return [Rule({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
                    Rule({"verbs": ["*"], "nonResourceURLs": ["*"]})], []
        return self.policy.rules_for(user, namespace)


def _aggregate(errors: list[str]) -> str:
    """Several errors as Kubernetes' utilerrors aggregate prints them."""
    unique = list(dict.fromkeys(errors))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"
