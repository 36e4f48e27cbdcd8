"""Custom objects against a CRD version's ``openAPIV3Schema``: prune, default, validate.

``schema`` is the plain-dict JSONSchemaProps of ``apiextensions.k8s.io/v1`` (the
``schema.openAPIV3Schema`` of one CRD version, already accepted as structural);
``obj`` is a custom object decoded from JSON (integers ``int``, fractions ``float``).
kube-apiserver runs every custom object it decodes through the same steps, in this order::

    request body / stored bytes
          │ decode
          ▼
    prune(schema, obj)            unknown fields removed (their paths feed the
          │                       fieldValidation Warn/Strict answers); nulls of
          │                       non-nullable fields that have no default dropped
          ▼
    apply_defaults(schema, obj)   absent fields (and nulls of non-nullable fields)
          │                       get their ``default``
          ▼
    [caller: apiVersion/kind, root metadata, scale subresource paths]
          ▼
    validate(schema, obj)         schema errors as Causes, worded as Kubernetes words them

Defaults are trusted to be valid and already pruned (Kubernetes prunes and checks them
when the CRD is written), so nothing re-prunes after defaulting.

* :func:`prune` returns the removed fields' paths with a leading dot, sorted:
  ``[".spec.colour", ".spec.items[0].x"]``; the caller words them as
  ``unknown field "spec.colour"``.  The root's ``apiVersion``/``kind``/``metadata`` are
  never touched, nor are those of ``x-kubernetes-embedded-resource`` objects (their
  metadata is kept as sent).  Only ``properties``, ``additionalProperties`` and
  ``items`` decide what is known; ``allOf``/``anyOf``/``oneOf``/``not`` never do.
  ``additionalProperties: true`` keeps the keys but, as in Kubernetes, prunes what is
  inside their values (there is no schema for it).
* :func:`validate` checks the OpenAPI v3 subset CRDs allow (type, nullable, format,
  enum, bounds, lengths, pattern, items, properties, combinators, ...), then embedded
  resources (``apiVersion``/``kind`` present and well-formed, metadata valid), then
  ``x-kubernetes-list-type`` ``set``/``map`` uniqueness -- kube-apiserver's order.
  Field paths have no leading dot (``spec.items[0].name``; map values
  ``spec.labels.foo`` from the schema pass, ``spec.labels[foo]`` from the embedded and
  list passes); errors that belong to no field (anyOf/oneOf/allOf/not) carry the field
  ``<nil>``, as Kubernetes' do.  Kubernetes' quirks are kept on purpose: integer values
  are compared with integer-truncated bounds, ``maxLength`` says "bytes" though it
  counts characters, a null never satisfies an ``enum``, identical error texts are
  reported once.

Formats: those Kubernetes strips (int32, int64, float, double, ...) are ignored.  Of
the ones it keeps, ``email``, ``uri``, ``isbn*`` and ``creditcard`` are accepted
unchecked; ``hostname`` knows Unicode letters but only ASCII symbols.  Patterns run
through Python's ``re`` (search, ``$`` at the very end only, ASCII classes), close to
Go's RE2 for what CRDs use.  Not implemented: ``x-kubernetes-validations`` (CEL rules
are ignored) and update ratcheting.
"""

from __future__ import annotations

import calendar
import copy
import functools
import ipaddress
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Hashable, Mapping

from ...errors import Cause
from ..meta.names import is_dns1035_label, name_is_path_segment
from ..meta.objectmeta import validate_object_meta

Schema = Mapping[str, Any]

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_EMBEDDED = "x-kubernetes-embedded-resource"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_META_FIELDS = ("apiVersion", "kind", "metadata")


# --- schema and path helpers -------------------------------------------------------

def _properties(s: Schema | None) -> Mapping[str, Schema]:
    props = (s or {}).get("properties")
    return props if isinstance(props, Mapping) else {}


def _additional(s: Schema) -> tuple[bool, Schema | None]:
    """Whether ``additionalProperties`` is set at all (a bool counts), and its schema."""
    extra = s.get("additionalProperties")
    if extra is None:
        return False, None
    return True, extra if isinstance(extra, Mapping) else None


def _items(s: Schema | None) -> Schema | None:
    items = (s or {}).get("items")
    return items if isinstance(items, Mapping) else None


def _field_schema(s: Schema | None, name: str) -> Schema | None:
    if s is None:
        return None
    props = _properties(s)
    return props[name] if name in props else _additional(s)[1]


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# --- pruning -------------------------------------------------------------------------

