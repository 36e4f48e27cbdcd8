"""The ``authorization.k8s.io/v1`` group: access reviews ("may X do Y?"), create-only.

    SelfSubjectAccessReview    kubectl auth can-i ...      (cluster-scoped)
    SubjectAccessReview        may <user/groups> ...?      (cluster-scoped)
    LocalSubjectAccessReview   same, within one namespace  (namespaced)
    SelfSubjectRulesReview     kubectl auth can-i --list   (cluster-scoped)

Nothing is stored: the API server answers a POST by filling ``status`` from the
authorizer.  These records describe the endpoints and check the request body.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import Cause
from ..resource import ResourceInfo
from . import meta as m

Obj = dict[str, Any]

GROUP = "authorization.k8s.io"
#: metadata the API server itself may have filled in before validation.
_SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields")


def _meta_must_be_empty(obj: Obj, allow: tuple[str, ...] = ()) -> list[Cause]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items()
            if k not in _SERVER_FIELDS + allow and v not in (None, "", {}, [])}
    return [m.invalid("metadata", meta, "must be empty")] if meta else []


def _validate_attributes(spec: Obj, path: str) -> list[Cause]:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        return [m.invalid(m.child(path, "nonResourceAttributes"), non_resource,
                          "cannot be specified in combination with resourceAttributes")]
    if resource is None and non_resource is None:
        return [m.invalid(m.child(path, "resourceAttributes"), None,
                          "exactly one of nonResourceAttributes or resourceAttributes must be specified")]
    return []


def _validate_subject_review(obj: Obj, old: Obj | None, *, self_review: bool, local: bool) -> list[Cause]:
    causes = _meta_must_be_empty(obj, ("namespace",) if local else ())
    spec = obj.get("spec") or {}
    causes += _validate_attributes(spec, "spec")
    if not self_review and not spec.get("user") and not spec.get("groups"):
        causes.append(m.invalid("spec.user", spec.get("user", ""), "at least one of user or group must be specified"))
    if local:
        namespace = m.get_path(obj, "metadata.namespace", "")
        attributes_ns = m.get_path(spec, "resourceAttributes.namespace", "")
        if spec.get("resourceAttributes") is not None and attributes_ns != namespace:
            causes.append(m.invalid("spec.resourceAttributes.namespace", attributes_ns,
                                    "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            causes.append(m.invalid("spec.nonResourceAttributes", spec["nonResourceAttributes"],
                                    "disallowed on this kind of request"))
    return causes


def _validator(**kwargs: bool) -> Callable[[Obj, Obj | None], list[Cause]]:
    return lambda obj, old: _validate_subject_review(obj, old, **kwargs)


def _validate_rules_review(obj: Obj, old: Obj | None) -> list[Cause]:
    return _meta_must_be_empty(obj)


def _record(kind: str, namespaced: bool, validate: Callable[[Obj, Obj | None], list[Cause]]) -> ResourceInfo:
    return ResourceInfo(
        group=GROUP, version="v1", kind=kind, plural=kind.lower() + "s", singular=kind.lower(),
        namespaced=namespaced, schema_type=f"io.k8s.api.authorization.v1.{kind}", verbs=("create",),
        columns=m.DEFAULT_COLUMNS, row=m.name_created_row, validate=validate,
    )


SELFSUBJECTACCESSREVIEWS = _record("SelfSubjectAccessReview", False, _validator(self_review=True, local=False))
SUBJECTACCESSREVIEWS = _record("SubjectAccessReview", False, _validator(self_review=False, local=False))
LOCALSUBJECTACCESSREVIEWS = _record("LocalSubjectAccessReview", True, _validator(self_review=False, local=True))
SELFSUBJECTRULESREVIEWS = _record("SelfSubjectRulesReview", False, _validate_rules_review)

RESOURCES: tuple[ResourceInfo, ...] = (
    LOCALSUBJECTACCESSREVIEWS, SELFSUBJECTACCESSREVIEWS, SELFSUBJECTRULESREVIEWS, SUBJECTACCESSREVIEWS,
)
