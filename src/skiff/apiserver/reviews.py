"""Create-only resources that are answered, not stored: access reviews.

``kubectl auth can-i`` POSTs a SelfSubjectAccessReview and reads
``status.allowed``; ``kubectl auth can-i --list`` a SelfSubjectRulesReview.
Nothing is written: the server fills ``status`` and echoes the object (201).

Handlers are looked up by ``(group, plural)`` in the table the API server
keeps (``ServerContext.reviews``).  :func:`default_reviews` is the table of a
server without authorization (every request is allowed, and the answers say
so); :func:`authorizer_reviews` answers from the RBAC authorizer::

    SelfSubjectAccessReview    the requesting user (after impersonation)
    SubjectAccessReview        spec.user / groups / uid / extra, cluster-wide
    LocalSubjectAccessReview   the same, in metadata.namespace
    SelfSubjectRulesReview     every rule the requester holds in spec.namespace
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable

from .auth.user import UserInfo, current_user

if TYPE_CHECKING:
    from .auth.attributes import Attributes
    from .auth.rbac import Authorizer

Obj = dict[str, Any]
ReviewHandler = Callable[[Obj], Obj]

AUTHZ = "authorization.k8s.io"


def _allow(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["status"] = {"allowed": True}
    return out


def _all_rules(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["status"] = {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": False,
    }
    return out


def default_reviews() -> dict[tuple[str, str], ReviewHandler]:
    return {
        (AUTHZ, "selfsubjectaccessreviews"): _allow,
        (AUTHZ, "subjectaccessreviews"): _allow,
        (AUTHZ, "localsubjectaccessreviews"): _allow,
        (AUTHZ, "selfsubjectrulesreviews"): _all_rules,
    }


def review_attributes(user: UserInfo, spec: Obj) -> "Attributes":
    from .auth.attributes import Attributes

    res = spec.get("resourceAttributes")
    if isinstance(res, dict):
        return Attributes(user, str(res.get("verb", "")), True, str(res.get("namespace", "")),
                          str(res.get("group", "")), str(res.get("version", "")),
                          str(res.get("resource", "")), str(res.get("subresource", "")),
                          str(res.get("name", "")))
    non = spec.get("nonResourceAttributes") or {}
    return Attributes(user, str(non.get("verb", "")), False, path=str(non.get("path", "")))


def _spec_user(spec: Obj) -> UserInfo:
    extra = {k: tuple(v or ()) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(str(spec.get("user", "")), uid=str(spec.get("uid", "")),
                    groups=tuple(spec.get("groups") or ()), extra=extra)


def authorizer_reviews(authorizer: "Authorizer") -> dict[tuple[str, str], ReviewHandler]:
    """Review handlers answering truthfully from ``authorizer``."""

    def answer(obj: Obj, user: UserInfo | None) -> Obj:
        out = copy.deepcopy(obj)
        if user is None:  # an internal caller: the server itself is allowed everything
            out["status"] = {"allowed": True}
            return out
        decision = authorizer.authorize(review_attributes(user, out.get("spec") or {}))
        status: Obj = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        out["status"] = status
        return out

    def self_access(obj: Obj) -> Obj:
        return answer(obj, current_user.get())

    def subject_access(obj: Obj) -> Obj:
        return answer(obj, _spec_user(obj.get("spec") or {}))

    def self_rules(obj: Obj) -> Obj:
        user = current_user.get()
        if user is None:
            return _all_rules(obj)
        out = copy.deepcopy(obj)
        namespace = str((out.get("spec") or {}).get("namespace", ""))
        rules, errors = authorizer.rules_for(user, namespace)
        resource_rules: list[Obj] = []
        url_rules: list[Obj] = []
        for rule in rules:
            shown = rule.to_api()
            target = url_rules if "nonResourceURLs" in shown else resource_rules
            if shown not in target:
                target.append(shown)
        status: Obj = {"resourceRules": resource_rules, "nonResourceRules": url_rules,
                       "incomplete": bool(errors)}
        if errors:
            status["evaluationError"] = ", ".join(errors)
        out["status"] = status
        return out

    return {
        (AUTHZ, "selfsubjectaccessreviews"): self_access,
        (AUTHZ, "subjectaccessreviews"): subject_access,
        (AUTHZ, "localsubjectaccessreviews"): subject_access,
        (AUTHZ, "selfsubjectrulesreviews"): self_rules,
    }
