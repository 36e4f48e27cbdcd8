"""An object seen through its schema: the four operations server-side apply is built from.

This is the Python counterpart of structured-merge-diff's ``typed`` package
(the library behind kube-apiserver's field manager), reduced to what
:mod:`.apply` needs:

* :meth:`Typed.field_set` — the fields an applied configuration sets
  (what its manager will own);
* :meth:`Typed.compare` — which fields an edit added, modified or removed;
* :meth:`Typed.merge` — an applied configuration laid over the live object;
* :meth:`Typed.prune` — the live object without fields an applier gave up.

How a value is walked depends on the schema (:mod:`.shape`):

==============  ==================================================================
struct          granular: each declared member is its own field (``f:name``);
                undeclared members are an error in an applied configuration
map             ``map<string, X>`` (labels): each entry is a field
keyed list      ``x-kubernetes-list-type: map`` or ``patchStrategy: merge`` with a
                merge key: each item is a field ``k:{"name":"web"}`` and is walked
set             a primitive list with ``listType: set`` or merge strategy: ``v:"x"``
leaf            scalars, atomic lists, ``+structType=atomic`` structs,
                ``+mapType=atomic`` maps, ``null`` and empty objects
unknown         no schema: objects are granular, lists are atomic
==============  ==================================================================
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..schema import FieldDef
from .fieldpath import Element, Path, canonical, path_string, prefixes
from .shape import ATOMIC_MAP_FIELDS, UNKNOWN, Node, Shapes, patch_strategy

ABSENT: Any = object()  # "no value here", as opposed to JSON null
_EMPTIED = object()  # a container that pruning left empty

# Key fields Kubernetes defaults when an applied list item omits them.
KEY_DEFAULTS = {"protocol": "TCP"}

_DICT_KINDS = ("struct", "map", "unknown")
#: JSON scalars: always a leaf, and equal exactly when ``==`` says so if of one type
#: (``True == 1`` is why the types must match; a NaN is unequal to itself either way).
_SCALARS = frozenset({str, int, float, bool, type(None)})


class TypedError(Exception):
    """An applied configuration does not fit the schema (structured-merge-diff's wording)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        text = problems[0] if len(problems) == 1 else "errors:\n  " + "\n  ".join(problems)
        super().__init__(text)


@dataclass(frozen=True, eq=False)
class Slot:
    """A place in an object: the schema node of its value and the field it is (if any).

    :class:`Typed` makes one slot per place in the schema and reuses it, so slots
    compare by identity and key its memos of schema lookups.
    """

    node: Node
    fd: FieldDef | None = None
    owner: str = ""  # the struct type declaring ``fd``


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)


def list_kind(fd: FieldDef) -> str:
    """How a list field is tracked: ``keyed``, ``set`` or ``leaf`` (atomic)."""
    if fd.list_type == "map":
        return "keyed" if list_keys(fd) else "leaf"
    if fd.list_type == "set":
        return "set"
    if fd.list_type is None and patch_strategy(fd) == "merge":
        return "keyed" if fd.patch_merge_key else "set"
    return "leaf"


def list_keys(fd: FieldDef) -> tuple[str, ...]:
    if fd.list_map_keys:
        return fd.list_map_keys
    return (fd.patch_merge_key,) if fd.patch_merge_key else ()


UNKNOWN_SLOT = Slot(UNKNOWN)
_SET_ITEM_SLOT = Slot(Node("string"))


