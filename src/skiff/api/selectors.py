"""Label and field selectors: parse Kubernetes' selector strings and match objects.

Pure functions and immutable values, shared by the API server (``labelSelector``
and ``fieldSelector`` query parameters, watch filtering), controllers (a
Deployment's ``spec.selector``) and clients.

Label selector grammar (the ``labelSelector`` string)::

    selector     := requirement ("," requirement)*      (empty string = everything)
    requirement  := "!" KEY                              DoesNotExist
                  | KEY                                  Exists
                  | KEY ("=" | "==" | "!=") VALUE        Equals / NotEquals
                  | KEY ("in" | "notin") "(" VALUE ("," VALUE)* ")"
                  | KEY (">" | "<") INTEGER              GreaterThan / LessThan

Errors are :class:`SelectorError` whose message follows Kubernetes' wording
(``unable to parse requirement: found '', expected: identifier`` ...); the API
server turns them into 400 BadRequest.

A ``LabelSelector`` object (``matchLabels`` / ``matchExpressions``) converts to the
same :class:`LabelSelector` value with :func:`label_selector_from_object`, and
renders back to the canonical string with ``str()`` (what ``Scale.status.selector``
carries).

Field selectors are ``key=value`` / ``key==value`` / ``key!=value`` terms joined
by commas (``\\,`` ``\\=`` ``\\\\`` escape); which keys are valid depends on the
kind, so matching takes a mapping of field label -> value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

Obj = dict[str, Any]


class SelectorError(ValueError):
    """An unparsable or invalid selector (400 BadRequest at the API edge)."""


# -- label keys and values -----------------------------------------------------------

_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_NAME_FORMAT_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_FORMAT_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def label_key_errors(key: str) -> list[str]:
    """Why ``key`` is not a valid (optionally prefixed) label key; empty when valid."""
    errs: list[str] = []
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        errs.append("prefix part must be non-empty")
    elif prefix:
        if len(prefix) > 253:
            errs.append("prefix part must be no more than 253 characters")
        if not _DNS1123_SUBDOMAIN_RE.match(prefix):
            errs.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    if not name:
        errs.append("name part must be non-empty")
    else:
        if len(name) > 63:
            errs.append("name part must be no more than 63 characters")
        if not _NAME_RE.match(name):
            errs.append(_NAME_FORMAT_MSG)
    return errs


def label_value_errors(value: str) -> list[str]:
    """Why ``value`` is not a valid label value; empty when valid."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _VALUE_RE.match(value):
        errs.append(_VALUE_FORMAT_MSG)
    return errs


# -- label selector values -----------------------------------------------------------

EXISTS, DOES_NOT_EXIST, EQUALS, NOT_EQUALS, IN, NOT_IN, GT, LT = (
    "exists", "!", "=", "!=", "in", "notin", "gt", "lt")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # one of the operator constants above ("==" is stored as "=")
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == EQUALS or op == IN:
            return self.key in labels and labels[self.key] in self.values
        if op == NOT_EQUALS or op == NOT_IN:
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        value = labels.get(self.key)
        if value is None:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if op == GT else have < want

    def __str__(self) -> str:
        op = self.op
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({','.join(self.values)})"
        symbol = {EQUALS: "=", NOT_EQUALS: "!=", GT: ">", LT: "<"}[op]
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements, sorted by key; empty matches everything."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a nil LabelSelector object selects nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    def matches_object(self, obj: Obj) -> bool:
        return self.matches(obj.get("metadata", {}).get("labels"))

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


# -- label selector parser -----------------------------------------------------------

_SPECIAL = "!=<>(),"
_OPERATORS = ("!=", "==", "=", ">", "<", "!", "(", ")", ",")
_IDENT, _END = "ident", "end"


