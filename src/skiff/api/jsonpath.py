"""JSONPath the way Kubernetes evaluates it (client-go ``util/jsonpath``), for printer columns.

    compile_path(".spec.replicas")            -> JsonPath   (ValueError on bad syntax)
    compile_path("{.metadata.name}{'\\t'}")    the template ("braces") form, as ``kubectl -o jsonpath``
    JsonPath.find(obj)                        -> every match, in order
    column_value(".spec.replicas", obj, column_type="integer")
                                              -> the Table cell kube-apiserver serves for a CRD's
                                                 ``additionalPrinterColumns`` entry

An expression without ``{`` is one action (kube-apiserver wraps a column's ``jsonPath``
as ``{<jsonPath>}``); with braces it is a template of literal text and ``{...}`` actions.
Inside an action::

    .name  ..name  .*           child, recursive descent, all children
    [0]  [-1]  [1:3]  [::2]  [*]  [0,2]   index, slice, all items, union
    ['key']  ["key"]            child by quoted name
    [?(@.type=="Ready")]        filter: == != < > <= >= against a string, number, true/false
    [?(@.status)]               filter: the path matches something
    "text"  'text'              a literal

client-go's semantics are kept, including the surprising ones:

* ``['a.b']`` means ``.a.b`` (the quotes do not protect dots); escape them instead:
  ``.metadata.labels.app\\.kubernetes\\.io/name``.  ``["a"]`` is accepted here as a
  synonym of ``['a']`` (client-go rejects double quotes in brackets).
* A missing key matches nothing (never an error).  An index out of range, indexing or
  filtering something that is not a list, or comparing values of different types
  (``1`` with ``1.0``, a string with a number) is an error: :meth:`JsonPath.find`
  raises :class:`JsonPathError`, and :func:`column_value` gives an empty cell (None).
* Maps are visited in their insertion order (Go's order is random).

A column's cell is the *first* match, shown according to the column's ``type``: a
``string`` column gets the text ``kubectl -o jsonpath`` would print (maps and lists as
compact JSON, ``null`` as ``<no value>``), ``integer``/``number``/``boolean`` keep the JSON
value when it has that type (an integer column truncates a float), ``date`` turns an
RFC 3339 string into an age (``5m``).  No match, or a value of the wrong type, is None,
which kubectl prints as ``<none>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Union

from .kinds.meta.cells import human_duration, parse_time, utc_now

__all__ = ["JsonPath", "JsonPathError", "column_value", "compile_path"]


class JsonPathError(ValueError):
    """A path that parsed but cannot be evaluated against this object (e.g. index out of range)."""


# --- the parsed form ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Recursive:
    pass


@dataclass(frozen=True)
class _Slice:
    start: int | None          # None: from the beginning
    end: int | None            # None: to the end
    end_from_index: bool       # ``[i]``: end is i+1, counted from the end when i < 0
    step: int | None


@dataclass(frozen=True)
class _Union:
    branches: tuple[tuple[_Node, ...], ...]


@dataclass(frozen=True)
class _Filter:
    left: tuple[_Node, ...]
    operator: str              # "exists" for ``[?(@.x)]``
    right: tuple[_Node, ...]


@dataclass(frozen=True)
class _Literal:
    value: bool | int | float


@dataclass(frozen=True)
class _Identifier:
    name: str


_Node = Union[_Text, _Field, _Wildcard, _Recursive, _Slice, _Union, _Filter, _Literal, _Identifier]
_Block = tuple[_Node, ...]   # a ``{...}`` action, or a single _Text for literal template text


# --- parsing ----------------------------------------------------------------------------

_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")
_SLICE_RE = re.compile(r"^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$")
_FILTER_RE = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$")
_QUOTED_KEY_RE = re.compile(r"""^'([^']*)'$|^"([^"]*)"$""")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _describe_char(char: str) -> str:
    """A character as Go's ``%#U`` shows it: ``U+002A '*'``."""
    code = f"U+{ord(char):04X}"
    return f"{code} '{char}'" if char.isprintable() else code