def prune(schema: Schema, obj: dict[str, Any]) -> list[str]:
    """Remove, in place, every field ``schema`` does not specify; return their paths
    (``".spec.colour"``), sorted.  Also drops nulls of non-nullable fields without a
    default, which kube-apiserver does in the same step (those are not reported)."""
    unknown: list[str] = []
    _prune(obj, {**schema, _EMBEDDED: True}, "", unknown)
    _drop_nulls(obj, schema)
    return sorted("." + p for p in unknown)


def _prune(x: Any, s: Schema | None, path: str, unknown: list[str]) -> None:
    if s is not None and s.get(_PRESERVE) is True:
        _prune_preserving(x, s, path, unknown)
    elif isinstance(x, dict):
        if s is None:
            unknown.extend(_child(path, k) for k in x)
            x.clear()
            return
        props, (has_extra, extra) = _properties(s), _additional(s)
        embedded = s.get(_EMBEDDED) is True
        for k in list(x):
            if embedded and k in _META_FIELDS:
                continue
            if k in props:
                _prune(x[k], props[k], _child(path, k), unknown)
            elif has_extra:
                _prune(x[k], extra, _child(path, k), unknown)
            else:
                unknown.append(_child(path, k))
                del x[k]
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _prune(v, _items(s), _index(path, i), unknown)


def _prune_preserving(x: Any, s: Schema | None, path: str, unknown: list[str]) -> None:
    """x-kubernetes-preserve-unknown-fields: unknown keys stay, known ones are pruned
    by their schemas; array items inherit the preservation."""
    if s is None:
        return
    if isinstance(x, dict):
        props, (has_extra, extra) = _properties(s), _additional(s)
        embedded = s.get(_EMBEDDED) is True
        for k, v in x.items():
            if embedded and k in _META_FIELDS:
                continue
            if k in props:
                _prune(v, props[k], _child(path, k), unknown)
            elif has_extra:
                _prune(v, extra, _child(path, k), unknown)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _prune_preserving(v, _items(s), _index(path, i), unknown)


def _non_nullable_null(value: Any, s: Schema | None) -> bool:
    return value is None and s is not None and not s.get("nullable")


def _drop_nulls(x: Any, s: Schema | None) -> None:
    if isinstance(x, dict):
        for k in list(x):
            sub = _field_schema(s, k)
            if _non_nullable_null(x[k], sub) and (sub or {}).get("default") is None:
                del x[k]
            else:
                _drop_nulls(x[k], sub)
    elif isinstance(x, list):
        for v in x:
            _drop_nulls(v, _items(s))


# --- defaulting ----------------------------------------------------------------------

def apply_defaults(schema: Schema, obj: dict[str, Any]) -> None:
    """Set, in place, a deep copy of ``default`` for every absent property (and every
    null of a non-nullable one), recursing into objects, map values and array items
    (defaults of newly set values apply too).  Call after :func:`prune`, before
    :func:`validate`."""
    _default(obj, schema)


def _default(x: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props = _properties(s)
        for k, prop in props.items():
            if prop.get("default") is not None and (k not in x or _non_nullable_null(x[k], prop)):
                x[k] = copy.deepcopy(prop["default"])
        has_extra, extra = _additional(s)
        for k in list(x):
            if k in props:
                _default(x[k], props[k])
            elif has_extra:
                if _non_nullable_null(x[k], extra):
                    x[k] = copy.deepcopy((extra or {}).get("default"))
                _default(x[k], extra)
    elif isinstance(x, list):
        items = _items(s)
        for i in range(len(x)):
            if _non_nullable_null(x[i], items):
                x[i] = copy.deepcopy((items or {}).get("default"))
            _default(x[i], items)


# --- Go-style rendering of values (Kubernetes prints them with fmt and encoding/json) --

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}


def _go_quote(text: str) -> str:
    """Go's %q: printable characters as they are, the rest escaped."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        else:
            n = ord(ch)
            out.append(f"\\x{n:02x}" if n < 0x80 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")
    out.append('"')
    return "".join(out)


def _float_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of |f| and the decimal point's position in them."""
    sign, digits, exponent = Decimal(repr(abs(f))).as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)
    text = text.rstrip("0")
    return (text, point) if text else ("0", 1)


