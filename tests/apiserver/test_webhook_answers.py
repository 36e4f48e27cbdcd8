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


class Store:
    """``get(plural, namespace, name)`` over a dict, as the API server's core getter."""

    def __init__(self, *objects: dict) -> None:
        self.objects = {(o["plural"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                        for o in objects}

    async def get(self, plural: str, namespace: str, name: str) -> dict:
        from skiff.api.errors import not_found

        try:
            return self.objects[(plural, namespace, name)]
        except KeyError:
            raise not_found(plural, "", name) from None


def _service_world(pod_ip: str) -> Store:
    return Store(
        {"plural": "services", "metadata": {"namespace": "policy", "name": "hook"},
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}},
        {"plural": "endpoints", "metadata": {"namespace": "policy", "name": "hook"},
         "subsets": [{"addresses": [{"ip": pod_ip, "targetRef": {"kind": "Pod", "namespace": "policy",
                                                                 "name": "hook-0"}}],
                      "ports": [{"name": "https", "port": 8443}]}]},
        {"plural": "pods", "metadata": {"namespace": "policy", "name": "hook-0"},
         "spec": {"nodeName": "node-0"}, "status": {"podIP": pod_ip}},
        {"plural": "nodes", "metadata": {"name": "node-0"}, "spec": {"podCIDR": "10.244.0.0/24"}})


async def test_a_service_webhook_is_called_at_a_ready_pod_with_the_services_tls_name() -> None:
    from skiff.apiserver.webhooks.calls import WebhookClient

    client = WebhookClient(_service_world("10.244.0.7").get)
    url, server_name = await client._where({"service": {"namespace": "policy", "name": "hook", "port": 443,
                                                        "path": "/validate"}})
    assert (url, server_name) == ("https://10.244.0.7:8443/validate", "hook.policy.svc")


async def test_a_service_webhook_outside_the_pod_network_is_refused() -> None:
    from skiff.apiserver.webhooks.calls import WebhookClient

    client = WebhookClient(_service_world("192.0.2.9").get)  # not in the node's pod CIDR
    with pytest.raises(CallFailed) as err:
        await client._where({"service": {"namespace": "policy", "name": "hook", "port": 443}})
    assert "address not allowed: 192.0.2.9" in str(err.value)