def _is_alphanumeric(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdecimal()


def _unquote(quoted: str) -> str:
    quote, body = quoted[0], quoted[1:-1]
    if "\\" not in body and quote not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == quote:
            raise ValueError(f"unquote string {quoted} error invalid syntax")
        if char != "\\":
            out.append(char)
            i += 1
            continue
        escape = body[i + 1] if i + 1 < len(body) else ""
        width = {"x": 2, "u": 4, "U": 8}.get(escape, 0)
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
            i += 2
        elif escape in "'\"" and escape:
            if escape != quote:
                raise ValueError(f"unquote string {quoted} error invalid syntax")
            out.append(escape)
            i += 2
        elif width and re.fullmatch(f"[0-9a-fA-F]{{{width}}}", body[i + 2:i + 2 + width]):
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
        elif re.fullmatch("[0-7]{3}", body[i + 1:i + 4]) and int(body[i + 1:i + 4], 8) < 256:
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise ValueError(f"unquote string {quoted} error invalid syntax")
    return "".join(out)


class _Parser:
    """Reads a template into blocks: literal text, and the node lists of ``{...}`` actions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def template(self) -> list[_Block]:
        blocks: list[_Block] = []
        while self.pos < len(self.text):
            brace = self.text.find("{", self.pos)
            if brace < 0:
                blocks.append((_Text(self.text[self.pos:]),))
                break
            if brace > self.pos:
                blocks.append((_Text(self.text[self.pos:brace]),))
            self.pos = brace + 1
            blocks.append(self.action())
        return blocks

    def action(self) -> _Block:
        nodes: list[_Node] = []
        while True:
            rest = self.text[self.pos:]
            if rest.startswith("}"):
                self.pos += 1
                return tuple(nodes)
            if rest.startswith("[?("):
                nodes.append(self.filter())
            elif rest.startswith(".."):
                if nodes and isinstance(nodes[-1], _Recursive):
                    raise ValueError("invalid multiple recursive descent")
                self.pos += 2
                nodes.append(_Recursive())
                if self.pos < len(self.text) and _is_alphanumeric(self.text[self.pos]):
                    nodes.append(self.field())
            elif not rest or rest[0] in "\r\n":
                raise ValueError("unclosed action")
            elif rest[0] in " @$":
                self.pos += 1
            elif rest[0] == "[":
                nodes.extend(self.brackets())
            elif rest[0] in "\"'":
                nodes.append(self.quoted())
            elif rest[0] == ".":
                self.pos += 1
                nodes.append(self.field())
            elif rest[0] in "+-" or rest[0].isdecimal():
                nodes.append(self.number())
            elif _is_alphanumeric(rest[0]):
                nodes.append(self.identifier())
            else:
                raise ValueError(f"unrecognized character in action: {_describe_char(rest[0])}")

    def _scan_name(self) -> str:
        start = self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
            elif char in _TERMINATORS:
                break
            else:
                self.pos += 1
        self.pos = min(self.pos, len(self.text))
        return self.text[start:self.pos]

    def field(self) -> _Node:
        name = self._scan_name()
        return _Wildcard() if name == "*" else _Field(name.replace("\\", ""))

    def identifier(self) -> _Node:
        name = self._scan_name()
        if name in ("true", "false"):
            return _Literal(name == "true")
        return _Identifier(name)

    def number(self) -> _Node:
        start = self.pos
        if self.text[self.pos] in "+-":
            self.pos += 1
        while self.pos < len(self.text) and (self.text[self.pos] == "." or self.text[self.pos].isdecimal()):
            self.pos += 1
        text = self.text[start:self.pos]
        if re.fullmatch(r"[+-]?[0-9]+", text):
            return _Literal(int(text))
        if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", text):
            return _Literal(float(text))
        raise ValueError(f"cannot parse number {text}")

    def quoted(self) -> _Node:
        quote, start = self.text[self.pos], self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise ValueError("unterminated quoted string")
            self.pos += 1
            if self.text[self.pos - 1] == quote and self.text[self.pos - 2] != "\\":
                break
        return _Text(_unquote(self.text[start:self.pos]))

    def brackets(self) -> list[_Node]:
        end = self.pos
        while True:
            end += 1
            if end >= len(self.text) or self.text[end] == "\n":
                raise ValueError("unterminated array")
            if self.text[end] == "]":
                break
        inner = self.text[self.pos + 1:end]
        self.pos = end + 1
        inner = ":" if inner == "*" else inner
        parts = inner.split(",")
        if len(parts) > 1:
            return [_Union(tuple(_parse_action(f"[{part.strip(' ')}]") for part in parts))]
        if (key := _QUOTED_KEY_RE.match(inner)) is not None:
            return list(_parse_action("." + (key.group(1) if key.group(1) is not None else key.group(2))))
        return [_slice(inner)]

    def filter(self) -> _Node:
        self.pos += 3
        start = self.pos
        opened = closed = False
        pair = ""
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise ValueError("unterminated filter")
            char = self.text[self.pos]
            self.pos += 1
            if char in "\"'":
                if not opened:
                    opened, pair = True, char
                elif char == pair and self.text[self.pos - 2] != "\\":
                    closed = True
            elif char == ")" and opened == closed:
                break
        if self.pos >= len(self.text) or self.text[self.pos] != "]":
            raise ValueError("unclosed array expect ]")
        self.pos += 1
        condition = self.text[start:self.pos - 2]
        comparison = _FILTER_RE.match(condition)
        if comparison is None:
            return _Filter(_parse_action(condition), "exists", ())
        return _Filter(_parse_action(comparison.group(1)), comparison.group(2), _parse_action(comparison.group(3)))


def _parse_action(text: str) -> _Block:
    return _Parser("{" + text + "}").template()[0]


def _slice(text: str) -> _Slice:
    match = _SLICE_RE.match(text)
    if match is None:
        raise ValueError(f"invalid array index {text}")

    def number(raw: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"array index {raw} is not a number") from None

    start_text, end_text, step_text = match.group(1), match.group(2), match.group(3)
    start = number(start_text) if start_text else None
    if end_text:
        end, from_index = (number(end_text[1:]) if end_text[1:] else None), False
    else:
        end, from_index = (start or 0) + 1, True
    step = number(step_text[1:]) if step_text and step_text[1:] else None
    return _Slice(start, end, from_index, step)


# --- evaluation ----------------------------------------------------------------------------

def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    return {int: "int64", float: "float64", str: "string"}.get(type(value), type(value).__name__)


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return list(value.encode())
    return []


def _eval_slice(values: list[Any], node: _Slice) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            raise JsonPathError(f"{_go_type(value)} is not array or slice")
        length = len(value)
        start = node.start if node.start is not None else 0
        start += length if start < 0 else 0
        end = node.end if node.end is not None else length
        if end < 0 or (end == 0 and node.end_from_index):
            end += length
        if start == end:
            return out
        if not 0 <= start < length:
            raise JsonPathError(f"array index out of bounds: index {start}, length {length}")
        if not 0 <= end <= length:
            raise JsonPathError(f"array index out of bounds: index {end - 1}, length {length}")
        if start > end:
            raise JsonPathError(f"starting index {start} is greater than ending index {end}")
        if node.step is not None and node.step <= 0:
            raise JsonPathError("step must be > 0")
        out.extend(value[start:end:node.step or 1])
    return out


def _recursive(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        children = _children(value) if value is not None else []
        if children:
            out.append(value)
            out.extend(_recursive(children))
    return out


def _comparable_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, str)):
        return type(value).__name__
    raise JsonPathError("invalid type for comparison")


def _equal(left: Any, right: Any) -> bool:
    if _comparable_kind(left) != _comparable_kind(right):
        raise JsonPathError("incompatible types for comparison")
    return bool(left == right)


def _less(left: Any, right: Any) -> bool:
    kind = _comparable_kind(left)
    if kind != _comparable_kind(right):
        raise JsonPathError("incompatible types for comparison")
    if kind == "bool":
        raise JsonPathError("invalid type for comparison")
    return bool(left < right)


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    if operator == "<":
        return _less(left, right)
    if operator == ">=":
        return not _less(left, right)
    if operator == "<=":
        return _less(left, right) or _equal(left, right)
    if operator == ">":
        return not (_less(left, right) or _equal(left, right))
    raise JsonPathError(f"unrecognized filter operator {operator}")


def _single(values: list[Any]) -> Any:
    if len(values) > 1:
        raise JsonPathError("can only compare one element at a time")
    return values[0]


def _eval_filter(values: list[Any], node: _Filter) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not isinstance(value, list):
            raise JsonPathError(f"{_go_text(value)} is not array or slice and cannot be filtered")
        for item in value:
            if node.operator == "exists":
                try:
                    matched = bool(_eval_nodes([item], node.left))
                except JsonPathError:  # client-go keeps the partial result, which is never empty here
                    matched = True
                if matched:
                    out.append(item)
                continue
            lefts = _eval_nodes([item], node.left)
            if not lefts:
                continue
            left = _single(lefts)
            rights = _eval_nodes([item], node.right)
            if not rights:
                continue
            if _compare(node.operator, left, _single(rights)):
                out.append(item)
    return out


def _eval_node(values: list[Any], node: _Node) -> list[Any]:
    if isinstance(node, _Text):
        return [node.text]
    if isinstance(node, _Field):
        return [v[node.name] for v in values if isinstance(v, dict) and node.name in v]
    if isinstance(node, _Wildcard):
        return [child for v in values if v is not None for child in _children(v)]
    if isinstance(node, _Recursive):
        return _recursive(values)
    if isinstance(node, _Slice):
        return _eval_slice(values, node)
    if isinstance(node, _Union):
        return [match for branch in node.branches for match in _eval_nodes(values, branch)]
    if isinstance(node, _Filter):
        return _eval_filter(values, node)
    if isinstance(node, _Literal):
        return [node.value for _ in values]
    if node.name in ("range", "end"):
        raise JsonPathError(f"{node.name} is not supported")
    raise JsonPathError(f"unrecognized identifier {node.name}")


def _eval_nodes(values: list[Any], nodes: _Block) -> list[Any]:
    for node in nodes:
        values = _eval_node(values, node)
    return values


@dataclass(frozen=True)
class JsonPath:
    """A compiled path (or template); immutable and safe to share."""

    expression: str
    blocks: tuple[_Block, ...]

    def find_results(self, obj: Any) -> list[list[Any]]:
        """The matches of each template block (one block for a plain path)."""
        return [_eval_nodes([obj], block) for block in self.blocks]

    def find(self, obj: Any) -> list[Any]:
        """All matches, in order.  Raises :class:`JsonPathError` where client-go fails."""
        return [match for block in self.find_results(obj) for match in block]


def compile_path(expr: str) -> JsonPath:
    """Parse ``expr`` (``.a.b`` or a ``{...}`` template); ValueError says what is wrong."""
    template = expr if "{" in expr else "{" + expr + "}"
    return JsonPath(expr, tuple(_Parser(template).template()))


# --- printing values as Go does -------------------------------------------------------------

def _float_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``value`` and the decimal point position (0.ddd x 10^dp)."""
    _, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    exponent += len(digits) - len(text)
    return text, len(text) + exponent


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _scientific(digits: str, point: int, short_exponent: bool) -> str:
    exponent = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    width = 1 if short_exponent else 2
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):0{width}d}"