def _float_text(f: float, exponent_form: bool) -> str:
    digits, point = _float_digits(f)
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if exponent_form:
        exp = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_float(f: float) -> str:
    """Go's %v of a float64 (strconv 'g', shortest): 3, 1.5, 1e+06, 1e-05."""
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    exp = _float_digits(f)[1] - 1
    return _float_text(f, exp < -4 or exp >= 6)


def _go_json(value: Any) -> str:
    """encoding/json's rendering (sorted keys, no spaces)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "-0" if math.copysign(1.0, value) < 0 else "0"
        text = _float_text(value, abs(value) < 1e-6 or abs(value) >= 1e21)
        return re.sub(r"e-0(\d)$", r"e-\1", text)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch in "\n\r\t":
                out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
            elif ord(ch) < 0x20 or ch in "<>&\u2028\u2029":
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_go_json(k)}:{_go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    return _go_json(str(value))


def _go_syntax(value: Any) -> str:
    """Go's %#v of a decoded JSON value: map[string]interface {}{"name":"a"}."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, Mapping):
        entries = ", ".join(f"{_go_quote(str(k))}:{_go_syntax(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + entries + "}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}{" + ", ".join(_go_syntax(v) for v in value) + "}"
    return _go_quote(str(value))


def _shown(value: Any) -> str:
    """A bad value as a field error shows it (1.32): %v for numbers and bools, %q for
    strings, "null" for nil, %#v for the rest."""
    if value is None:
        return '"null"'
    if isinstance(value, (bool, int, float)):
        return _go_syntax(value)
    if isinstance(value, str):
        return _go_quote(value)
    return _go_syntax(value)


def _invalid(path: str, value: Any, detail: str, reason: str = "FieldValueInvalid") -> Cause:
    return Cause(reason, f"Invalid value: {_shown(value)}: {detail}", path)


# --- string formats Kubernetes keeps ---------------------------------------------------

_SUPPORTED_FORMATS = frozenset((
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
    "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
    "byte", "password", "date", "duration", "datetime"))

_HEX = "[0-9a-fA-F]"
_OCTET_MAX = 255
_RGB_PART = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*"
_HN_ASCII = r"a-zA-Z0-9$+<=>^`|~"  # letters, digits and the ASCII symbols of \p{S}
_HN_CHAR = rf"(?:[{_HN_ASCII}]|[^\W\d_])"
_HN_CHAR_DASH = rf"(?:[-{_HN_ASCII}]|[^\W\d_])"
_HOSTNAME = re.compile(
    rf"({_HN_CHAR}((-?{_HN_CHAR}{{0,62}})?)|({_HN_CHAR}(({_HN_CHAR_DASH}{{0,61}}{_HN_CHAR})?)(\.)){{1,}}"
    r"([a-zA-Z]|[^\W\d_]){2,63})")
_DURATION_UNITS = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"),
                   ("m", "min"), ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))


def _regex_check(pattern: str, flags: int = re.ASCII) -> Callable[[str], bool]:
    compiled = re.compile(pattern, flags)
    return lambda s: compiled.fullmatch(s) is not None


def _is_date(s: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s, re.ASCII):
        return False
    year, month, day = int(s[:4]), int(s[5:7]), int(s[8:])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 2000, month)[1]


def _is_datetime(s: str) -> bool:
    parts = s.lower().split("t")
    if len(s) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    m = re.fullmatch(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))",
                     parts[1], re.ASCII | re.DOTALL)
    return m is not None and m[1] <= "23" and m[2] <= "59" and m[3] <= "59"


def _is_duration(s: str) -> bool:
    # Go's time.ParseDuration first, then go-openapi's looser "3 days 4 hours" forms.
    if re.fullmatch(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)", s, re.ASCII):
        return True
    for _, unit in re.findall(r"(\d+)\s*([A-Za-zµ]+)", s, re.ASCII):
        unit = unit.lower()
        for variants in _DURATION_UNITS:
            if any(unit == v or (i == len(variants) - 1 and unit.startswith(v))
                   for i, v in enumerate(variants)):
                return True
    return False


def _parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Like Kubernetes' ParseIPSloppy: IPv4 parts may have leading zeros; no zones."""
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)\.(\d+)", s, re.ASCII)
    if m:
        parts = [int(p) for p in m.groups()]
        return ipaddress.IPv4Address(".".join(map(str, parts))) if max(parts) <= _OCTET_MAX else None
    if "%" in s or ":" not in s:
        return None
    try:
        return ipaddress.IPv6Address(s)
    except ValueError:
        return None