def _tokens(text: str) -> list[tuple[str, str]]:
    """Split into (kind, literal): kind is _IDENT, _END, an operator, or "in"/"notin"."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\n\r":
            i += 1
        if i >= n:
            out.append((_END, ""))
            return out
        ch = text[i]
        if ch in _SPECIAL:
            for op in _OPERATORS:  # longest symbol first
                if text.startswith(op, i):
                    out.append((op, op))
                    i += len(op)
                    break
            else:  # a lone special character that is no operator (cannot happen: all are listed)
                raise SelectorError(f"error expected: keyword found '{ch}'")
            continue
        start = i
        while i < n and text[i] not in _SPECIAL and text[i] not in " \t\n\r":
            i += 1
        word = text[start:i]
        out.append((word if word in ("in", "notin") else _IDENT, word))


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.items = _tokens(text)
        self.pos = 0

    def peek(self, as_value: bool = True) -> tuple[str, str]:
        kind, lit = self.items[self.pos]
        if as_value and kind in ("in", "notin"):
            kind = _IDENT
        return kind, lit

    def take(self, as_value: bool = True) -> tuple[str, str]:
        item = self.peek(as_value)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind == _END:
                return reqs
            if kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            kind, lit = self.take()
            if kind == _END:
                return reqs
            if kind != ",":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            kind2, lit2 = self.peek()
            if kind2 not in (_IDENT, "!"):
                raise SelectorError(f"found '{lit2}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        kind, key = self.take()
        if kind == "!":
            negated = True
            kind, key = self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{key}', expected: identifier")
        errs = label_key_errors(key)
        if errs:
            raise SelectorError(f'<nil>: Invalid value: "{key}": {"; ".join(errs)}')
        if self.peek()[0] in (_END, ","):
            return Requirement(key, DOES_NOT_EXIST if negated else EXISTS)
        kind, lit = self.take(as_value=False)
        ops = {"=": EQUALS, "==": EQUALS, "!=": NOT_EQUALS, "in": IN, "notin": NOT_IN,
               ">": GT, "<": LT}
        if kind not in ops:
            raise SelectorError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        op = ops[kind]
        values = self.value_set() if op in (IN, NOT_IN) else [self.exact_value()]
        return _checked(key, op, sorted(set(values)))

    def exact_value(self) -> str:
        kind, lit = self.peek()
        if kind in (_END, ","):
            return ""
        self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        return lit

    def value_set(self) -> list[str]:
        kind, lit = self.take()
        if kind != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        values: list[str] = []
        kind, lit = self.peek()
        if kind == ")":
            self.take()
            return [""]
        if kind not in (_IDENT, ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        expect_value = True
        while True:
            kind, lit = self.take()
            if kind == _IDENT:
                values.append(lit)
                expect_value = False
                nxt, nlit = self.peek()
                if nxt == ")":
                    self.take()
                    return values
                if nxt != ",":
                    raise SelectorError(f"found '{nlit}', expected: ',' or ')'")
            elif kind == ",":
                if expect_value:
                    values.append("")  # "(,": an empty value
                expect_value = True
                if self.peek()[0] == ")":
                    values.append("")
                    self.take()
                    return values
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")


def _checked(key: str, op: str, values: list[str]) -> Requirement:
    if op in (IN, NOT_IN) and not values:
        raise SelectorError(f"values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty")
    if op in (GT, LT):
        for v in values:
            try:
                int(v)
            except ValueError:
                raise SelectorError(
                    f'values[0]: Invalid value: "{v}": for \'Gt\', \'Lt\' operators, '
                    "the value must be an integer") from None
    else:
        for v in values:
            errs = label_value_errors(v)
            if errs:
                raise SelectorError(f'values[0][{key}]: Invalid value: "{v}": {"; ".join(errs)}')
    return Requirement(key, op, tuple(values))


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a ``labelSelector`` string; raises :class:`SelectorError`."""
    if not text or text.isspace():
        return EVERYTHING
    reqs = _LabelParser(text).parse()
    reqs.sort(key=lambda r: r.key)
    return LabelSelector(tuple(reqs))


def label_selector_from_object(selector: Obj | None) -> LabelSelector:
    """A ``LabelSelector`` object -> :class:`LabelSelector`.

    ``None`` selects nothing; ``{}`` selects everything (as in Kubernetes).
    Raises :class:`SelectorError` for an unknown operator or an invalid key/value.
    """
    if selector is None:
        return NOTHING
    reqs: list[Requirement] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        reqs.append(_checked_key(key, EQUALS, [str(value)]))
    for expr in selector.get("matchExpressions") or []:
        key, operator = expr.get("key", ""), expr.get("operator", "")
        values = [str(v) for v in expr.get("values") or []]
        op = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}.get(operator)
        if op is None:
            raise SelectorError(f'"{operator}" is not a valid label selector operator')
        if op in (EXISTS, DOES_NOT_EXIST) and values:
            raise SelectorError("values: Invalid value: values set must be empty for exists and does not exist")
        reqs.append(_checked_key(key, op, sorted(set(values))))
    reqs.sort(key=lambda r: r.key)
    return LabelSelector(tuple(reqs))


def _checked_key(key: str, op: str, values: list[str]) -> Requirement:
    errs = label_key_errors(key)
    if errs:
        raise SelectorError(f'key: Invalid value: "{key}": {"; ".join(errs)}')
    if op in (EXISTS, DOES_NOT_EXIST):
        return Requirement(key, op)
    return _checked(key, op, values)


# -- field selectors -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldTerm:
    field: str
    value: str
    negated: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) != self.negated


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        for t in self.terms:
            if not t.matches(fields):
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches_object(self, obj: Obj, getters: Mapping[str, Callable[[Obj], str]]) -> bool:
        """Match ``obj`` reading each term's field with ``getters`` (see :func:`field_getters`)."""
        for t in self.terms:
            getter = getters.get(t.field)
            value = getter(obj) if getter is not None else ""
            if (value == t.value) == t.negated:
                return False
        return True

    def fields(self) -> set[str]:
        return {t.field for t in self.terms}

    def exact(self, field: str) -> str | None:
        """The value a ``field=value`` term pins ``field`` to (None when not pinned)."""
        for t in self.terms:
            if t.field == field and not t.negated:
                return t.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, buf, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def _find_unescaped(text: str, op: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(op, i):
            return i
        i += 1
    return -1


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a ``fieldSelector`` string; raises :class:`SelectorError`."""
    if not text:
        return FieldSelector()
    terms: list[FieldTerm] = []
    for part in _split_unescaped(text, ","):
        if not part:
            continue
        for op, negated in (("!=", True), ("==", False), ("=", False)):
            at = _find_unescaped(part, op)
            if at >= 0:
                terms.append(FieldTerm(part[:at].strip(), _unescape(part[at + len(op):]), negated))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(tuple(terms))


def check_field_labels(selector: FieldSelector, supported: Mapping[str, Any] | set[str]) -> None:
    """Raise :class:`SelectorError` ``field label not supported: x`` for an unknown field."""
    for t in selector.terms:
        if t.field not in supported:
            raise SelectorError(f"field label not supported: {t.field}")


def field_getters(namespaced: bool, extra: Mapping[str, Callable[[Obj], str]]
                  ) -> dict[str, Callable[[Obj], str]]:
    """Every field label a kind supports -> how to read it (``metadata.name`` always;
    ``metadata.namespace`` for namespaced kinds; plus the kind's own labels)."""
    getters: dict[str, Callable[[Obj], str]] = {"metadata.name": _meta_name}
    if namespaced:
        getters["metadata.namespace"] = _meta_namespace
    getters.update(extra)
    return getters


def _meta_name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _meta_namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))
