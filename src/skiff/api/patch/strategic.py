"""Strategic merge patch (``application/strategic-merge-patch+json``).

A strategic merge patch is a JSON merge patch whose lists are smarter: the
schema says, per field, whether a list is *merged* item by item or *replaced*.

::

    original                      patch                                result
    containers:                   containers:                          containers:
    - name: web                   - name: web                          - name: web
      image: nginx:1.24             image: nginx:1.25                    image: nginx:1.25
      env: [{name: A, value: 1}]                                         env: [{name: A, value: 1}]
    - name: sidecar                                                    - name: sidecar

Rules (Kubernetes v1.32 ``k8s.io/apimachinery/pkg/util/strategicpatch``):

* Maps merge recursively; ``null`` deletes a key; scalars replace.
* A list whose field has ``patchStrategy: merge``:
  - items that are objects are matched by ``patchMergeKey`` (containers by
    ``name``, ports by ``containerPort``, tolerations have no strategy and are
    replaced); unmatched patch items are added;
  - primitive items are unioned (``finalizers``).
  Any other list is replaced by the patch's list.
* A field with ``patchStrategy: replace`` is replaced whole.
* Directives inside the patch:
  - ``{"$patch": "replace", ...}`` in a map: the map becomes the patch map;
    ``{"$patch": "delete"}``: the map becomes empty.
  - a list item ``{"$patch": "delete", "name": "x"}`` deletes the item with that
    merge key; a list item ``{"$patch": "replace"}`` makes the list exactly the
    patch's other items.
  - ``"$retainKeys": [...]`` keeps only those keys of the original map (used for
    unions such as ``strategy`` / ``volumes[*]``).
  - ``"$deleteFromPrimitiveList/<field>": [...]`` removes values from a primitive list.
  - ``"$setElementOrder/<field>": [...]`` fixes the order of the resulting list
    (kubectl apply sends it); the order is: ``$setElementOrder`` first, then the
    patch's own order, server-only items keep their place relative to the live list.
* Where the schema knows nothing (unknown type or field) there is no merge
  strategy, which is exactly JSON merge patch behaviour for that subtree.

Never mutates its inputs.  Errors are :class:`~skiff.api.errors.StatusError`
with kube-apiserver's codes and messages (see :mod:`.failures`).

As in Kubernetes, directives are only interpreted where the original has the
field: a brand-new subtree is stored with its nulls and directives removed (so
``{"$patch": "replace", ...}`` for a map the original lacks adds nothing), and the
order of server-only items follows Kubernetes' own algorithm (see :mod:`.order`),
matched against apimachinery's test cases.

Deliberate differences: no multi-field merge keys (no built-in type has one);
deletions from primitive lists are applied after the other keys of the same
map (Kubernetes' order is random); a ``$setElementOrder`` whose list is empty
on both sides is accepted instead of failing with "no elements in any of the
given slices".
"""

from __future__ import annotations

import copy
from typing import Any

from ..schema import Schema
from .failures import bad_arg_type, bad_request, go_format, no_merge_key, rejected, server_error
from .failures import json_kind as go_json_kind
from .order import AliasedView, check_order, normalize, partition, scalar_key, value_kind
from .shape import Node, Shapes, patch_strategy

DIRECTIVE = "$patch"  # also in .order
RETAIN_KEYS = "$retainKeys"
DELETE_PREFIX = "$deleteFromPrimitiveList"
ORDER_PREFIX = "$setElementOrder"

ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_SET_ORDER = "invalid patch format of setElementOrder list"
ERR_LIST_OF_LISTS = "lists of lists are not supported"

_DROP = object()  # "leave this key out": a new value that was only a directive


def strategic_merge_patch(original: dict[str, Any], patch: Any, schema: Schema,
                          type_name: str, *, in_place: bool = False) -> dict[str, Any]:
    """Apply a strategic merge patch to ``original`` (an object of ``type_name``).

    ``in_place=True``: ``original`` is the caller's own copy, to be patched (and
    returned) instead of a deep copy of it.
    """
    if patch is None:
        patch = {}
    if not isinstance(patch, dict):
        raise bad_request(f"json: cannot unmarshal {go_json_kind(patch)} into Go value of type "
                          f"map[string]interface {{}}")
    merger = _Merger(Shapes(schema))
    return merger.merge_map(original if in_place else copy.deepcopy(original), copy.deepcopy(patch),
                            merger.shapes.root(type_name))


