"""The client config of a webhook (admission webhooks, CRD conversion webhooks), as
kube-apiserver validates it (k8s.io/apiserver's webhook validation):

    validate_webhook_url(path, url) -> [Cause]           https, a host, no user/query/fragment
    validate_webhook_service(path, service) -> [Cause]   name, namespace, port, a clean path
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ...errors import Cause
from .field_errors import invalid, required
from .names import is_dns1123_subdomain, is_valid_port_num

Obj = dict[str, Any]
_URL_FORM = "; desired format: https://host[/path]"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def validate_webhook_url(path: str, url: str) -> list[Cause]:
    """A webhook URL: https, with a host, and no user, query or fragment."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a malformed port fails to parse, as in Go's url.Parse
    except ValueError as err:
        return [required(path, f"url must be a valid URL: {err}{_URL_FORM}")]
    causes: list[Cause] = []
    user, _, host = parts.netloc.rpartition("@")
    if parts.scheme != "https":
        causes.append(invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _URL_FORM))
    if not host:
        causes.append(invalid(path, host, "host must be specified" + _URL_FORM))
    if "@" in parts.netloc:
        causes.append(invalid(path, user, "user information is not permitted in the URL"))
    if parts.fragment:
        causes.append(invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        causes.append(invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return causes


def validate_webhook_service(path: str, service: Obj) -> list[Cause]:
    """A webhook Service reference: name, namespace, a valid port and a clean path."""
    causes: list[Cause] = []
    if not _text(service.get("name")):
        causes.append(required(f"{path}.name", "service name is required"))
    if not _text(service.get("namespace")):
        causes.append(required(f"{path}.namespace", "service namespace is required"))
    port = service.get("port")
    port_num = port if isinstance(port, int) and not isinstance(port, bool) else 0
    if problems := is_valid_port_num(port_num):
        causes.append(invalid(f"{path}.port", port_num, "port is not valid: " + ", ".join(problems)))
    url_path = service.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return causes
    if url_path == "//":
        return causes + [invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        causes.append(invalid(f"{path}.path", url_path, "must start with a '/'"))
    steps = url_path[1:]
    steps = steps[:-1] if steps.endswith("/") else steps
    for i, step in enumerate(steps.split("/")):
        if not step:
            causes.append(invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        for problem in is_dns1123_subdomain(step):
            causes.append(invalid(f"{path}.path", url_path, f"segment[{i}]: {problem}"))
    return causes