def go_float_text(value: float) -> str:
    """A float as Go's ``fmt.Print`` shows it: ``1.5``, ``100``, ``1e+06``, ``1e-05``."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if str(value).startswith("-") else ""
    if value == 0:
        return sign + "0"
    digits, point = _float_digits(value)
    if point - 1 < -4 or point - 1 >= 6:
        return sign + _scientific(digits, point, short_exponent=False)
    return sign + _fixed(digits, point)


def _go_json_float(value: float) -> str:
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign = "-" if value < 0 else ""
    digits, point = _float_digits(value)
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        return sign + _scientific(digits, point, short_exponent=point - 1 < 0)
    return sign + _fixed(digits, point)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_json_string(text: str) -> str:
    return '"' + "".join(_JSON_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text) + '"'


def go_json(value: Any) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it (sorted keys, HTML-safe escapes)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_json_float(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_json_string(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return json.dumps(str(value))


def _go_text(value: Any) -> str:
    """A value as Go's ``fmt.Print`` shows it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float_text(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_text(v) for v in value) + "]"
    return str(value)


def print_text(value: Any) -> str:
    """What ``kubectl -o jsonpath`` prints for one match."""
    if isinstance(value, (dict, list)):
        return go_json(value)
    if value is None:
        return "<no value>"
    return _go_text(value)


