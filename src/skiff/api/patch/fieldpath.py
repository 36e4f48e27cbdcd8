"""Field paths and field sets: the vocabulary of ``metadata.managedFields``.

A *path* names one place in an object, as a tuple of elements; each element is
``(kind, text)``:

=========  ======================================  ============================
kind       names                                   FieldsV1 / conflict text
=========  ======================================  ============================
``f``      an object member                        ``f:replicas`` / ``.replicas``
``k``      an item of a keyed list (list-map)      ``k:{"name":"web"}`` / ``[name="web"]``
``v``      an item of a set (a primitive list)     ``v:"example.com/x"`` / ``[="example.com/x"]``
``i``      an item by position (atomic lists)      ``i:0`` / ``[0]``
=========  ======================================  ============================

A *field set* is a ``frozenset`` of paths: the fields one manager owns.  It is
stored in the object as the ``fieldsV1`` tree of a managedFields entry::

    {"f:spec": {"f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}

An empty ``{}`` marks an owned leaf; ``".": {}`` marks that a node with owned
children is itself owned too (a list item, a map that was added).  Element
order follows structured-merge-diff: fields, then keys, then values, then
indexes, ``.`` first.

:class:`FieldsCodec` is the same encoding with a bounded memory of recent
trees: most writes leave most managers' entries as they were, so an entry read
from the stored object is usually one the codec has just written.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import orjson

Element = tuple[str, str]
Path = tuple[Element, ...]
FieldSet = frozenset[Path]

_KIND_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}
_BY_LETTER = frozenset("fkv")  # kinds whose letters sort as _KIND_ORDER has them


_PLAIN = (str, int, bool, type(None))


def canonical(value: Any) -> str:
    """Compact JSON with sorted keys: the text of ``k:`` and ``v:`` elements."""
    if type(value) in _PLAIN or (type(value) is dict and all(type(v) in _PLAIN for v in value.values())):
        # The common keys (a name, a port and protocol): orjson writes them exactly as
        # json does here, in a fraction of the time.  Floats it spells differently.
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # an integer beyond 64 bits, a lone surrogate, a key that is not a string
            pass
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def path_of(*names: str) -> Path:
    """``path_of("metadata", "name")`` -> the path of ``.metadata.name``."""
    return tuple(("f", n) for n in names)


def element_sort_key(element: Element) -> tuple[int, str]:
    return (_KIND_ORDER.get(element[0], 9), element[1])


def path_sort_key(path: Path) -> tuple[tuple[int, str], ...]:
    return tuple(element_sort_key(e) for e in path)


def path_string(path: Path) -> str:
    """``.spec.template.spec.containers[name="web"].image``, as conflicts print it."""
    out = []
    for kind, text in path:
        if kind == "f":
            out.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            out.append("[" + ",".join(f"{k}={_value_text(keys[k])}" for k in sorted(keys)) + "]")
        elif kind == "v":
            out.append(f"[={_value_text(json.loads(text))}]")
        else:
            out.append(f"[{text}]")
    return "".join(out)


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return canonical(value)


def prefixes(paths: frozenset[Path] | set[Path]) -> set[Path]:
    """Every path and every ancestor of every path: ``p in prefixes(s)`` asks "is anything at or below p"."""
    out: set[Path] = set()
    for p in paths:
        for i in range(1, len(p) + 1):
            out.add(p[:i])
    return out


# -- FieldsV1 -----------------------------------------------------------------


_MEMBER: Any = object()  # marks a tree node whose path is itself in the set


def to_fields_v1(paths: frozenset[Path] | set[Path]) -> dict[str, Any]:
    """Encode a field set as a FieldsV1 tree."""
    tree: dict[Any, Any] = {}
    by_index = False  # any ``i:`` element (the one kind whose order is not its letter's)
    for path in paths:
        node = tree
        for element in path:
            child = node.get(element)
            if child is None:
                child = node[element] = {}
                by_index = by_index or element[0] not in _BY_LETTER
            node = child
        if path:  # the root is no field
            node[_MEMBER] = True
    return _render(tree, element_sort_key if by_index else None)


def _render(tree: dict[Any, Any], order: Any) -> dict[str, Any]:
    """``order``: the sort key of elements; None when the elements' own order is it
    (no ``i:`` element, so kinds sort f < k < v by their letters, as ``element_sort_key`` has them)."""
    out: dict[str, Any] = {}
    if tree.pop(_MEMBER, False) and tree:
        out["."] = {}  # a member that has members below it
    elements = sorted(tree, key=order) if len(tree) > 1 else tree
    for element in elements:
        child = tree[element]
        if len(child) == 1 and _MEMBER in child:  # an owned leaf, the most common node
            out[element[0] + ":" + element[1]] = {}
        else:
            out[element[0] + ":" + element[1]] = _render(child, order)
    return out


def from_fields_v1(tree: Any, at: Path = ()) -> set[Path]:
    """Decode a FieldsV1 tree; raises ValueError when it is malformed."""
    if not isinstance(tree, dict):
        raise ValueError(f"expected an object at {path_string(at) or '.'}")
    out: set[Path] = set()
    for key, sub in tree.items():
        if key == ".":
            if at:
                out.add(at)
            continue
        kind, sep, text = key.partition(":")
        if not sep or kind not in _KIND_ORDER:
            raise ValueError(f"bad path element {key!r}")
        if kind in ("k", "v"):
            text = canonical(json.loads(text))
        element = (kind, text)
        child = at + (element,)
        if not isinstance(sub, dict):
            raise ValueError(f"expected an object at {path_string(child)}")
        if sub:
            out |= from_fields_v1(sub, child)
        else:
            out.add(child)
    return out


def read_fields_v1(tree: Any, at: Path = ()) -> tuple[set[Path], bool]:
    """:func:`from_fields_v1`, also telling whether ``tree`` is exactly what
    :func:`to_fields_v1` makes of the result (its *canonical* encoding: members
    in order, ``.`` first and only where needed, ``k:``/``v:`` texts canonical)."""
    if not isinstance(tree, dict):
        raise ValueError(f"expected an object at {path_string(at) or '.'}")
    out: set[Path] = set()
    exact = True
    previous: tuple[int, str] | None = None
    for key, sub in tree.items():
        if key == ".":
            if at:
                out.add(at)
            # encoded first, as {}, only for a member below the root that has children
            exact = exact and previous is None and sub == {} and bool(at) and len(tree) > 1
            continue
        kind, sep, text = key.partition(":")
        if not sep or kind not in _KIND_ORDER:
            raise ValueError(f"bad path element {key!r}")
        if kind in ("k", "v"):
            spelled, text = text, canonical(json.loads(text))
            exact = exact and spelled == text
        element = (kind, text)
        order = element_sort_key(element)
        exact = exact and (previous is None or previous < order)
        previous = order
        child = at + (element,)
        if not isinstance(sub, dict):
            raise ValueError(f"expected an object at {path_string(child)}")
        if sub:
            below, below_exact = read_fields_v1(sub, child)
            out |= below
            exact = exact and below_exact
        else:
            out.add(child)
    return out, exact


class FieldsCodec:
    """:func:`to_fields_v1` / :func:`from_fields_v1` remembering the last ``size`` trees each way.

    Trees are remembered as their JSON text: :meth:`decode` looks a tree up by
    its text, and :meth:`encode` hands out a fresh tree (never one another
    caller holds) parsed from the remembered text.  A decoded tree that is the
    canonical encoding of its field set is remembered as that set's encoding
    too, so an entry that a write leaves as it was is never re-encoded.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        #: tree text -> (its field set, whether the text is that set's canonical encoding)
        self._sets: OrderedDict[bytes, tuple[FieldSet, bool]] = OrderedDict()
        self._texts: OrderedDict[FieldSet, bytes] = OrderedDict()  # field set -> its tree text

    def decode(self, tree: Any) -> FieldSet:
        """:func:`from_fields_v1` as a frozenset; raises ValueError when the tree is malformed."""
        try:
            text = orjson.dumps(tree)
        except TypeError:  # not plain JSON: certainly not a tree this codec wrote
            return frozenset(from_fields_v1(tree))
        known = self._sets.get(text)
        if known is None:
            paths, exact = read_fields_v1(tree)
            known = (frozenset(paths), exact)
            self._remember(self._sets, text, known)
        else:
            self._sets.move_to_end(text)
        fields, exact = known
        if exact and fields not in self._texts:
            self._remember(self._texts, fields, text)
        return fields

    def encode(self, fields: FieldSet) -> dict[str, Any]:
        text = self._texts.get(fields)
        if text is not None:
            self._texts.move_to_end(fields)
            tree: dict[str, Any] = orjson.loads(text)
            return tree
        tree = to_fields_v1(fields)
        text = orjson.dumps(tree)
        self._remember(self._texts, fields, text)
        if () not in fields:  # the one path a tree cannot hold: otherwise decoding gives ``fields`` back
            self._remember(self._sets, text, (fields, True))  # the stored object will bring it back
        return tree

    def _remember(self, memo: "OrderedDict[Any, Any]", key: Any, value: Any) -> None:
        memo[key] = value
        if len(memo) > self.size:
            memo.popitem(last=False)
