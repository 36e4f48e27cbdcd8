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

The parser is :mod:`skiff.api.jsonpath_syntax`; values are printed in Go's forms by
:mod:`skiff.api.gofmt`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# go_float_text and go_json are re-exported: callers have imported them from here.
from .gofmt import go_float_text as go_float_text
from .gofmt import go_json as go_json
from .gofmt import go_type
from .gofmt import go_text
from .jsonpath_syntax import (Block, FieldNode, FilterNode, LiteralNode, Node, RecursiveNode, SliceNode, TextNode,
                              UnionNode, WildcardNode, parse_template)
from .kinds.meta.cells import human_duration, parse_time, utc_now

__all__ = ["JsonPath", "JsonPathError", "column_value", "compile_path"]


class JsonPathError(ValueError):
    """A path that parsed but cannot be evaluated against this object (e.g. index out of range)."""


# --- evaluation ----------------------------------------------------------------------------

def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return list(value.encode())
    return []


def _eval_slice(values: list[Any], node: SliceNode) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            raise JsonPathError(f"{go_type(value)} is not array or slice")
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


def _eval_filter(values: list[Any], node: FilterNode) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not isinstance(value, list):
            raise JsonPathError(f"{go_text(value)} is not array or slice and cannot be filtered")
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


def _eval_node(values: list[Any], node: Node) -> list[Any]:
    if isinstance(node, TextNode):
        return [node.text]
    if isinstance(node, FieldNode):
        return [v[node.name] for v in values if isinstance(v, dict) and node.name in v]
    if isinstance(node, WildcardNode):
        return [child for v in values if v is not None for child in _children(v)]
    if isinstance(node, RecursiveNode):
        return _recursive(values)
    if isinstance(node, SliceNode):
        return _eval_slice(values, node)
    if isinstance(node, UnionNode):
        return [match for branch in node.branches for match in _eval_nodes(values, branch)]
    if isinstance(node, FilterNode):
        return _eval_filter(values, node)
    if isinstance(node, LiteralNode):
        return [node.value for _ in values]
    if node.name in ("range", "end"):
        raise JsonPathError(f"{node.name} is not supported")
    raise JsonPathError(f"unrecognized identifier {node.name}")


def _eval_nodes(values: list[Any], nodes: Block) -> list[Any]:
    for node in nodes:
        values = _eval_node(values, node)
    return values


@dataclass(frozen=True)
class JsonPath:
    """A compiled path (or template); immutable and safe to share."""

    expression: str
    blocks: tuple[Block, ...]

    def find_results(self, obj: Any) -> list[list[Any]]:
        """The matches of each template block (one block for a plain path)."""
        return [_eval_nodes([obj], block) for block in self.blocks]

    def find(self, obj: Any) -> list[Any]:
        """All matches, in order.  Raises :class:`JsonPathError` where client-go fails."""
        return [match for block in self.find_results(obj) for match in block]


def compile_path(expr: str) -> JsonPath:
    """Parse ``expr`` (``.a.b`` or a ``{...}`` template); ValueError says what is wrong."""
    template = expr if "{" in expr else "{" + expr + "}"
    return JsonPath(expr, tuple(parse_template(template)))


def print_text(value: Any) -> str:
    """What ``kubectl -o jsonpath`` prints for one match."""
    if isinstance(value, (dict, list)):
        return go_json(value)
    if value is None:
        return "<no value>"
    return go_text(value)


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