# --- table cells ----------------------------------------------------------------------------

_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _date_cell(value: str, now: datetime | None) -> str:
    if value in ("", "null"):
        return "<unknown>"
    when = parse_time(value) if _RFC3339_RE.match(value) else None
    if when is None:
        return "<invalid>"
    return human_duration(((now or utc_now()) - when).total_seconds())


def _typed_cell(column_type: str, value: Any, now: datetime | None) -> Any:
    if value is None or isinstance(value, bool) != (column_type == "boolean"):
        return None
    if column_type == "integer" and isinstance(value, (int, float)):
        return int(value)
    if column_type == "number" and isinstance(value, (int, float)):
        return float(value)
    if column_type == "boolean":
        return value
    if column_type == "date" and isinstance(value, str):
        return _date_cell(value, now)
    return None


def column_value(expr_or_compiled: str | JsonPath, obj: Any, column_type: str = "string",
                 now: datetime | None = None) -> Any:
    """The cell of a custom resource's printer column: the first match of the column's
    ``jsonPath`` in ``obj``, shown as its ``type`` asks; None for no (usable) value.
    ``now`` is the instant ``date`` columns measure ages from (default: the wall clock).
    A string that does not parse raises ValueError."""
    path = compile_path(expr_or_compiled) if isinstance(expr_or_compiled, str) else expr_or_compiled
    try:
        results = path.find_results(obj)
    except JsonPathError:
        return None
    if not results or not results[0]:
        return None
    value = results[0][0]
    if column_type == "string":
        return print_text(value)
    return _typed_cell(column_type, value, now)