def _is_cidr(s: str) -> bool:
    address, slash, prefix = s.partition("/")
    ip = _parse_ip(address)
    return (ip is not None and bool(slash) and prefix.isascii() and prefix.isdigit()
            and int(prefix) <= (32 if ":" not in address else 128))


def _is_mac(s: str) -> bool:
    for groups in (6, 8, 20):
        if re.fullmatch(rf"{_HEX}{{2}}([:-]){_HEX}{{2}}(\1{_HEX}{{2}}){{{groups - 2}}}", s) or \
                re.fullmatch(rf"{_HEX}{{4}}(\.{_HEX}{{4}}){{{groups // 2 - 1}}}", s):
            return True
    return False


def _is_hostname(s: str) -> bool:
    return (_HOSTNAME.fullmatch(s) is not None and len(s.encode()) <= 255
            and all(len(p.encode()) <= 63 for p in s.split(".")))


# 8-4-4-4-12 hex digits, dashes optional; %s: the third group, then the fourth's first digit
_UUID = rf"{_HEX}{{8}}-?{_HEX}{{4}}-?%s-?%s{_HEX}{{3}}-?{_HEX}{{12}}"

_FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "byte": _regex_check(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"),
    "date": _is_date,
    "datetime": _is_datetime,
    "duration": _is_duration,
    "uuid": _regex_check(_UUID % (f"{_HEX}{{4}}", _HEX)),
    "uuid3": _regex_check(_UUID % (f"3{_HEX}{{3}}", _HEX)),
    "uuid4": _regex_check(_UUID % (f"4{_HEX}{{3}}", "[89abAB]")),
    "uuid5": _regex_check(_UUID % (f"5{_HEX}{{3}}", "[89abAB]")),
    "ipv4": lambda s: _parse_ip(s) is not None and "." in s,
    "ipv6": lambda s: _parse_ip(s) is not None and ":" in s,
    "cidr": _is_cidr,
    "mac": _is_mac,
    "hostname": _is_hostname,
    "hexcolor": _regex_check(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})"),
    "rgbcolor": _regex_check(rf"rgb\({_RGB_PART},{_RGB_PART},{_RGB_PART}\)"),
    "ssn": lambda s: len(s) == 11 and re.fullmatch(r"\d{3}[- ]?\d{2}[- ]?\d{4}", s, re.ASCII) is not None,
    "bsonobjectid": _regex_check(rf"{_HEX}{{24}}"),
    "password": lambda s: True,
}


def _kept_format(s: Schema) -> str:
    """The schema's format if Kubernetes keeps it (else "": stripped, as int32/int64 are)."""
    fmt = s.get("format")
    return fmt if isinstance(fmt, str) and fmt.replace("-", "") in _SUPPORTED_FORMATS else ""


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str] | str:
    """A CRD pattern as a Python regex with Go's meaning of ``$`` (end of text only);
    the error text if it does not compile."""
    out, in_class, i = [], False, 0
    multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(r"\Z" if pattern[i + 1] == "z" and not in_class else pattern[i:i + 2])
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append(r"\Z" if ch == "$" and not in_class and not multiline else ch)
        i += 1
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as err:
        return str(err)


# --- schema validation (the kube-openapi pass) ---------------------------------------

@dataclass
class _Failure:
    kind: str      # how it becomes a Cause: type, required, enum, too_long, too_many, invalid, composite
    name: str      # the validator's path: "" at the root, ".k" for a root map key
    message: str   # the validator's text; identical texts are reported once
    value: Any = ""
    limit: int = -1
    allowed: tuple[Any, ...] = ()


@dataclass
class _Result:
    failures: list[_Failure] = field(default_factory=list)
    matches: int = 0  # how many checks applied: picks the anyOf/oneOf branch whose errors show
    _seen: set[str] = field(default_factory=set)

    @property
    def valid(self) -> bool:
        return not self.failures

    def add(self, failure: _Failure) -> None:
        if failure.message not in self._seen:
            self._seen.add(failure.message)
            self.failures.append(failure)

    def merge(self, other: _Result | None) -> None:
        if other is not None:
            for failure in other.failures:
                self.add(failure)
            self.matches += other.matches


def _fail(failure: _Failure) -> _Result:
    result = _Result()
    result.add(failure)
    return result


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return ""


