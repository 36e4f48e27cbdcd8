"""How strategic merge patch orders a merged list.

Kubernetes promises a stable order: items the patch names come in the patch's
order (or the order ``$setElementOrder`` gives), and items only the server
has (server-only items, e.g. a sidecar injected by a webhook) stay next to the
items they followed in the live list.  The rule, from
``k8s.io/apimachinery/pkg/util/strategicpatch`` (``mergeSortedSlice``):

* sort the patch items by the patch order, the server-only items by the live order;
* interleave the two: take the next server-only item first only when both it and
  the next patch item are in the live list and it came first there.

So an item the live list does not have yet goes before the remaining server-only
items, and ``[a, sidecar, b]`` reordered to ``[b, a]`` becomes ``[sidecar, b, a]``.
"""

from __future__ import annotations

from typing import Any

from .failures import bad_arg_type, go_format, no_merge_key, server_error

DIRECTIVE = "$patch"
ORDER_PREFIX = "$setElementOrder"


def value_kind(value: Any) -> str:
    """The JSON type of a value; Go compares these to decide between merge and replace."""
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def scalar_key(value: Any) -> tuple[str, Any]:
    """Equality key that keeps ``true`` and ``1`` apart, as Go does."""
    return (value_kind(value), value)


def _identity(item: Any, merge_key: str) -> tuple[str, Any]:
    if merge_key:
        return scalar_key(item.get(merge_key) if isinstance(item, dict) else None)
    return scalar_key(item)


def _index(items: list[Any], item: Any, merge_key: str) -> int:
    want = _identity(item, merge_key)
    for i, candidate in enumerate(items):
        if _identity(candidate, merge_key) == want:
            return i
    return -1


def partition(merged: list[Any], present: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split ``merged`` into items named in ``present`` and the others (server-only)."""
    inside: list[Any] = []
    outside: list[Any] = []
    for item in merged:
        if merge_key:
            if not isinstance(item, dict):
                raise bad_arg_type({}, item)
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
        (inside if _index(present, item, merge_key) >= 0 else outside).append(item)
    return inside, outside


def normalize(in_patch: list[Any], server_only: list[Any], patch_order: list[Any],
               server_order: list[Any], merge_key: str) -> list[Any]:
    """Order the result: patch items in patch order, server-only items kept near their place."""
    if merge_key:
        for item in [*in_patch, *server_only, *patch_order]:
            if isinstance(item, dict) and merge_key not in item:
                raise no_merge_key(item, merge_key)

    def by(order: list[Any]) -> Any:
        def position(item: Any) -> int:
            i = _index(order, item, merge_key)
            return i if i >= 0 else len(order)
        return position

    left = sorted(server_only, key=by(server_order))
    right = sorted(in_patch, key=by(patch_order))
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li = _index(server_order, left[i], merge_key)
            ri = _index(server_order, right[j], merge_key)
            if 0 <= li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


class AliasedView:
    """The caller's view of a Go slice that is edited in place (length fixed, capacity = length)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)
        self._length = len(items)
        self._spilled = False

    def delete(self, index: int) -> None:
        self.items[index:self._length - 1] = self.items[index + 1:self._length]
        self._length -= 1

    def append(self, item: Any) -> None:
        if not self._spilled and self._length < len(self.items):
            self.items[self._length] = item
            self._length += 1
        else:
            self._spilled = True  # Go reallocated: later writes are not visible here


def check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """Every patch item must appear in ``$setElementOrder``, in the same relative order."""
    if not patch_list or not order:
        return
    items = patch_list
    if merge_key:
        for item in patch_list:
            if not isinstance(item, dict):
                raise bad_arg_type({}, item)
        items = [v for v in patch_list if v.get(DIRECTIVE) != "delete"]
    p = o = 0
    while p < len(items) and o < len(order):
        item = items[p]
        if isinstance(item, dict) and DIRECTIVE in item:
            p += 1
            continue
        if _same_item(item, order[o], merge_key):
            p += 1
        o += 1
    if p < len(items) and o >= len(order):
        raise server_error(f"The order in patch list:\n{go_format(patch_list)}\n doesn't match "
                           f"{ORDER_PREFIX} list:\n{go_format(order)}\n")


def _same_item(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return scalar_key(left) == scalar_key(right)
    for side in (left, right):
        if not isinstance(side, dict):
            raise bad_arg_type({}, side)
        if merge_key not in side:
            raise no_merge_key(side, merge_key)
    return bool(scalar_key(left[merge_key]) == scalar_key(right[merge_key]))
