"""``spec.conversion`` of a CRD and the webhook client config it may name.

    validate_conversion(conversion, require_recognized) -> [Cause]
        strategy None or Webhook; with Webhook exactly one of url / service and a list of
        ConversionReview versions (one of ACCEPTED_REVIEW_VERSIONS unless the stored
        definition already lacked one).  Errors use the internal field names
        ``spec.conversion.webhookClientConfig`` and ``spec.conversion.conversionReviewVersions``.
    validate_webhook_url(path, url) -> [Cause]           https, a host, no user/query/fragment
    validate_webhook_service(path, service) -> [Cause]   name, namespace, port, a clean path

The PEM check of ``caBundle`` is not reproduced.  Pure functions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ...errors import Cause
from .. import meta as m
from .common import Obj, as_dict, as_list, as_str, validate_enum

CONVERSION_STRATEGIES = ("None", "Webhook")
ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
_URL_FORM = "; desired format: https://host[/path]"


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


def validate_webhook_url(path: str, url: str) -> list[Cause]:
    """A webhook URL: https, with a host, and no user, query or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError as err:
        return [m.required(path, f"url must be a valid URL: {err}{_URL_FORM}")]
    causes: list[Cause] = []
    user, _, host = parts.netloc.rpartition("@")
    if parts.scheme != "https":
        causes.append(m.invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _URL_FORM))
    if not host:
        causes.append(m.invalid(path, host, "host must be specified" + _URL_FORM))
    if "@" in parts.netloc:
        causes.append(m.invalid(path, user, "user information is not permitted in the URL"))
    if parts.fragment:
        causes.append(m.invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        causes.append(m.invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return causes


def validate_webhook_service(path: str, service: Obj) -> list[Cause]:
    """A webhook Service reference: name, namespace, a valid port and a clean path."""
    causes: list[Cause] = []
    if not as_str(service.get("name")):
        causes.append(m.required(f"{path}.name", "service name is required"))
    if not as_str(service.get("namespace")):
        causes.append(m.required(f"{path}.namespace", "service namespace is required"))
    port = service.get("port")
    port_num = port if isinstance(port, int) and not isinstance(port, bool) else 0
    if problems := m.is_valid_port_num(port_num):
        causes.append(m.invalid(f"{path}.port", port_num, "port is not valid: " + ", ".join(problems)))
    url_path = service.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return causes
    if url_path == "//":
        return causes + [m.invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        causes.append(m.invalid(f"{path}.path", url_path, "must start with a '/'"))
    steps = url_path[1:]
    steps = steps[:-1] if steps.endswith("/") else steps
    for i, step in enumerate(steps.split("/")):
        if not step:
            causes.append(m.invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        for problem in m.is_dns1123_subdomain(step):
            causes.append(m.invalid(f"{path}.path", url_path, f"segment[{i}]: {problem}"))
    return causes