def _types(s: Schema) -> list[str]:
    if s.get(_INT_OR_STRING) is True:
        return ["integer", "string"]
    return [s["type"]] if isinstance(s.get("type"), str) and s["type"] else []


def _is_json_integer(f: float) -> bool:
    if not math.isfinite(f) or abs(f) > 2.0 ** 53 - 1:
        return False
    whole = float(math.trunc(f))
    if f == whole:
        return True
    if f < 0 or whole == 0:
        return False
    return abs(f - whole) / (f + whole) < 1e-9


def _type_failure(path: str, expected: str, got: str) -> _Failure:
    return _Failure("type", path, f"{path} in body must be of type {expected}: {_go_quote(got)}", got)


def _check(s: Schema, data: Any, path: str) -> _Result:
    """One schema node against one value, as kube-openapi's SchemaValidator does."""
    result = _Result()
    types, fmt = _types(s), _kept_format(s)
    if data is None:
        result.merge(_check_type(s, types, fmt, None, path))
        result.merge(_check_enum(s, None, path))
        return result
    kind = _json_kind(data)
    checks: list[Callable[[], _Result]] = []
    if types or fmt:
        checks.append(lambda: _check_type(s, types, fmt, data, path))
    checks.append(lambda: _check_combinators(s, data, path))
    if kind == "string":
        checks.append(lambda: _check_string(s, data, path))
        if fmt:
            checks.append(lambda: _check_format(fmt, data, path))
    if kind in ("integer", "number"):
        checks.append(lambda: _check_number(s, data, path))
    if kind == "array":
        checks.append(lambda: _check_array(s, data, path))
    checks.append(lambda: _check_enum(s, data, path))
    if kind == "object":
        checks.append(lambda: _check_object(s, data, path))
    for check in checks:
        result.merge(check())
        result.matches += 1
    result.matches += 1
    return result


def _check_type(s: Schema, types: list[str], fmt: str, data: Any, path: str) -> _Result:
    if data is None:
        if types and not s.get("nullable"):
            return _fail(_type_failure(path, ",".join(types), "null"))
        return _Result(matches=1)
    got = _json_kind(data)
    got_format = {"integer": "int64", "number": "float64"}.get(got, "")
    float_int = got == "number" and _is_json_integer(data) and "integer" in types
    int_float = got == "integer" and "number" in types
    matches = got in types or float_int or int_float
    if got not in ("string", "array") and fmt and not matches:
        return _fail(_type_failure(path, fmt, got_format))
    if fmt and got in ("string", "array") and not {"integer", "number"} & set(types):
        return _Result(matches=1)
    if not matches:
        return _fail(_type_failure(path, ",".join(types), got))
    return _Result(matches=1)


def _check_combinators(s: Schema, data: Any, path: str) -> _Result:
    result = _Result()
    quoted = _go_quote(path)
    any_of = [sub for sub in s.get("anyOf") or () if isinstance(sub, Mapping)]
    if any_of:
        best: _Result | None = None
        success: _Result | None = None
        for sub in any_of:
            attempt = _check(sub, data, path)
            if attempt.valid:
                best, success = None, attempt
                break
            if best is None or attempt.matches > best.matches:
                best = attempt
        if success is None:
            result.add(_Failure("composite", path, f"{quoted} must validate at least one schema (anyOf)"))
        result.merge(best if best is not None else success)
    one_of = [sub for sub in s.get("oneOf") or () if isinstance(sub, Mapping)]
    if one_of:
        best, success, passed = None, None, 0
        for sub in one_of:
            attempt = _check(sub, data, path)
            if attempt.valid:
                passed += 1
                best, success = None, success or attempt
            elif passed == 0 and (best is None or attempt.matches > best.matches):
                best = attempt
        if passed != 1:
            found = "Found none valid" if passed == 0 else f"Found {passed} valid alternatives"
            result.add(_Failure("composite", path,
                                f"{quoted} must validate one and only one schema (oneOf). {found}"))
            result.merge(best)
        else:
            result.merge(success)
    all_of = [sub for sub in s.get("allOf") or () if isinstance(sub, Mapping)]
    if all_of:
        passed = 0
        for sub in all_of:
            attempt = _check(sub, data, path)
            passed += attempt.valid
            result.merge(attempt)
        if passed != len(all_of):
            none = ". None validated" if passed == 0 else ""
            result.add(_Failure("composite", path, f"{quoted} must validate all the schemas (allOf){none}"))
    if isinstance(s.get("not"), Mapping) and _check(s["not"], data, path).valid:
        result.add(_Failure("composite", path, f"{quoted} must not validate the schema (not)"))
    result.matches += 1
    return result