class Typed:
    """The walks over one schema.  Keep an instance to keep its memos: the schema
    lookups a walk makes are the same on every write of a kind, and each is made once."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes
        self._roots: dict[str | None, Slot] = {}
        self._categories: dict[Slot, str] = {}
        self._members: dict[tuple[Slot, str], Slot] = {}  # declared members of struct slots
        self._values: dict[Slot, Slot] = {}  # the one child slot of a map or unknown object
        self._item_slots: dict[Slot, Slot] = {}

    def root(self, type_name: str | None) -> Slot:
        slot = self._roots.get(type_name)
        if slot is None:
            slot = self._roots[type_name] = Slot(self.shapes.root(type_name))
        return slot

    # -- classification ---------------------------------------------------------

    def _category(self, slot: Slot) -> str:
        fd = slot.fd
        if fd is not None and fd.repeated:
            return list_kind(fd)
        if fd is not None and fd.map_value is not None:
            return "leaf" if (slot.owner, fd.name) in ATOMIC_MAP_FIELDS else "map"
        node = slot.node
        if node.type is None:
            return "unknown"
        if self.shapes.is_scalar(node):
            return "leaf"
        if self.shapes.struct(node) is not None:
            return "leaf" if self.shapes.is_atomic_struct(node) else "struct"
        return "unknown"

    def kind(self, slot: Slot, value: Any) -> str:
        """``struct``, ``map``, ``unknown`` (objects), ``keyed``, ``set`` (lists) or ``leaf``."""
        if value is None or value is ABSENT:
            return "leaf"
        category = self._categories.get(slot)
        if category is None:
            category = self._categories[slot] = self._category(slot)
        if category in _DICT_KINDS and isinstance(value, dict):
            return category
        if category in ("keyed", "set") and isinstance(value, list):
            return category
        return "leaf"

    def child(self, slot: Slot, key: str) -> Slot | None:
        """The slot of member ``key`` of an object at ``slot``; None if the struct lacks it."""
        found = self._members.get((slot, key)) or self._values.get(slot)
        if found is not None:
            return found
        fd = slot.fd
        node = Node(fd.type, map_of=True) if fd is not None and fd.map_value is not None else slot.node
        if node.map_of:
            found = self._values[slot] = Slot(Node(node.type))
            return found
        struct = self.shapes.struct(node)
        if struct is None:
            self._values[slot] = UNKNOWN_SLOT
            return UNKNOWN_SLOT
        member = self.shapes.field(struct.name, key)
        if member is None:
            return None  # not remembered: undeclared keys come from clients, without bound
        found = self._members[(slot, key)] = Slot(Node(member.type), member, struct.name)
        return found

    def _item_slot(self, slot: Slot) -> Slot:
        found = self._item_slots.get(slot)
        if found is None:
            found = self._item_slots[slot] = Slot(slot.node)
        return found

    def _items(self, slot: Slot, items: list[Any], path: Path, kind: str,
               problems: list[str] | None) -> list[tuple[Element, Any]]:
        """Each list item with its path element; with ``problems`` None, never fails."""
        out: list[tuple[Element, Any]] = []
        seen: set[Element] = set()
        for i, item in enumerate(items):
            element = self._element(slot, item, i, path, kind, problems)
            if element is None:
                continue
            if element in seen:
                if problems is not None:
                    problems.append(f"{path_string(path)}: duplicate entries for key "
                                    f"{path_string((element,))}")
                    continue
                element = ("i", str(i))
            seen.add(element)
            out.append((element, item))
        return out

    def _element(self, slot: Slot, item: Any, index: int, path: Path, kind: str,
                 problems: list[str] | None) -> Element | None:
        if kind == "set":
            return ("v", canonical(item))
        assert slot.fd is not None
        if not isinstance(item, dict):
            if problems is not None:
                problems.append(f"{path_string(path)}: element {index}: associative list with keys "
                                "may only have map elements")
                return None
            return ("i", str(index))
        key: dict[str, Any] = {}
        for name in list_keys(slot.fd):
            if name in item and item[name] is not None:
                key[name] = item[name]
            elif name in KEY_DEFAULTS:
                key[name] = KEY_DEFAULTS[name]
            elif problems is not None:
                problems.append(f"{path_string(path)}: element {index}: associative list with keys has "
                                f'an element that omits key field "{name}" (and doesn\'t have default value)')
                return None
            else:
                return ("i", str(index))
        return ("k", canonical(key))

    # -- field sets -------------------------------------------------------------

    def field_set(self, value: Any, slot: Slot) -> set[Path]:
        """The fields ``value`` sets; raises :class:`TypedError` if it does not fit the schema."""
        out: set[Path] = set()
        problems: list[str] = []
        self._collect(value, slot, (), out, problems)
        if problems:
            raise TypedError(problems)
        return out

    def _collect(self, value: Any, slot: Slot, path: Path, out: set[Path], problems: list[str]) -> None:
        kind = self.kind(slot, value)
        if kind == "leaf":
            if path:
                out.add(path)
        elif kind in _DICT_KINDS:
            if not value and path:
                out.add(path)
            for key, member in value.items():
                child = self.child(slot, key)
                member_path = path + (("f", key),)
                if child is None:
                    problems.append(f"{path_string(member_path)}: field not declared in schema")
                    continue
                if kind != "struct" or member is None or member == {}:
                    out.add(member_path)
                self._collect(member, child, member_path, out, problems)
        else:
            for element, item in self._items(slot, value, path, kind, problems):
                out.add(path + (element,))
                if kind == "keyed":
                    self._collect(item, self._item_slot(slot), path + (element,), out, problems)

    # -- comparison -------------------------------------------------------------

    def compare(self, old: Any, new: Any, slot: Slot) -> Comparison:
        """What changed from ``old`` to ``new`` (either may be :data:`ABSENT`)."""
        result = Comparison()
        self._compare(old, new, slot, (), result, old is not ABSENT)
        return result

    def _compare(self, old: Any, new: Any, slot: Slot, path: Path, result: Comparison,
                 old_implied: bool) -> None:
        """``old_implied``: Kubernetes' typed old object has this node even when JSON omits it."""
        if old is ABSENT:
            if new is not ABSENT:
                self._added(new, slot, path, result, old_implied)
            return
        if new is not ABSENT and _identical(old, new):
            return  # nothing below changed: most of an object, on most writes
        old_kind, new_kind = self.kind(slot, old), self.kind(slot, new)
        kind = new_kind if old is ABSENT else old_kind if new is ABSENT else (
            old_kind if old_kind == new_kind else "leaf")
        if kind != "leaf" and _empty(old) and _empty(new):
            kind = "leaf"
        if kind == "leaf":
            if old is ABSENT and new is not ABSENT:
                result.added.add(path)
            elif new is ABSENT and old is not ABSENT:
                result.removed.add(path)
            elif old is not ABSENT and not _same(old, new):
                result.modified.add(path)
            return
        if kind in _DICT_KINDS:
            old_map = old if isinstance(old, dict) else {}
            new_map = new if isinstance(new, dict) else {}
            for key in list(old_map) + [k for k in new_map if k not in old_map]:
                old_value, new_value = old_map.get(key, ABSENT), new_map.get(key, ABSENT)
                if old_value is new_value:
                    continue  # the same value: nothing below changed
                if type(old_value) is type(new_value) and type(old_value) in _SCALARS:
                    # two scalars of one JSON type: what the call below would decide, inline
                    if old_value != new_value:
                        result.modified.add(path + (("f", key),))
                    continue
                child = self.child(slot, key) or UNKNOWN_SLOT
                implied = (old is not ABSENT or old_implied) and _implied(child)
                self._compare(old_value, new_value, child, path + (("f", key),), result, implied)
        else:
            old_items = dict(self._items(slot, old if isinstance(old, list) else [], path, kind, None))
            new_items = dict(self._items(slot, new if isinstance(new, list) else [], path, kind, None))
            item_slot = self._item_slot(slot) if kind == "keyed" else _SET_ITEM_SLOT
            for element in list(old_items) + [e for e in new_items if e not in old_items]:
                self._compare(old_items.get(element, ABSENT), new_items.get(element, ABSENT), item_slot,
                              path + (element,), result, False)
        if path and old is ABSENT and not old_implied:
            result.added.add(path)
        elif path and new is ABSENT:
            result.removed.add(path)

    def _added(self, new: Any, slot: Slot, path: Path, result: Comparison, old_implied: bool) -> None:
        """:meth:`_compare` of a value against nothing (every new object, every new subtree)."""
        kind = self.kind(slot, new)
        if kind == "leaf" or _empty(new):
            result.added.add(path)
            return
        if kind in _DICT_KINDS:
            added = result.added
            for key, value in new.items():
                if type(value) in _SCALARS:  # a leaf, whatever its slot: what the call below would do
                    added.add(path + (("f", key),))
                    continue
                child = self.child(slot, key) or UNKNOWN_SLOT
                self._added(value, child, path + (("f", key),), result, old_implied and _implied(child))
        else:
            item_slot = self._item_slot(slot) if kind == "keyed" else _SET_ITEM_SLOT
            for element, item in self._items(slot, new, path, kind, None):
                self._added(item, item_slot, path + (element,), result, False)
        if path and not old_implied:
            result.added.add(path)

    # -- merge ------------------------------------------------------------------

    def merge(self, live: Any, config: Any, slot: Slot) -> Any:
        """``config`` laid over ``live``: config wins, live-only fields and items stay."""
        if config is ABSENT:
            return copy.deepcopy(live)
        kind = self.kind(slot, config)
        if live is ABSENT or self.kind(slot, live) != kind or kind == "leaf":
            return copy.deepcopy(config)
        if kind in _DICT_KINDS:
            out = copy.deepcopy(live)
            for key, value in config.items():
                child = self.child(slot, key) or UNKNOWN_SLOT
                merged = self.merge(live.get(key, ABSENT), value, child)
                if merged is None and kind == "struct":
                    out.pop(key, None)
                else:
                    out[key] = merged
            return out
        item_slot = self._item_slot(slot)
        return _merge_items(self._items(slot, live, (), kind, None), self._items(slot, config, (), kind, None),
                            lambda old, new: self.merge(old, new, item_slot) if kind == "keyed" else new)

    # -- pruning ----------------------------------------------------------------

    def prune(self, value: Any, slot: Slot, remove: set[Path], keep: set[Path]) -> Any:
        """``value`` without the fields in ``remove``, except where a field in ``keep`` lies at or below."""
        pruned = self._prune(value, slot, (), remove, prefixes(remove), prefixes(keep), ())
        return {} if pruned is _EMPTIED else pruned

    def _prune(self, value: Any, slot: Slot, path: Path, remove: set[Path], removing: set[Path],
               keeping: set[Path], protected: tuple[str, ...]) -> Any:
        kind = self.kind(slot, value)
        if kind == "leaf":
            return value
        if kind in _DICT_KINDS:
            out = {}
            for key, member in value.items():
                member_path = path + (("f", key),)
                if member_path in remove and member_path not in keeping and key not in protected:
                    continue
                if member_path in removing:
                    member = self._prune(member, self.child(slot, key) or UNKNOWN_SLOT, member_path,
                                         remove, removing, keeping, ())
                    if member is _EMPTIED:
                        continue
                out[key] = member
            return _EMPTIED if value and not out and path not in keeping else out
        keys = list_keys(slot.fd) if slot.fd is not None and kind == "keyed" else ()
        kept = []
        for element, item in self._items(slot, value, path, kind, None):
            item_path = path + (element,)
            if item_path in remove and item_path not in keeping:
                continue
            if item_path in removing and kind == "keyed":
                item = self._prune(item, self._item_slot(slot), item_path, remove, removing, keeping, keys)
            kept.append(item)
        return _EMPTIED if value and not kept and path not in keeping else kept