class _Merger:
    """One patch application; works on private copies it may mutate."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes

    # -- maps ---------------------------------------------------------------

    def merge_map(self, orig: dict[str, Any], patch: dict[str, Any], node: Node) -> dict[str, Any]:
        if DIRECTIVE in patch:
            directive = patch.pop(DIRECTIVE)
            if directive == "replace":
                cleaned = _clean(patch)
                return cleaned if isinstance(cleaned, dict) else {}
            if directive == "delete":
                return {}
            patch[DIRECTIVE] = directive
            raise server_error(f"unknown patch type: {_text(directive)} in map: {go_format(patch)}")

        _apply_retain_keys(orig, patch)
        self._apply_element_orders(orig, patch, node)

        deletions: list[tuple[str, Any]] = []
        for key, value in patch.items():
            if key.startswith(DELETE_PREFIX):
                deletions.append((_field_of(key, DELETE_PREFIX, ERR_PRIMITIVE_LIST), value))
            else:
                self._merge_key(orig, key, value, node, from_delete_list=False)
        for key, value in deletions:
            self._merge_key(orig, key, value, node, from_delete_list=True)
        return orig

    def _merge_key(self, orig: dict[str, Any], key: str, value: Any, node: Node,
                   from_delete_list: bool) -> None:
        if value is None:
            orig.pop(key, None)
            return
        if key not in orig or value_kind(orig[key]) != value_kind(value):
            if not from_delete_list:
                _set_new(orig, key, value)
            return
        current = orig[key]
        fd, child = self.shapes.child(node, key)
        strategy = patch_strategy(fd)
        if isinstance(current, dict):
            if strategy == "replace":
                _set_new(orig, key, value)
            else:
                orig[key] = self.merge_map(current, value, child)
        elif isinstance(current, list):
            if strategy == "merge" or from_delete_list:
                merge_key = fd.patch_merge_key or "" if fd is not None else ""
                orig[key] = self.merge_list(current, value, child, merge_key, from_delete_list)
            else:
                _set_new(orig, key, value)
        else:
            orig[key] = value

    # -- lists --------------------------------------------------------------

    def merge_list(self, orig: list[Any], patch: list[Any], item_node: Node, merge_key: str,
                   from_delete_list: bool) -> list[Any]:
        return self._merge_list(orig, patch, item_node, merge_key, from_delete_list)[0]

    def _merge_list(self, orig: list[Any], patch: list[Any], item_node: Node, merge_key: str,
                    from_delete_list: bool) -> tuple[list[Any], list[Any]]:
        """The merged list, and the live list as kube-apiserver sees it afterwards.

        The second value only matters to ``$setElementOrder``: Kubernetes orders
        server-only items by the live list *after* deleting and appending items in
        place (Go slice aliasing), and we reproduce that so results match item for item.
        """
        if not orig and not patch:
            return orig, orig
        kind = _element_kind(orig, patch)
        if kind != "map":
            if from_delete_list:
                return [v for v in orig if not _contains(patch, v)], orig
            merged = _dedup(orig + patch)
            in_patch, server_only = partition(merged, patch, "")
            return normalize(in_patch, server_only, patch, orig, ""), orig
        if not merge_key:
            raise server_error(f"cannot merge lists without merge key for {item_node.type or 'struct'}")
        view = AliasedView(orig)
        remaining, patch_items = _list_directives(orig, patch, merge_key, view)
        merged = self._merge_items(remaining, patch_items or [], merge_key, item_node, view)
        in_patch, server_only = partition(merged, patch_items or [], merge_key)
        return normalize(in_patch, server_only, patch_items or [], remaining, merge_key), view.items

    def _merge_items(self, orig: list[Any], patch: list[Any], merge_key: str,
                     item_node: Node, view: AliasedView) -> list[Any]:
        result = list(orig)
        for item in patch:
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
            index = _find_by_key(result, merge_key, item[merge_key])
            if index >= 0:
                result[index] = self.merge_map(result[index], item, item_node)
            else:
                cleaned = _clean(item)
                if cleaned is not _DROP:
                    result.append(cleaned)
                    view.append(cleaned)
        return result

    # -- $setElementOrder ---------------------------------------------------

    def _apply_element_orders(self, orig: dict[str, Any], patch: dict[str, Any], node: Node) -> None:
        for key in [k for k in patch if k.startswith(ORDER_PREFIX)]:
            order = patch.pop(key)
            if not isinstance(order, list):
                raise bad_arg_type([], order)
            field = _field_of(key, ORDER_PREFIX, ERR_SET_ORDER)
            has_orig, has_patch = field in orig, field in patch
            live = orig.get(field) if has_orig else []
            wanted = patch.get(field) if has_patch else []
            if not isinstance(live, list):
                raise bad_arg_type([], live)
            if not isinstance(wanted, list):
                raise bad_arg_type([], wanted)
            fd, item_node = self.shapes.child(node, field)
            merge_key = fd.patch_merge_key or "" if fd is not None else ""
            check_order(wanted, order, merge_key)
            if live or wanted:
                _element_kind(live, wanted)  # refuses lists of lists and mixed item types

            if not has_orig and not has_patch:
                continue
            if not has_patch:
                merged = live
            elif not has_orig:
                merged = _clean(wanted)
            elif patch_strategy(fd) == "merge":
                merged, live = self._merge_list(live, wanted, item_node, merge_key, False)
            else:
                merged = _clean(wanted)
            in_order, server_only = partition(merged, order, merge_key)
            orig[field] = normalize(in_order, server_only, order, live, merge_key)
            patch.pop(field, None)


# -- helpers: values -----------------------------------------------------------


def _element_kind(*lists: list[Any]) -> str:
    kind = ""
    for items in lists:
        for item in items:
            k = value_kind(item)
            if k == "list":
                raise rejected(ERR_LIST_OF_LISTS)
            if kind and k != kind:
                raise server_error("list element types are not identical: "
                                   + go_format(list(lists)))
            kind = k
    return kind


def _contains(items: list[Any], value: Any) -> bool:
    key = scalar_key(value)
    return any(scalar_key(v) == key for v in items)


def _dedup(items: list[Any]) -> list[Any]:
    seen: list[tuple[str, Any]] = []
    out = []
    for v in items:
        key = scalar_key(v)
        if key not in seen:
            seen.append(key)
            out.append(v)
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else go_format(value)


def _is_directive_key(key: str) -> bool:
    return key == RETAIN_KEYS or key.startswith(ORDER_PREFIX) or key.startswith(DELETE_PREFIX)


def _clean(value: Any) -> Any:
    """A patch value stored as is: nulls and directives removed (``_DROP`` if it was one)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return _DROP
        out = {}
        for k, v in value.items():
            if v is None or _is_directive_key(k):
                continue
            cleaned = _clean(v)
            if cleaned is not _DROP:
                out[k] = cleaned
        return out
    if isinstance(value, list):
        return [c for c in (_clean(v) for v in value) if c is not _DROP]
    return value