def _check_string(s: Schema, data: str, path: str) -> _Result:
    max_length, min_length, pattern = s.get("maxLength"), s.get("minLength"), s.get("pattern")
    if max_length is not None and len(data) > max_length:
        return _fail(_Failure("too_long", path, f"{path} in body should be at most {max_length} chars long",
                              data, limit=int(max_length)))
    if min_length is not None and len(data) < min_length:
        return _fail(_Failure("invalid", path, f"{path} in body should be at least {min_length} chars long",
                              data))
    if isinstance(pattern, str) and pattern:
        compiled = _compile(pattern)
        if isinstance(compiled, str):
            return _fail(_Failure("invalid", path, f"{path} in body should match "
                                  f"'{pattern}, but pattern is invalid: {compiled}'", data))
        if compiled.search(data) is None:
            return _fail(_Failure("invalid", path, f"{path} in body should match '{pattern}'", data))
    return _Result()


def _check_format(fmt: str, data: str, path: str) -> _Result:
    check = _FORMAT_CHECKS.get(fmt.replace("-", ""))
    if check is not None and not check(data):
        return _fail(_Failure("type", path, f"{path} in body must be of type {fmt}: {_go_quote(data)}",
                              data))
    return _Result()


def _check_number(s: Schema, data: int | float, path: str) -> _Result:
    """multipleOf, minimum, maximum.  Integer values meet bounds truncated to integers."""
    failures: list[_Failure] = []
    whole = isinstance(data, int)
    show: Callable[[float], str] = (lambda b: str(int(b))) if whole else _go_float
    factor = s.get("multipleOf")
    if factor is not None:
        bound: float = int(factor) if whole else float(factor)
        if bound <= 0:
            failures.append(_Failure("invalid", path, f"factor MultipleOf declared for {path} must be positive: "
                                     f"{show(bound)}", bound))
        elif (data % bound != 0) if whole else not _is_json_integer(
                (1 / bound * data) if bound < 1 else data / bound):
            failures.append(_Failure("invalid", path, f"{path} in body should be a multiple of {show(bound)}",
                                     data))
    for key, exclusive_key, sign in (("minimum", "exclusiveMinimum", -1), ("maximum", "exclusiveMaximum", 1)):
        if s.get(key) is None:
            continue
        bound = int(s[key]) if whole else float(s[key])
        exclusive = s.get(exclusive_key) is True
        beyond = (data - bound) * sign
        if beyond > 0 or (exclusive and beyond == 0):
            words = {(-1, False): "greater than or equal to", (-1, True): "greater than",
                     (1, False): "less than or equal to", (1, True): "less than"}[(sign, exclusive)]
            failures.append(_Failure("invalid", path, f"{path} in body should be {words} {show(bound)}", data))
    result = _Result(matches=1)
    for failure in failures:
        result.add(failure)
    return result


def _deep_equal(a: Any, b: Any) -> bool:
    """Go's reflect.DeepEqual on decoded JSON: 1, 1.0 and true all differ."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _enum_match(data: Any, allowed: Any) -> bool:
    """Equal after converting the value to the enum entry's type, as kube-openapi does."""
    if isinstance(allowed, bool) or isinstance(data, bool):
        return isinstance(allowed, bool) and isinstance(data, bool) and data == allowed
    if isinstance(allowed, int) and isinstance(data, float):
        return math.isfinite(data) and math.trunc(data) == allowed
    if isinstance(allowed, float) and isinstance(data, int):
        return float(data) == allowed
    return _deep_equal(data, allowed)


def _check_enum(s: Schema, data: Any, path: str) -> _Result:
    allowed = s.get("enum")
    if not allowed or (data is not None and any(
            e is not None and _enum_match(data, e) for e in allowed)):
        return _Result()
    listed = " ".join(_go_json(e) for e in allowed)
    return _fail(_Failure("enum", path, f"{path} in body should be one of [{listed}]", data,
                          allowed=tuple(allowed)))


