"""kube-openapi's SchemaValidator, as kube-apiserver runs it on custom objects (see :mod:`.structural`).

    schema_causes(schema, obj)  -> the schema errors of ``obj``, as field Causes, in Kubernetes' order

One schema node is checked against one value: type and ``nullable``, ``format`` (only
those Kubernetes keeps, see :mod:`.formats`), the combinators ``anyOf``/``oneOf``/
``allOf``/``not``, string lengths and ``pattern``, number bounds and ``multipleOf``,
``enum``, array items and sizes, object properties, sizes and ``required``.  Failures are
collected as the validator words them (identical texts reported once; for ``anyOf`` and
``oneOf`` the errors of the branch that matched most are shown), then turned into the
Causes apiextensions-apiserver reports: paths without a leading dot, ``<nil>`` for
combinator errors, values shown as apimachinery's field errors show them.

Kubernetes' quirks are kept on purpose: integer values are compared with
integer-truncated bounds, ``maxLength`` says "bytes" though it counts characters, a null
never satisfies an ``enum``.  Patterns are Go regular expressions, searched with RE2
(:mod:`.goregexp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...errors import Cause
from ...gofmt import field_value_text, go_float_text, go_json, go_quote
from . import schemanodes as nodes
from .formats import is_kept_format, matches_format
from .goregexp import compile_pattern, pattern_error
from .schemanodes import INT_OR_STRING, Schema

__all__ = ["schema_causes"]


def schema_causes(schema: Schema, obj: Any) -> list[Cause]:
    """The Causes of ``obj``'s schema errors (the root's path is "")."""
    return [_to_cause(f) for f in _check(schema, obj, "").failures]


# --- failures, collected as the validator words them -------------------------------------

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
    if s.get(INT_OR_STRING) is True:
        return ["integer", "string"]
    return [s["type"]] if isinstance(s.get("type"), str) and s["type"] else []


def _kept_format(s: Schema) -> str:
    """The schema's format if Kubernetes keeps it (else "": stripped, as int32/int64 are)."""
    fmt = s.get("format")
    return fmt if isinstance(fmt, str) and is_kept_format(fmt) else ""


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
    return _Failure("type", path, f"{path} in body must be of type {expected}: {go_quote(got)}", got)


# --- the checks of one schema node ---------------------------------------------------------

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
    quoted = go_quote(path)
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
        compiled = compile_pattern(pattern)
        if compiled is None:
            return _fail(_Failure("invalid", path, f"{path} in body should match "
                                  f"'{pattern}, but pattern is invalid: {pattern_error(pattern)}'", data))
        if compiled.search(data) is None:
            return _fail(_Failure("invalid", path, f"{path} in body should match '{pattern}'", data))
    return _Result()


def _check_format(fmt: str, data: str, path: str) -> _Result:
    if not matches_format(fmt, data):
        return _fail(_Failure("type", path, f"{path} in body must be of type {fmt}: {go_quote(data)}",
                              data))
    return _Result()


def _check_number(s: Schema, data: int | float, path: str) -> _Result:
    """multipleOf, minimum, maximum.  Integer values meet bounds truncated to integers."""
    failures: list[_Failure] = []
    whole = isinstance(data, int)
    show: Callable[[float], str] = (lambda b: str(int(b))) if whole else go_float_text
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
    listed = " ".join(go_json(e) for e in allowed)
    return _fail(_Failure("enum", path, f"{path} in body should be one of [{listed}]", data,
                          allowed=tuple(allowed)))


def _check_array(s: Schema, data: list[Any], path: str) -> _Result:
    result = _Result()
    items = nodes.items(s)
    if items is not None:
        for i, value in enumerate(data):
            result.merge(_check(items, value, nodes.index(path, i)))
    _check_count(result, s, "minItems", "maxItems", "items", len(data), path)
    if s.get("uniqueItems") is True and any(
            _deep_equal(data[i], data[j]) for i in range(len(data)) for j in range(i)):
        result.add(_Failure("invalid", path, f"{path} in body shouldn't contain duplicates"))
    result.matches += 1
    return result


def _check_count(result: _Result, s: Schema, low: str, high: str, noun: str, count: int, path: str) -> None:
    """minItems/maxItems or minProperties/maxProperties: the same two checks, other words."""
    least, most = s.get(low), s.get(high)
    if least is not None and count < least:
        result.add(_Failure("invalid", path, f"{path} in body should have at least {least} {noun}", count))
    if most is not None and count > most:
        result.add(_Failure("too_many", path, f"{path} in body should have at most {most} {noun}", count,
                            limit=int(most)))


def _check_object(s: Schema, data: Mapping[str, Any], path: str) -> _Result:
    result = _Result()
    props = nodes.properties(s)
    _check_count(result, s, "minProperties", "maxProperties", "properties", len(data), path)
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
            result.merge(_check(prop, data[name], nodes.child(path, name)))
    for name in s.get("required") or ():
        if name not in data:
            result.add(_Failure("required", f"{path}.{name}", f"{path}.{name} in body is required"))
    return result


# --- failures as Causes ---------------------------------------------------------------------

def _to_cause(failure: _Failure) -> Cause:
    if failure.kind == "composite":
        return nodes.invalid("<nil>", "", failure.message)
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
        allowed = ", ".join(go_quote(e if isinstance(e, str) else go_json(e)) for e in failure.allowed)
        return Cause("FieldValueNotSupported",
                     f"Unsupported value: {field_value_text(failure.value)}: supported values: {allowed}", path)
    reason = "FieldValueTypeInvalid" if failure.kind == "type" else "FieldValueInvalid"
    return nodes.invalid(path, "" if failure.value is None else failure.value, failure.message, reason)

