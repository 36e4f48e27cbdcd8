"""The syntax of client-go's JSONPath (see :mod:`skiff.api.jsonpath`): a template read into blocks.

    parse_template("{.a[0]}x")  -> [(FieldNode("a"), SliceNode(0, 1, True, None)), (TextNode("x"),)]

A template is literal text and ``{...}`` actions; each becomes a :data:`Block`, a tuple
of nodes applied left to right (literal text is a block of one :class:`TextNode`).
Syntax errors raise ValueError worded as client-go words them (``unclosed action``,
``invalid array index x``, ...).  The parser mirrors client-go's quirks: ``['a.b']``
is ``.a.b``; ``["a"]`` is accepted like ``['a']``; ``[*]`` is the slice ``[:]``; a
filter ``[?(@.x OP value)]`` splits at the first run of ``!<>=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

__all__ = ["Block", "FieldNode", "FilterNode", "IdentifierNode", "LiteralNode", "Node", "RecursiveNode",
           "SliceNode", "TextNode", "UnionNode", "WildcardNode", "parse_template"]


def parse_template(template: str) -> list[Block]:
    """The blocks of ``template`` (``{...}`` actions and the literal text between them)."""
    return _Parser(template).template()


# --- the parsed form ----------------------------------------------------------------------

@dataclass(frozen=True)
class TextNode:
    text: str


@dataclass(frozen=True)
class FieldNode:
    name: str


@dataclass(frozen=True)
class WildcardNode:
    pass


@dataclass(frozen=True)
class RecursiveNode:
    pass


@dataclass(frozen=True)
class SliceNode:
    start: int | None          # None: from the beginning
    end: int | None            # None: to the end
    end_from_index: bool       # ``[i]``: end is i+1, counted from the end when i < 0
    step: int | None


@dataclass(frozen=True)
class UnionNode:
    branches: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class FilterNode:
    left: tuple[Node, ...]
    operator: str              # "exists" for ``[?(@.x)]``
    right: tuple[Node, ...]


@dataclass(frozen=True)
class LiteralNode:
    value: bool | int | float


@dataclass(frozen=True)
class IdentifierNode:
    name: str


Node = Union[TextNode, FieldNode, WildcardNode, RecursiveNode, SliceNode, UnionNode, FilterNode, LiteralNode,
             IdentifierNode]
Block = tuple[Node, ...]   # a ``{...}`` action, or a single TextNode for literal template text


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

    def template(self) -> list[Block]:
        blocks: list[Block] = []
        while self.pos < len(self.text):
            brace = self.text.find("{", self.pos)
            if brace < 0:
                blocks.append((TextNode(self.text[self.pos:]),))
                break
            if brace > self.pos:
                blocks.append((TextNode(self.text[self.pos:brace]),))
            self.pos = brace + 1
            blocks.append(self.action())
        return blocks

    def action(self) -> Block:
        nodes: list[Node] = []
        while True:
            rest = self.text[self.pos:]
            if rest.startswith("}"):
                self.pos += 1
                return tuple(nodes)
            if rest.startswith("[?("):
                nodes.append(self.filter())
            elif rest.startswith(".."):
                if nodes and isinstance(nodes[-1], RecursiveNode):
                    raise ValueError("invalid multiple recursive descent")
                self.pos += 2
                nodes.append(RecursiveNode())
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

    def field(self) -> Node:
        name = self._scan_name()
        return WildcardNode() if name == "*" else FieldNode(name.replace("\\", ""))

    def identifier(self) -> Node:
        name = self._scan_name()
        if name in ("true", "false"):
            return LiteralNode(name == "true")
        return IdentifierNode(name)

    def number(self) -> Node:
        start = self.pos
        if self.text[self.pos] in "+-":
            self.pos += 1
        while self.pos < len(self.text) and (self.text[self.pos] == "." or self.text[self.pos].isdecimal()):
            self.pos += 1
        text = self.text[start:self.pos]
        if re.fullmatch(r"[+-]?[0-9]+", text):
            return LiteralNode(int(text))
        if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", text):
            return LiteralNode(float(text))
        raise ValueError(f"cannot parse number {text}")

    def quoted(self) -> Node:
        quote, start = self.text[self.pos], self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise ValueError("unterminated quoted string")
            self.pos += 1
            if self.text[self.pos - 1] == quote and self.text[self.pos - 2] != "\\":
                break
        return TextNode(_unquote(self.text[start:self.pos]))

    def brackets(self) -> list[Node]:
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
            return [UnionNode(tuple(_parse_action(f"[{part.strip(' ')}]") for part in parts))]
        if (key := _QUOTED_KEY_RE.match(inner)) is not None:
            return list(_parse_action("." + (key.group(1) if key.group(1) is not None else key.group(2))))
        return [_slice(inner)]

    def filter(self) -> Node:
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
            return FilterNode(_parse_action(condition), "exists", ())
        return FilterNode(_parse_action(comparison.group(1)), comparison.group(2), _parse_action(comparison.group(3)))


def _parse_action(text: str) -> Block:
    return _Parser("{" + text + "}").template()[0]


def _slice(text: str) -> SliceNode:
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
    return SliceNode(start, end, from_index, step)
