"""Create-only resources that are answered, not stored: access reviews.

``kubectl auth can-i`` POSTs a SelfSubjectAccessReview and reads
``status.allowed``; ``kubectl auth can-i --list`` a SelfSubjectRulesReview.
Nothing is written: the server fills ``status`` and echoes the object (201).

Until authorization exists every request is allowed, which is what these
answers say.  A :data:`ReviewHandler` receives the validated object and
returns it with its status; handlers are looked up by ``(group, plural)``
in the table :func:`default_reviews` builds (an authorizer can replace them).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

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
