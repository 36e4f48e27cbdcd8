"""``spec.conversion`` of a CRD and the webhook client config it may name.

    validate_conversion(conversion, require_recognized) -> [Cause]
        strategy None or Webhook; with Webhook exactly one of url / service and a list of
        ConversionReview versions (one of ACCEPTED_REVIEW_VERSIONS unless the stored
        definition already lacked one).  Errors use the internal field names
        ``spec.conversion.webhookClientConfig`` and ``spec.conversion.conversionReviewVersions``.
The webhook client config itself is checked as admission webhooks' is
(:mod:`..meta.webhookclient`).

The PEM check of ``caBundle`` is not reproduced.  Pure functions.
"""

from __future__ import annotations

from typing import Any

from ...errors import Cause
from .. import meta as m
from ..meta.webhookclient import validate_webhook_service, validate_webhook_url
from .common import Obj, as_dict, as_list, as_str, validate_enum

CONVERSION_STRATEGIES = ("None", "Webhook")
ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")


def validate_conversion(conversion: Obj, require_recognized: bool) -> list[Cause]:
    path = "spec.conversion"
    strategy = as_str(conversion.get("strategy"))
    causes = validate_enum(f"{path}.strategy", strategy, CONVERSION_STRATEGIES)
    webhook = as_dict(conversion.get("webhook"))
    client = webhook.get("clientConfig")
    review_versions = webhook.get("conversionReviewVersions")
    if strategy != "Webhook":
        if client is not None:
            causes.append(m.forbidden(f"{path}.webhookClientConfig",
                                      "should not be set when strategy is not set to Webhook"))
        if as_list(review_versions):
            causes.append(m.forbidden(f"{path}.conversionReviewVersions",
                                      "should not be set when strategy is not set to Webhook"))
        return causes
    cc_path = f"{path}.webhookClientConfig"
    if not isinstance(client, dict):
        causes.append(m.required(cc_path, "required when strategy is set to Webhook"))
    elif (client.get("url") is None) == (client.get("service") is None):
        causes.append(m.required(cc_path, "exactly one of url or service is required"))
    elif client.get("url") is not None:
        causes += validate_webhook_url(f"{cc_path}.url", as_str(client.get("url")))
    else:
        causes += validate_webhook_service(f"{cc_path}.service", as_dict(client.get("service")))
    causes += _validate_review_versions(as_list(review_versions), require_recognized,
                                        f"{path}.conversionReviewVersions")
    return causes


def _validate_review_versions(versions: list[Any], require_recognized: bool, path: str) -> list[Cause]:
    if not versions:
        return [m.required(path)]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        version = as_str(version)
        if version in seen:
            causes.append(m.invalid(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(version)
        causes += m.invalid_each(f"{path}[{i}]", version, m.is_dns1035_label(version))
    if require_recognized and not any(v in ACCEPTED_REVIEW_VERSIONS for v in versions):
        causes.append(m.invalid(path, versions, "must include at least one of " + ", ".join(ACCEPTED_REVIEW_VERSIONS)))
    return causes
