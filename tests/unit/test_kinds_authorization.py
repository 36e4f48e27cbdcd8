"""authorization.k8s.io/v1 access reviews: create-only records and request checks."""

from __future__ import annotations

from typing import Any

from skiff.api.kinds.authorization import (
    LOCALSUBJECTACCESSREVIEWS, RESOURCES, SELFSUBJECTACCESSREVIEWS, SUBJECTACCESSREVIEWS,
)


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def review(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "authorization.k8s.io/v1", "metadata": meta, "spec": spec}


def test_records_are_create_only() -> None:
    assert all(r.verbs == ("create",) for r in RESOURCES)
    assert {r.plural for r in RESOURCES} == {"selfsubjectaccessreviews", "subjectaccessreviews",
                                            "localsubjectaccessreviews", "selfsubjectrulesreviews"}
    assert LOCALSUBJECTACCESSREVIEWS.namespaced and not SELFSUBJECTACCESSREVIEWS.namespaced


def test_self_review_as_kubectl_auth_can_i_sends_it() -> None:
    body = review({"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
                  creationTimestamp=None)
    assert SELFSUBJECTACCESSREVIEWS.validate(body, None) == []
    assert messages(SELFSUBJECTACCESSREVIEWS.validate(review({}), None)) == [
        "spec.resourceAttributes: Invalid value: null: "
        "exactly one of nonResourceAttributes or resourceAttributes must be specified"]


def test_subject_review_needs_a_subject_and_empty_metadata() -> None:
    body = review({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}, name="x")
    result = messages(SUBJECTACCESSREVIEWS.validate(body, None))
    assert result[0].startswith("metadata: Invalid value: ") and result[0].endswith(": must be empty")
    assert result[1:] == ['spec.user: Invalid value: "": at least one of user or group must be specified']