def _implied(slot: Slot) -> bool:
    """Does Kubernetes' typed (Go) object always carry this member of a present struct?"""
    fd = slot.fd
    if fd is None:
        return False
    value_struct = not (fd.repeated or fd.pointer or fd.map_value is not None)
    return not fd.omitempty or value_struct


def _empty(value: Any) -> bool:
    return value is ABSENT or value is None or (isinstance(value, (dict, list)) and not value)


def _identical(a: Any, b: Any) -> bool:
    """:func:`_same`, answered in C for the common case of two large equal subtrees.

    Python's ``==`` already walks containers in C but takes ``true`` for ``1``; when
    it says equal, the two values' JSON texts settle it.
    """
    if a is b:
        return True
    if not isinstance(a, (dict, list)):
        return _same(a, b)
    if a != b:
        return False
    try:
        # Equal texts are equal JSON; unequal ones may only differ in key order, which
        # the sorted texts settle (sorting costs, and equal values mostly share an order).
        return (orjson.dumps(a) == orjson.dumps(b)
                or orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # not plain JSON (orjson.JSONEncodeError is a TypeError)
        return _same(a, b)


def _same(a: Any, b: Any) -> bool:
    """JSON equality (``true`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return bool(a == b)


def _merge_items(live: list[tuple[Element, Any]], config: list[tuple[Element, Any]], merge: Any) -> list[Any]:
    """Merge two keyed lists the way structured-merge-diff orders them.

    Config items come in config order; live-only items keep their place; an item
    both have is emitted where config puts it, unless the live list reaches it first.
    """
    live_by = dict(live)
    config_by = dict(config)
    shared = [e for e, _ in config if e in live_by]
    next_shared = shared.pop(0) if shared else None
    out: list[Any] = []
    done: set[Element] = set()
    li = ci = 0
    while li < len(live) or ci < len(config):
        if li < len(live) and ci < len(config):
            element = live[li][0]
            if element == config[ci][0]:
                out.append(merge(live_by[element], config_by[element]))
                done.add(element)
                li, ci = li + 1, ci + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if element in config_by and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(live):
            element = live[li][0]
            if element not in config_by:
                out.append(copy.deepcopy(live[li][1]))
                li += 1
                continue
            if element in done:
                li += 1
                continue
        if ci < len(config):
            element = config[ci][0]
            done.add(element)
            out.append(merge(live_by.get(element, ABSENT), config_by[element]))
            ci += 1
            if next_shared is not None and next_shared == element:
                next_shared = shared.pop(0) if shared else None
    return out