def _check_array(s: Schema, data: list[Any], path: str) -> _Result:
    result = _Result()
    items = _items(s)
    if items is not None:
        for i, value in enumerate(data):
            result.merge(_check(items, value, _index(path, i)))
    min_items, max_items = s.get("minItems"), s.get("maxItems")
    if min_items is not None and len(data) < min_items:
        result.add(_Failure("invalid", path, f"{path} in body should have at least {min_items} items",
                            len(data)))
    if max_items is not None and len(data) > max_items:
        result.add(_Failure("too_many", path, f"{path} in body should have at most {max_items} items",
                            len(data), limit=int(max_items)))
    if s.get("uniqueItems") is True and any(
            _deep_equal(data[i], data[j]) for i in range(len(data)) for j in range(i)):
        result.add(_Failure("invalid", path, f"{path} in body shouldn't contain duplicates"))
    result.matches += 1
    return result


def _check_object(s: Schema, data: Mapping[str, Any], path: str) -> _Result:
    result = _Result()
    props = _properties(s)
    min_props, max_props = s.get("minProperties"), s.get("maxProperties")
    if min_props is not None and len(data) < min_props:
        result.add(_Failure("invalid", path, f"{path} in body should have at least {min_props} properties",
                            len(data)))
    if max_props is not None and len(data) > max_props:
        result.add(_Failure("too_many", path, f"{path} in body should have at most {max_props} properties",
                            len(data), limit=int(max_props)))
    extra = s.get("additionalProperties")
    for k, value in data.items():
        if k in props:
            continue
        if extra is False:
            result.add(_Failure("invalid", path, f"{path}.{k} in body is a forbidden property", k))
        elif isinstance(extra, Mapping):
            result.merge(_check(extra, value, f"{path}.{k}"))
    for name, prop in props.items():
        if name in data:
            result.merge(_check(prop, data[name], _child(path, name)))
    for name in s.get("required") or ():
        if name not in data:
            result.add(_Failure("required", f"{path}.{name}", f"{path}.{name} in body is required"))
    return result


def _to_cause(failure: _Failure) -> Cause:
    if failure.kind == "composite":
        return _invalid("<nil>", "", failure.message)
    name = failure.name
    path = "<nil>" if name in ("", ".") else name.removeprefix(".")
    if failure.kind == "required":
        return Cause("FieldValueRequired", "Required value", path)
    if failure.kind == "too_long":
        return Cause("FieldValueTooLong", f"Too long: may not be more than {failure.limit} bytes", path)
    if failure.kind == "too_many":
        return Cause("FieldValueTooMany",
                     f"Too many: {failure.value}: must have at most {failure.limit} items", path)
    if failure.kind == "enum":
        allowed = ", ".join(_go_quote(e if isinstance(e, str) else _go_json(e)) for e in failure.allowed)
        return Cause("FieldValueNotSupported",
                     f"Unsupported value: {_shown(failure.value)}: supported values: {allowed}", path)
    reason = "FieldValueTypeInvalid" if failure.kind == "type" else "FieldValueInvalid"
    return _invalid(path, "" if failure.value is None else failure.value, failure.message, reason)


# --- embedded resources and list types ----------------------------------------------

def _check_embedded(path: str, x: Any, s: Schema | None, causes: list[Cause]) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        if s.get(_EMBEDDED) is True:
            causes.extend(_check_embedded_resource(path, x))
        props, (has_extra, extra) = _properties(s), _additional(s)
        for k, v in x.items():
            if k in props:
                _check_embedded(_child(path, k), v, props[k], causes)
            elif has_extra:
                _check_embedded(_key(path, k), v, extra, causes)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _check_embedded(_index(path, i), v, _items(s), causes)


_META_SHAPES: dict[str, type] = {"name": str, "generateName": str, "namespace": str, "labels": dict,
                                 "annotations": dict, "finalizers": list, "ownerReferences": list,
                                 "generation": int}


