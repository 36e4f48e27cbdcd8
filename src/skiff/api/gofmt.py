"""Go's textual forms of decoded JSON values, as Kubernetes prints them in messages.

Kubernetes writes values with ``fmt`` and ``encoding/json``; clients (and tests) compare
those texts, so skiff reproduces them exactly.  Values are what :func:`json.loads` gives
(None, bool, int, float, str, list, dict); an ``int`` is Go's int64, a ``float`` float64::

    go_quote('a"b\\t')          "a\\"b\\t"                        fmt %q (strconv.Quote)
    go_float_text(1e6)         1e+06                            fmt %v of a float64
    go_json({"b": [1e-7]})     {"b":[1e-7]}                     encoding/json, compact
    go_text({"a": [1, None]})  map[a:[1 <nil>]]                 fmt %v (fmt.Print)
    go_syntax({"a": 1.5})      map[string]interface {}{"a":1.5} fmt %#v
    field_value_text("x")      "x"                              a bad value in a field error

* Floats use the shortest digits that round-trip.  ``%v`` switches to an exponent when it
  is below -4 or at least 6 (``0.0001``, ``1e-05``, ``123456``, ``1e+06``) and always
  writes two exponent digits; ``encoding/json`` switches below 1e-6 or from 1e21 on and
  drops the padding of negative exponents (``1e-7``, ``1e+21``).  NaN and infinities are
  ``NaN``/``+Inf``/``-Inf`` for ``fmt``; :func:`go_json` raises ValueError for them, as
  ``json.Marshal`` fails.
* :func:`go_json` sorts map keys and escapes like Go >= 1.22: ``\\b \\f \\n \\r \\t`` short,
  other control characters and ``< > & U+2028 U+2029`` as ``\\u00XX``.
* Maps are printed with sorted keys everywhere (as ``fmt`` and ``encoding/json`` do).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Mapping

__all__ = ["field_value_text", "go_float_text", "go_json", "go_quote", "go_syntax", "go_text"]


# --- strings --------------------------------------------------------------------------------

_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's ``%q``: printable characters as they are, ``"`` and ``\\`` and the rest escaped."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_string(text: str) -> str:
    return '"' + "".join(_JSON_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text) + '"'


# --- floats ---------------------------------------------------------------------------------

def _float_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of a finite, non-zero ``value`` and the decimal point's
    position in them (``0.ddd x 10^point``)."""
    _, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    return text, len(digits) + exponent


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _scientific(digits: str, point: int, exponent_width: int) -> str:
    exponent = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):0{exponent_width}d}"


def _sign(value: float) -> str:
    return "-" if math.copysign(1.0, value) < 0 else ""


def go_float_text(value: float) -> str:
    """A float64 as Go's ``%v`` (strconv ``'g'``, shortest) shows it: ``1.5``, ``100``,
    ``1e+06``, ``1e-05``, ``-0``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return _sign(value) + "0"
    digits, point = _float_digits(value)
    if point - 1 < -4 or point - 1 >= 6:
        return _sign(value) + _scientific(digits, point, exponent_width=2)
    return _sign(value) + _fixed(digits, point)


def _json_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {go_float_text(value)}")
    if value == 0:
        return _sign(value) + "0"
    digits, point = _float_digits(value)
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        return _sign(value) + _scientific(digits, point, exponent_width=1 if point - 1 < 0 else 2)
    return _sign(value) + _fixed(digits, point)


# --- whole values ---------------------------------------------------------------------------

def go_json(value: Any) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it (sorted keys, HTML-safe escapes)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return _json_string(str(value))


def go_text(value: Any) -> str:
    """A value as Go's ``%v`` (``fmt.Print``) shows it: ``map[a:1 b:[x <nil>]]``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float_text(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    return str(value)


def go_syntax(value: Any) -> str:
    """Go's ``%#v`` of a decoded JSON value: ``map[string]interface {}{"name":"a"}``."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_text(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        entries = ", ".join(f"{go_quote(str(k))}:{go_syntax(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + entries + "}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}{" + ", ".join(go_syntax(v) for v in value) + "}"
    return go_quote(str(value))


def field_value_text(value: Any) -> str:
    """A bad value as apimachinery's ``field.Error`` shows it (1.32): ``%v`` for numbers
    and bools, ``%q`` for strings, ``"null"`` for nil, ``%#v`` for the rest."""
    if value is None:
        return '"null"'
    return go_syntax(value)


def go_type(value: Any) -> str:
    """The Go type a decoded JSON value has (``reflect.TypeOf(v)`` as text)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"