def _set_new(orig: dict[str, Any], key: str, value: Any) -> None:
    cleaned = _clean(value)
    if cleaned is _DROP:
        orig.pop(key, None)
    else:
        orig[key] = cleaned


def _field_of(key: str, prefix: str, error: str) -> str:
    """``$setElementOrder/containers`` -> ``containers``."""
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise bad_request(error)
    return rest


def _apply_retain_keys(orig: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise bad_request(ERR_RETAIN_KEYS)
    for key, value in patch.items():
        if value is None or key.startswith(DELETE_PREFIX) or key.startswith(ORDER_PREFIX):
            continue
        if key not in keep:
            raise bad_request(ERR_RETAIN_KEYS)
    for key in [k for k in orig if k not in keep]:
        del orig[key]


# -- helpers: lists of objects ---------------------------------------------------


def _list_directives(orig: list[Any], patch: list[Any], merge_key: str,
                     view: AliasedView) -> tuple[list[Any], list[Any] | None]:
    """Apply ``$patch`` items; returns (original, remaining patch items or None on replace)."""
    kept = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            kept.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
            target = scalar_key(item[merge_key])
            while True:
                index = next((i for i, v in enumerate(orig) if isinstance(v, dict)
                              and merge_key in v and scalar_key(v[merge_key]) == target), -1)
                if index < 0:
                    break
                orig = orig[:index] + orig[index + 1:]
                view.delete(index)
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise server_error("merging lists cannot yet be specified in the patch")
        else:
            raise server_error(f"unknown patch type: {_text(directive)} in map: {go_format(item)}")
    if replace:
        return [c for c in (_clean(v) for v in kept) if c is not _DROP], None
    return orig, kept


def _find_by_key(items: list[Any], merge_key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise server_error(f"value for key {i} is not a map")
        if merge_key in item and scalar_key(item[merge_key]) == scalar_key(value):
            return i
    return -1