def _check_embedded_resource(path: str, x: Mapping[str, Any]) -> list[Cause]:
    causes = [Cause("FieldValueRequired", "Required value: must not be empty", _child(path, k))
              for k in ("apiVersion", "kind") if k not in x]
    if "apiVersion" in x:
        at, api_version = _child(path, "apiVersion"), x["apiVersion"]
        if not isinstance(api_version, str):
            causes.append(_invalid(at, api_version, "must be a string"))
        elif not api_version:
            causes.append(_invalid(at, api_version, "must not be empty"))
        elif api_version != "/" and api_version.count("/") > 1:
            causes.append(_invalid(at, api_version, f"unexpected GroupVersion string: {api_version}"))
    if "kind" in x:
        at, kind = _child(path, "kind"), x["kind"]
        if not isinstance(kind, str):
            causes.append(_invalid(at, kind, "must be a string"))
        elif not kind:
            causes.append(_invalid(at, kind, "must not be empty"))
        elif problems := is_dns1035_label(kind.lower()):
            causes.append(_invalid(at, kind, "may have mixed case, but should otherwise match: "
                                   + ",".join(problems)))
    if "metadata" in x:
        raw = x["metadata"] if isinstance(x["metadata"], Mapping) else {}
        # Malformed fields are dropped before validation, as kube-apiserver's decoding does.
        meta: dict[str, Any] = {k: v for k, v in raw.items() if k in _META_SHAPES and isinstance(v, _META_SHAPES[k])
                and not (k == "generation" and isinstance(v, bool))}
        for k in ("labels", "annotations"):
            if k in meta:
                meta[k] = {key: val for key, val in meta[k].items() if isinstance(val, str)}
        if "finalizers" in meta:
            meta["finalizers"] = [f for f in meta["finalizers"] if isinstance(f, str)]
        if "ownerReferences" in meta:
            meta["ownerReferences"] = [r for r in meta["ownerReferences"] if isinstance(r, dict)
                                       and isinstance(r.get("apiVersion", ""), str)]
        meta["name"] = meta.get("name") or "fakename"
        causes += validate_object_meta(meta, bool(meta.get("namespace")), _child(path, "metadata"),
                                       name_is_path_segment)
    return causes


_UNSPECIFIED = ("no key",)  # the key of a list-map entry that lacks the key field


def _repeats(values: list[Any]) -> list[int]:
    """Indices of each value's second occurrence (Go compares compound values as JSON)."""
    counts: dict[Hashable, int] = {}
    repeated = []
    for i, value in enumerate(values):
        if value is _UNSPECIFIED:
            identity: Hashable = value
        elif isinstance(value, (dict, list)):
            identity = ("json", _go_json(value))
        else:
            identity = (type(value).__name__, value)
        seen = counts.get(identity, 0)
        if seen == 1:
            repeated.append(i)
        counts[identity] = seen + 1
    return repeated


def _check_lists(path: str, x: Any, s: Schema | None, causes: list[Cause]) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props, extra = _properties(s), _additional(s)[1]
        if extra is not None:
            for k, v in x.items():
                _check_lists(_key(path, k), v, extra, causes)
        for k, v in x.items():
            if k in props:
                _check_lists(_child(path, k), v, props[k], causes)
    elif isinstance(x, list):
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set":
            causes += [Cause("FieldValueDuplicate", f"Duplicate value: {_shown(x[i])}", _index(path, i))
                       for i in _repeats(x)]
        elif list_type == "map":
            causes += _check_list_map(path, x, list(s.get("x-kubernetes-list-map-keys") or ()))
        items = _items(s)
        for i, v in enumerate(x):
            _check_lists(_index(path, i), v, items, causes)


def _check_list_map(path: str, entries: list[Any], key_fields: list[str]) -> list[Cause]:
    for i, entry in enumerate(entries):
        if entry is not None and not isinstance(entry, dict):
            return [_invalid(_index(path, i), entry, "must be an object for an array of list-type map")]
    if len(key_fields) == 1:
        only = key_fields[0]
        keys: list[Any] = [e[only] if e is not None and only in e else _UNSPECIFIED for e in entries]
        return [Cause("FieldValueDuplicate", "Duplicate value: "
                      + _shown({} if keys[i] is _UNSPECIFIED else {only: keys[i]}), _index(path, i))
                for i in _repeats(keys)]
    keys = [{k: e[k] for k in key_fields if k in e} if e is not None else {} for e in entries]
    return [Cause("FieldValueDuplicate", f"Duplicate value: {_shown(keys[i])}", _index(path, i))
            for i in _repeats(keys)]


def validate(schema: Schema, obj: dict[str, Any]) -> list[Cause]:
    """Check ``obj`` against ``schema``; the Causes kube-apiserver reports, in its order:
    schema errors, then embedded resources, then list-type uniqueness.  The root's
    apiVersion/kind/metadata are the caller's (only schema-declared constraints on them
    are checked here, as Kubernetes does)."""
    causes = [_to_cause(f) for f in _check(schema, obj, "").failures]
    _check_embedded("", obj, schema, causes)
    _check_lists("", obj, schema, causes)
    return causes
