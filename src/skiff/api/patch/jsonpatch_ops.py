"""JSON patch (RFC 6902, ``application/json-patch+json``).

A list of operations applied in order, all or nothing::

    [{"op": "test",    "path": "/spec/replicas", "value": 2},
     {"op": "replace", "path": "/spec/replicas", "value": 3},
     {"op": "add",     "path": "/metadata/labels/tier", "value": "web"},
     {"op": "remove",  "path": "/spec/template/spec/containers/1"}]

kube-apiserver applies these with ``evanphx/json-patch`` v4, whose behaviour
differs from the RFC (and from the ``jsonpatch`` PyPI library) in ways clients
can observe, so the operations are implemented here to match it:

* ``replace`` of a missing *object member* adds it (only a missing array index fails);
* negative array indices count from the end (``-1`` is the last item);
* ``test`` of a missing member passes when ``value`` is ``null``;
* paths are split on ``/`` and the part before the first ``/`` is ignored; the
  whole document (path ``""``) cannot be the target;
* error messages are the library's, e.g. ``testing value /spec/replicas failed: test failed``.

Failures (a failed ``test``, a missing path, a bad index, an unknown ``op``)
are 422 with kube-apiserver's generic message and the precise reason as the
cause (:func:`~.failures.rejected`).  A body that is not a list of operation
objects is 400; more than 10000 operations is 413.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import StatusError
from .failures import bad_request, json_kind, rejected

MAX_OPERATIONS = 10000
_MISSING = ": missing value"


class _OpError(Exception):
    """One operation failed; the text is the json-patch library's error string."""


def json_patch(original: dict[str, Any], operations: Any, *, in_place: bool = False) -> dict[str, Any]:
    """Apply RFC 6902 operations to a copy of ``original`` and return it.

    ``in_place=True``: ``original`` is the caller's own copy, to be patched (and
    returned) instead of a deep copy; after a failed operation it is left half patched.
    """
    if operations is None:
        return original if in_place else copy.deepcopy(original)
    if not isinstance(operations, list):
        raise bad_request(f"json: cannot unmarshal {json_kind(operations)} into Go value of type "
                          "jsonpatch.Patch")
    for op in operations:
        if op is not None and not isinstance(op, dict):
            raise bad_request(f"json: cannot unmarshal {json_kind(op)} into Go value of type "
                              "jsonpatch.Operation")
    if len(operations) > MAX_OPERATIONS:
        raise StatusError(413, "RequestEntityTooLarge",
                          "Request entity too large: The allowed maximum operations in a JSON "
                          f"patch is {MAX_OPERATIONS}, got {len(operations)}")
    doc = original if in_place else copy.deepcopy(original)
    for op in operations:
        try:
            _apply(doc, op or {})
        except _OpError as e:
            raise rejected(str(e)) from None
    return doc


def _apply(doc: dict[str, Any], op: dict[str, Any]) -> None:
    kind = op.get("op")
    kind = kind if isinstance(kind, str) else "unknown"
    value = copy.deepcopy(op.get("value"))
    if kind == "add":
        path = _pointer(op, "path", "add operation failed to decode path" + _MISSING)
        con, key = _container(doc, path, f'add operation does not apply: doc is missing path: "{path}"')
        _add(con, key, value, f"error in add for path: '{path}'")
    elif kind == "remove":
        path = _pointer(op, "path", "remove operation failed to decode path" + _MISSING)
        con, key = _container(doc, path, f'remove operation does not apply: doc is missing path: "{path}"')
        _remove(con, key, f"error in remove for path: '{path}'")
    elif kind == "replace":
        path = _pointer(op, "path", "replace operation failed to decode path: operation missing path field"
                        + _MISSING)
        con, key = _container(doc, path, f"replace operation does not apply: doc is missing path: {path}")
        if isinstance(con, list):
            _get(con, key, f"replace operation does not apply: doc is missing key: {path}", wrap=False)
        _set(con, key, value)
    elif kind == "move":
        source = _pointer(op, "from", "move operation failed to decode from: operation, missing from field"
                          + _MISSING)
        con, key = _container(doc, source, f"move operation does not apply: doc is missing from path: {source}")
        moved = _get(con, key, f"error in move for path: '{key}'")
        _remove(con, key, f"error in move for path: '{key}'")
        path = _pointer(op, "path", "move operation failed to decode path: operation missing path field"
                        + _MISSING)
        con, key = _container(doc, path, f"move operation does not apply: doc is missing destination path: {path}")
        _add(con, key, moved, f"error in move for path: '{path}'")
    elif kind == "copy":
        source = _pointer(op, "from", "copy operation failed to decode from: operation, missing from field"
                          + _MISSING)
        con, key = _container(doc, source, f"copy operation does not apply: doc is missing from path: {source}")
        copied = copy.deepcopy(_get(con, key, f"error in copy for from: '{source}'"))
        path = _pointer(op, "path", "copy operation failed to decode path" + _MISSING)
        con, key = _container(doc, path, f"copy operation does not apply: doc is missing destination path: {path}")
        _add(con, key, copied, "error while adding value during copy")
    elif kind == "test":
        path = _pointer(op, "path", "test operation failed to decode path: operation missing path field"
                        + _MISSING)
        con, key = _container(doc, path, f"test operation does not apply: is missing path: {path}")
        current = _get(con, key, f"error in test for path: '{path}'")
        if current is None and value is None:
            return
        if current is None or value is None or not _same(current, value):
            raise _OpError(f"testing value {path} failed: test failed")
    else:
        raise _OpError(f"Unexpected kind: {kind}")


