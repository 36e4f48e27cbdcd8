"""Shared building blocks for kinds: field errors, name rules, metadata, ages, selectors.

Every kind module validates and prints objects with the same vocabulary
Kubernetes uses, so that messages and Table cells read exactly like a real
cluster's.  This module holds the pieces that are not specific to one kind:

Field errors
    :func:`required`, :func:`invalid`, :func:`not_supported`, :func:`forbidden`,
    :func:`duplicate`, :func:`not_found`, :func:`too_long`, :func:`too_many` build
    :class:`~skiff.api.errors.Cause` records whose ``message`` is the error body
    Kubernetes prints after the field path::

        spec.containers[0].image: Required value
        metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must ...
        spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", ...

Name and key rules
    ``is_*`` functions return a list of problem descriptions (empty = valid), as
    the apimachinery ``IsDNS1123Label`` family does; ``name_is_*`` take an extra
    ``prefix`` flag for ``generateName`` checks.

Object metadata
    :func:`validate_object_meta` (create) and :func:`validate_object_meta_update`.

Table cells
    :func:`format_age` (kubectl's ``5s``, ``3m2s``, ``4h``, ``2d3h``),
    :func:`format_labels`, :func:`format_selector`, :func:`join_or_none`.

Time is never read implicitly in row functions: they take ``now`` (a timezone-aware
``datetime``; ``None`` means the wall clock, via :func:`utc_now`), so tests pass a
fixed instant instead of patching anything.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping

from ..errors import Cause
from ..resource import Column

Obj = dict[str, Any]

#: ``(name, prefix) -> problems``: validates a metadata name (prefix=True for generateName).
NameValidator = Callable[[str, bool], list[str]]

# ---------------------------------------------------------------------------
# Field errors, worded like k8s.io/apimachinery/pkg/util/validation/field.
# ---------------------------------------------------------------------------

FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"


class Verbatim(str):
    """A value printed as-is in an error (Kubernetes prints Quantities unquoted: ``Invalid value: 2``)."""


def format_value(value: Any) -> str:
    """Render a bad value the way Kubernetes' field errors do (strings quoted)."""
    if isinstance(value, Verbatim):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[]string{" + ", ".join(format_value(v) for v in value) + "}"
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return "map[string]string{" + ", ".join(
            f"{format_value(k)}:{format_value(value[k])}" for k in sorted(value)) + "}"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _body(kind: str, value: Any = None, detail: str = "", *, show_value: bool = True) -> str:
    text = f"{kind}: {format_value(value)}" if show_value else kind
    return f"{text}: {detail}" if detail else text


def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", _body("Required value", detail=detail, show_value=False), path)


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return Cause("FieldValueInvalid", _body("Invalid value", value, detail), path)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    values = list(supported)
    detail = ("supported values: " + ", ".join(json.dumps(v) for v in values)) if values else ""
    return Cause("FieldValueNotSupported", _body("Unsupported value", value, detail), path)


def forbidden(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueForbidden", _body("Forbidden", detail=detail, show_value=False), path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", _body("Duplicate value", value), path)


