"""Every way a client can change an object without sending all of it, as pure functions.

===============================================  ===================================  ===========================
Content-Type of the PATCH                         function                             module
===============================================  ===================================  ===========================
``application/strategic-merge-patch+json``       :func:`strategic_merge_patch`        :mod:`.strategic`
``application/merge-patch+json``                 :func:`json_merge_patch`             :mod:`.merge`
``application/json-patch+json``                  :func:`json_patch`                   :mod:`.jsonpatch_ops`
``application/apply-patch+yaml`` (server-side)   :func:`server_side_apply`            :mod:`.apply`
any other write (create, update, patch)          :func:`update_managed_fields`        :mod:`.apply`
===============================================  ===================================  ===========================

All take decoded JSON (dicts), never modify their inputs, and return a new
object (:func:`update_managed_fields`' result shares all but its top level and
``metadata`` with its input).  A server keeps a :class:`FieldManager` for the
last two instead: the same operations, remembering schema walks and recent
managedFields between writes.  A patch that cannot be applied raises
:class:`~skiff.api.errors.StatusError` with kube-apiserver's code, reason and
message (see :mod:`.failures`).  Schema knowledge (merge keys, list types)
comes from :mod:`skiff.api.schema` via :mod:`.shape`.
"""

from .apply import FieldManager, ManagedEntry, decode_managed_fields, server_side_apply, update_managed_fields
from .jsonpatch_ops import json_patch
from .merge import json_merge_patch
from .strategic import strategic_merge_patch

__all__ = [
    "FieldManager",
    "ManagedEntry",
    "decode_managed_fields",
    "json_merge_patch",
    "json_patch",
    "server_side_apply",
    "strategic_merge_patch",
    "update_managed_fields",
]