def _pointer(op: dict[str, Any], name: str, missing: str) -> str:
    value = op.get(name)
    if not isinstance(value, str):
        raise _OpError(missing)
    return value


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _container(doc: dict[str, Any], path: str, missing: str) -> tuple[Any, str]:
    """The object or array holding the target of ``path``, and the final key."""
    parts = path.split("/")
    if len(parts) < 2:
        raise _OpError(missing + _MISSING)
    con: Any = doc
    for part in parts[1:-1]:
        key = _unescape(part)
        if isinstance(con, dict):
            nxt = con.get(key)
        else:
            index = _index(key, len(con))
            nxt = con[index] if index is not None and 0 <= index < len(con) else None
        if not isinstance(nxt, (dict, list)):
            raise _OpError(missing + _MISSING)
        con = nxt
    return con, _unescape(parts[-1])


def _index(key: str, size: int) -> int | None:
    """An array index as the library reads it (negative counts from the end)."""
    digits = key[1:] if key[:1] in ("+", "-") else key
    if not (digits.isascii() and digits.isdigit()):
        return None
    index = int(key)
    return index + size if index < 0 else index


def _bad_index(key: str, context: str) -> _OpError:
    return _OpError(f'{context}: strconv.Atoi: parsing "{key}": invalid syntax')


def _out_of_range(key: str, context: str) -> _OpError:
    return _OpError(f"{context}: Unable to access invalid index: {int(key)}: invalid index referenced")


def _get(con: Any, key: str, context: str, wrap: bool = True) -> Any:
    if isinstance(con, dict):
        return con.get(key)
    index = _index(key, len(con))
    if index is None:
        raise _bad_index(key, context) if wrap else _OpError(context + _MISSING)
    if not 0 <= index < len(con):
        raise _out_of_range(key, context) if wrap else _OpError(context + _MISSING)
    return con[index]


def _set(con: Any, key: str, value: Any) -> None:
    if isinstance(con, dict):
        con[key] = value
    else:
        index = _index(key, len(con))
        assert index is not None  # checked by the caller
        con[index] = value


def _add(con: Any, key: str, value: Any, context: str) -> None:
    if isinstance(con, dict):
        con[key] = value
        return
    if key == "-":
        con.append(value)
        return
    index = _index(key, len(con) + 1)
    if index is None:
        raise _OpError(f"{context}: value was not a proper array index: '{key}': strconv.Atoi: "
                       f'parsing "{key}": invalid syntax')
    if not 0 <= index <= len(con):
        raise _out_of_range(key, context)
    con.insert(index, value)


def _remove(con: Any, key: str, context: str) -> None:
    if isinstance(con, dict):
        if key not in con:
            raise _OpError(f"{context}: Unable to remove nonexistent key: {key}{_MISSING}")
        del con[key]
        return
    index = _index(key, len(con))
    if index is None:
        raise _bad_index(key, context)
    if not 0 <= index < len(con):
        raise _out_of_range(key, context)
    del con[index]


def _same(left: Any, right: Any) -> bool:
    """JSON equality (``true`` is not ``1``)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    if isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
        return False
    return bool(left == right)