def not_found(path: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", _body("Not found", value), path)


def too_long(path: str, max_length: int) -> Cause:
    detail = f"may not be more than {max_length} bytes" if max_length >= 0 else "value is too long"
    return Cause("FieldValueTooLong", _body("Too long", detail=detail, show_value=False), path)


def too_many(path: str, actual: int, maximum: int) -> Cause:
    detail = f"must have at most {maximum} items" if maximum >= 0 else "has too many items"
    if actual >= 0:
        return Cause("FieldValueTooMany", _body("Too many", actual, detail), path)
    return Cause("FieldValueTooMany", _body("Too many", detail=detail, show_value=False), path)


def invalid_each(path: str, value: Any, problems: Iterable[str]) -> list[Cause]:
    """One ``Invalid value`` cause per problem string (the ``is_*`` helpers' output)."""
    return [invalid(path, value, p) for p in problems]


def validate_nonnegative(value: int | None, path: str) -> list[Cause]:
    if value is not None and value < 0:
        return [invalid(path, value, IS_NEGATIVE)]
    return []


def validate_immutable(new: Any, old: Any, path: str) -> list[Cause]:
    """``field is immutable`` when the value changed (``None`` and absent are equal)."""
    if new != old:
        return [invalid(path, new, FIELD_IMMUTABLE)]
    return []


def spec_diff(old: Mapping[str, Any], new: Mapping[str, Any], type_name: str) -> str:
    """A short ``- old / + new`` listing of the top-level fields that differ, appended to
    "immutable" messages (Kubernetes appends a full go-cmp diff of the Go structs)."""
    lines = [f"  {type_name}{{"]
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            lines.append(f"- \t{k}: {json.dumps(old.get(k), sort_keys=True, default=str)},")
            lines.append(f"+ \t{k}: {json.dumps(new.get(k), sort_keys=True, default=str)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# ---------------------------------------------------------------------------
# Name and key formats (k8s.io/apimachinery/pkg/util/validation).
# ---------------------------------------------------------------------------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
              "and end with an alphanumeric character")
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
_C_IDENTIFIER_MSG = ("a valid C identifier must start with alphabetic character or '_', followed by "
                     "a string of alphanumeric characters or '_'")

_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE = re.compile(f"^{_DNS1035_LABEL_FMT}$")
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")
_C_IDENTIFIER_RE = re.compile(f"^{_C_IDENTIFIER_FMT}$")
_PORT_NAME_CHARS_RE = re.compile("^[-a-z0-9]+$")
_HAS_LETTER_RE = re.compile("[a-z]")

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Kubernetes' "<msg> (e.g. 'a',  or 'b', regex used for validation is '<fmt>')"."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def _fullmatch(regex: re.Pattern[str], value: str) -> bool:
    # Go's regexp ``$`` does not match before a trailing newline; Python's does.
    return "\n" not in value and regex.match(value) is not None


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _fullmatch(_DNS1123_LABEL_RE, value):
        if _fullmatch(_DNS1123_SUBDOMAIN_RE, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _fullmatch(_DNS1123_SUBDOMAIN_RE, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1035_LABEL_MAX:
        errs.append(max_len_error(DNS1035_LABEL_MAX))
    if not _fullmatch(_DNS1035_LABEL_RE, value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label keys, annotation keys, finalizers: ``[prefix/]name``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _fullmatch(_QNAME_RE, name):
        errs.append("name part " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _fullmatch(_LABEL_VALUE_RE, value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_config_map_key(value: str) -> list[str]:
    """Keys of ConfigMap/Secret ``data``."""
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _fullmatch(_CONFIG_KEY_RE, value):
        errs.append(regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_c_identifier(value: str) -> list[str]:
    if _fullmatch(_C_IDENTIFIER_RE, value):
        return []
    return [regex_error(_C_IDENTIFIER_MSG, _C_IDENTIFIER_FMT, "my_name", "MY_NAME", "MyName")]


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """IANA service names as used for container and service port names."""
    errs: list[str] = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _fullmatch(_PORT_NAME_CHARS_RE, port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _mask_trailing_dash(name: str) -> str:
    # A generateName may end in '-' (a random suffix follows): check it as if it did not.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool = False) -> list[str]:
    """Names that only have to be usable in a URL path (e.g. RBAC roles)."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# ---------------------------------------------------------------------------
# Object metadata
# ---------------------------------------------------------------------------


def validate_labels(labels: Mapping[str, Any] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for k in sorted(labels or {}):
        v = (labels or {})[k]
        causes += invalid_each(path, k, is_qualified_name(k))
        causes += invalid_each(path, v, is_valid_label_value(v if isinstance(v, str) else str(v)))
    return causes


def validate_annotations(annotations: Mapping[str, Any] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for k in sorted(annotations or {}):
        causes += invalid_each(path, k, is_qualified_name(k.lower()))
        total += len(k) + len(str((annotations or {})[k]))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def _validate_owner_references(refs: list[Obj] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    first_controller = ""
    for ref in refs or []:
        api_version = ref.get("apiVersion", "") or ""
        version = api_version.rsplit("/", 1)[-1]
        if not version:
            causes.append(invalid(child(path, "apiVersion"), api_version, "version must not be empty"))
        if not ref.get("kind"):
            causes.append(invalid(child(path, "kind"), ref.get("kind", ""), "kind must not be empty"))
        if not ref.get("name"):
            causes.append(invalid(child(path, "name"), ref.get("name", ""), "name must not be empty"))
        if not ref.get("uid"):
            causes.append(invalid(child(path, "uid"), ref.get("uid", ""), "uid must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            causes.append(invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller"):
            this = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                causes.append(invalid(path, refs, "Only one reference can have Controller set to true. "
                                      f'Found "true" in references for {first_controller} and {this}'))
            else:
                first_controller = this
    return causes


def _validate_finalizers(finalizers: list[str] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for f in finalizers or []:
        causes += invalid_each(path, f, is_qualified_name(f))
    if "orphan" in (finalizers or []) and "foregroundDeletion" in (finalizers or []):
        causes.append(invalid(path, finalizers,
                              "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


def validate_object_meta(meta: Mapping[str, Any] | None, namespaced: bool, path: str = "metadata",
                         name_fn: NameValidator = name_is_dns_subdomain) -> list[Cause]:
    """ObjectMeta checks on create (name, namespace, labels, annotations, owners, finalizers)."""
    m = meta or {}
    causes: list[Cause] = []
    generate_name = m.get("generateName") or ""
    if generate_name:
        causes += invalid_each(child(path, "generateName"), generate_name, name_fn(generate_name, True))
    name = m.get("name") or ""
    if not name:
        causes.append(required(child(path, "name"), "name or generateName is required"))
    else:
        causes += invalid_each(child(path, "name"), name, name_fn(name, False))
    namespace = m.get("namespace") or ""
    if namespaced:
        if not namespace:
            causes.append(required(child(path, "namespace")))
        else:
            causes += invalid_each(child(path, "namespace"), namespace, name_is_dns_label(namespace))
    elif namespace:
        causes.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    causes += validate_nonnegative(m.get("generation"), child(path, "generation"))
    causes += validate_labels(m.get("labels"), child(path, "labels"))
    causes += validate_annotations(m.get("annotations"), child(path, "annotations"))
    causes += _validate_owner_references(m.get("ownerReferences"), child(path, "ownerReferences"))
    causes += _validate_finalizers(m.get("finalizers"), child(path, "finalizers"))
    return causes


def validate_object_meta_update(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None,
                                path: str = "metadata") -> list[Cause]:
    """ObjectMeta checks on update: identity fields are immutable, labels stay valid."""
    n, o = new or {}, old or {}
    causes: list[Cause] = []
    if o.get("deletionTimestamp"):
        extra = sorted(set(n.get("finalizers") or []) - set(o.get("finalizers") or []))
        if extra:
            causes.append(forbidden(child(path, "finalizers"),
                                    "no new finalizers can be added if the object is being deleted, "
                                    "found new finalizers " + format_value(extra)))
    if (n.get("generation") or 0) < (o.get("generation") or 0):
        causes.append(invalid(child(path, "generation"), n.get("generation") or 0, "must not be decremented"))
    for name in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds"):
        causes += validate_immutable(n.get(name) or None, o.get(name) or None, child(path, name))
    causes += validate_labels(n.get("labels"), child(path, "labels"))
    causes += validate_annotations(n.get("annotations"), child(path, "annotations"))
    causes += _validate_owner_references(n.get("ownerReferences"), child(path, "ownerReferences"))
    return causes


def ensure_meta(obj: Obj) -> Obj:
    """The object's ``metadata`` dict, created when missing."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def get_path(obj: Mapping[str, Any] | None, dotted: str, default: Any = None) -> Any:
    """``get_path(obj, "spec.replicas")``; ``default`` when any step is missing."""
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return default
        cur = cur[part]
    return default if cur is None else cur


# ---------------------------------------------------------------------------
# Time and Table cells
# ---------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 (``2024-01-02T03:04:05Z``, optional fraction/offset) -> aware datetime."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", text)
    if m and m.group(2):  # Python accepts at most 6 fractional digits
        text = m.group(1) + m.group(2)[:7].ljust(7, "0") + m.group(3)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_time(when: datetime) -> str:
    """``2024-01-02T03:04:05Z`` (whole seconds, UTC), as metav1.Time serialises."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(when: datetime) -> str:
    """``2024-01-02T03:04:05.123456Z`` as metav1.MicroTime serialises."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def human_duration(seconds: float) -> str:
    """kubectl's duration: 59s, 119s, 2m5s, 9m, 3h, 4h30m, 47h, 3d4h, 30d, 2y30d, 9y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def short_human_duration(seconds: float) -> str:
    """The coarser form (one unit): 59s, 5m, 3h, 12d, 2y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    if s < 86400 * 365:
        return f"{s // 86400}d"
    return f"{s // (86400 * 365)}y"


def format_age(timestamp: str | datetime | None, now: datetime | None = None) -> str:
    """The AGE cell: time since ``timestamp``; ``<unknown>`` when it is not set."""
    when = parse_time(timestamp) if isinstance(timestamp, str) or timestamp is None else timestamp
    if when is None:
        return "<unknown>"
    return human_duration(((now or utc_now()) - when).total_seconds())


def object_age(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    return format_age(get_path(obj, "metadata.creationTimestamp"), now)


def object_name(obj: Mapping[str, Any]) -> str:
    return str(get_path(obj, "metadata.name", ""))


#: The NAME column every printer starts with.
NAME_COLUMN = Column("Name", format="name", description="Name must be unique within a namespace.")
#: The AGE column (time since creationTimestamp, as a string cell).
AGE_COLUMN = Column("Age", description="Time since the object was created.")
#: The columns kube-apiserver uses for kinds without a printer (cells: name_created_row).
DEFAULT_COLUMNS = (NAME_COLUMN, Column("Created At", type="date", description="Creation time."))


def name_age_row(obj: Mapping[str, Any], now: datetime | None = None) -> list[Any]:
    return [object_name(obj), object_age(obj, now)]


def name_created_row(obj: Mapping[str, Any], now: datetime | None = None) -> list[Any]:
    """Cells for :data:`DEFAULT_COLUMNS`: name and the RFC 3339 creation time."""
    created = parse_time(get_path(obj, "metadata.creationTimestamp"))
    return [object_name(obj), format_time(created) if created else ""]


def container_cells(containers: Iterable[Mapping[str, Any]] | None) -> tuple[str, str]:
    """CONTAINERS and IMAGES cells of workload tables: names and images, comma-joined."""
    items = list(containers or [])
    return (",".join(str(c.get("name", "")) for c in items),
            ",".join(str(c.get("image", "")) for c in items))


def format_labels(labels: Mapping[str, Any] | None) -> str:
    """``a=1,b=2`` sorted by key, ``<none>`` when empty (labels.FormatLabels)."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """A metav1.LabelSelector as a string: ``app=web,tier in (a,b),!legacy``; ``<none>`` if empty."""
    if not selector:
        return "<none>"
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in selector.get("matchExpressions") or []:
        k = expr.get("key", "")
        op = expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            reqs.append((k, f"{k} in ({values})"))
        elif op == "NotIn":
            reqs.append((k, f"{k} notin ({values})"))
        elif op == "Exists":
            reqs.append((k, k))
        elif op == "DoesNotExist":
            reqs.append((k, f"!{k}"))
        else:
            return "<error>"
    if not reqs:
        return "<none>"
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def selector_from_labels(labels: Mapping[str, Any] | None) -> str:
    """A map selector as a query string (``a=1,b=2``), empty string when there is none."""
    items = labels or {}
    return ",".join(f"{k}={items[k]}" for k in sorted(items))


def join_or_none(values: Iterable[str], sep: str = ",") -> str:
    items = [v for v in values if v]
    return sep.join(items) if items else "<none>"


# ---------------------------------------------------------------------------
# Quantities ("100m", "1.5Gi", "2e3"): resource.Quantity values.
# ---------------------------------------------------------------------------

_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")


def parse_quantity(value: Any) -> Fraction | None:
    """The exact value of a quantity (``"100m"`` -> 1/10); ``None`` when it is malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value).limit_denominator(10**9)
    if not isinstance(value, str):
        return None
    m = _QUANTITY_RE.match(value.strip())
    if not m:
        return None
    number = Fraction(m.group(1))
    suffix = m.group(2) or ""
    if suffix in _BINARY_SUFFIXES:
        return number * Fraction(1024 ** _BINARY_SUFFIXES[suffix])
    exponent = _DECIMAL_SUFFIXES[suffix] if suffix in _DECIMAL_SUFFIXES else int(suffix[1:])
    return number * Fraction(10) ** exponent


def is_valid_quantity(value: Any) -> bool:
    return parse_quantity(value) is not None


def quantity_is_binary(value: Any) -> bool:
    return isinstance(value, str) and value.strip()[-2:] in _BINARY_SUFFIXES


def format_quantity(amount: Fraction | int, binary: bool = False) -> str:
    """Canonical text: the largest suffix that keeps an integer (``1500m`` -> ``1500m``,
    ``1000m`` -> ``1``, ``1048576`` binary -> ``1Mi``); fractions below 1n round up."""
    q = Fraction(amount)
    sign = "-" if q < 0 else ""
    q = abs(q)
    if binary and q.denominator == 1 and q >= 1024:
        n, exp = q.numerator, 0
        while exp < 6 and n % 1024 == 0:
            n, exp = n // 1024, exp + 1
        if exp:
            suffix = {v: k for k, v in _BINARY_SUFFIXES.items()}[exp]
            return f"{sign}{n}{suffix}"
    if q == 0:
        return "0"
    # smallest unit: nano; round up like Kubernetes does
    nanos = -((-q * 10**9) // 1)
    exp = -9
    n = int(nanos)
    while exp < 18 and n % 1000 == 0:
        n, exp = n // 1000, exp + 3
    suffix = {v: k for k, v in _DECIMAL_SUFFIXES.items()}[exp]
    return f"{sign}{n}{suffix}"


def canonical_quantity(value: Any) -> str:
    """Re-spell a quantity the way the API server stores it (``"1000m"`` -> ``"1"``)."""
    amount = parse_quantity(value)
    if amount is None:
        return str(value)
    return format_quantity(amount, binary=quantity_is_binary(value))
