"""JSON merge patch (RFC 7386, ``application/merge-patch+json``).

The patch is an object shaped like the target: keys set values, ``null``
deletes a key, objects merge recursively, everything else (arrays included)
replaces.  ``kubectl label``, ``annotate`` and ``scale`` send these.

Details follow kube-apiserver (``evanphx/json-patch`` v4): ``null`` members of
newly added objects are dropped, also inside arrays of objects; ``null`` items
of an array are kept.

A patch that is not an object cannot produce an object: ``null``, a string,
number or boolean is refused with 400 "Invalid JSON Patch"; an array becomes the
whole document in Kubernetes, which then fails to decode (422).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ..errors import Cause, StatusError
from .failures import bad_request

# What Go's decoder says when the document it must read the kind from is an array.
_NOT_AN_OBJECT = ('couldn\'t get version/kind; json parse error: json: cannot unmarshal array into Go '
                  'value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
                  'Kind string "json:\\"kind,omitempty\\"" }')


def json_merge_patch(original: dict[str, Any], patch: Any, *, in_place: bool = False) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch to ``original``; the inputs are not modified.

    ``in_place=True``: ``original`` is the caller's own copy, to be patched and
    returned instead of a deep copy of it (which costs more than the patch).  The
    result never shares a value with ``patch`` either way.
    """
    if isinstance(patch, list):
        shown = json.dumps(patch, separators=(",", ":"))
        body = f"Invalid value: {json.dumps(shown)}: {_NOT_AN_OBJECT}"
        raise StatusError(422, "Invalid", f' "" is invalid: patch: {body}',
                          causes=[Cause("FieldValueInvalid", body, "patch")])
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch")
    result = original if in_place else copy.deepcopy(original)
    _merge_into(result, patch)
    return result


def _merge_into(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
        elif doc.get(key) is None:
            doc[key] = _without_nulls(value)
        else:
            doc[key] = _merge(doc[key], value)


def _merge(current: Any, patch: Any) -> Any:
    if not isinstance(current, dict):
        return _without_nulls(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    _merge_into(current, patch)
    return current


def _without_nulls(value: Any) -> Any:
    """A copy of a new value with ``null`` object members removed (array items kept)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) if isinstance(v, _CONTAINERS) else v
                for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) if isinstance(v, _CONTAINERS) else v for v in value]
    return value


_CONTAINERS = (dict, list)  # what _without_nulls copies; everything else is immutable
