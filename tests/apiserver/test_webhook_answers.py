"""How the API server reads an admission webhook's AdmissionReview answer, and words outcomes."""

from __future__ import annotations

import base64
import json

import pytest

from skiff.apiserver.webhooks.calls import CallFailed, parse_answer
from skiff.apiserver.webhooks.dispatch import denied, failed_call


def review(**response: object) -> bytes:
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "response": {"uid": "u1", **response}}).encode()


def test_an_allowing_answer_with_a_patch_and_warnings() -> None:
    patch = [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]
    answer = parse_answer(review(allowed=True, patchType="JSONPatch", warnings=["careful"],
                                 patch=base64.b64encode(json.dumps(patch).encode()).decode()), "u1")
    assert (answer.allowed, answer.patch, answer.warnings) == (True, patch, ("careful",))


@pytest.mark.parametrize("raw, why", [
    (b"not json", "received invalid webhook response: "),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
     "received invalid webhook response: response is nil"),
    (review(allowed=True).replace(b'"u1"', b'"u2"'),
     'received invalid webhook response: expected response.uid="u1", got "u2"'),
    (review(allowed=True, patch="W10="), "webhook returned response.patch but not response.patchType"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                 "response": {"uid": "u1"}}).encode(), "expected webhook response of admission.k8s.io/v1"),
])
def test_a_nonsense_answer_is_a_failed_call(raw: bytes, why: str) -> None:
    with pytest.raises(CallFailed) as err:
        parse_answer(raw, "u1")
    assert why in str(err.value)


def test_denials_are_worded_as_kubernetes_words_them() -> None:
    err = denied("w.example.com", {"code": 403, "reason": "Forbidden", "message": "no"})
    assert (err.code, err.reason, err.message) == (403, "Forbidden",
                                                   'admission webhook "w.example.com" denied the request: no')
    assert denied("w.example.com", {"code": 200}).code == 400  # never a success code with a refusal
    assert denied("w.example.com", {}).message == \
        'admission webhook "w.example.com" denied the request without explanation'
    assert failed_call("w.example.com", "boom").message == \
        'Internal error occurred: failed calling webhook "w.example.com": boom'
