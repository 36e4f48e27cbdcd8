"""Objects in the store: keys, encoding and ``resourceVersion``.

Layout (one key per object, the same as Kubernetes' etcd layout)::

    /registry/<group or "core">/<plural>/<namespace>/<name>     namespaced kinds
    /registry/<group or "core">/<plural>/<name>                 cluster-scoped kinds

Values are the object's JSON (orjson) *without* ``metadata.resourceVersion``
and with ``metadata`` as the first key: the resourceVersion of an object is the
``mod_revision`` of its key, so it is put into ``metadata`` on every read
(:func:`decode`, or :func:`with_resource_version` straight into the bytes, which
the fixed ``{"metadata":{`` head makes a constant-offset splice) and stripped on
every write (:func:`encode`).  Versions of one group share storage (no conversion).
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any

import orjson

from ..api.errors import already_exists, not_found
from ..api.resource import ResourceInfo
from ..storage.interface import Backend, KeyExists, KeyValue

Obj = dict[str, Any]

REGISTRY_ROOT = "/registry/"


def resource_prefix(info: ResourceInfo) -> str:
    """``/registry/apps/deployments/``: every object of the kind."""
    return f"{REGISTRY_ROOT}{info.group or 'core'}/{info.plural}/"


def collection_prefix(info: ResourceInfo, namespace: str) -> str:
    """The prefix of one namespace's objects (all of them for cluster-scoped kinds or "")."""
    base = resource_prefix(info)
    if info.namespaced and namespace:
        return f"{base}{namespace}/"
    return base


def object_key(info: ResourceInfo, namespace: str, name: str) -> str:
    base = resource_prefix(info)
    if info.namespaced:
        return f"{base}{namespace}/{name}"
    return f"{base}{name}"


_HEAD = b'{"metadata":{"'
_SPLICE_AT = len(b'{"metadata":{')


def encode(obj: Obj) -> bytes:
    """Serialise for storage: ``metadata`` first, without ``resourceVersion`` (mutates ``obj``'s metadata)."""
    meta = obj["metadata"]
    meta.pop("resourceVersion", None)
    if next(iter(obj)) != "metadata":
        return orjson.dumps({"metadata": meta, **obj})
    return orjson.dumps(obj)


def with_resource_version(value: bytes, revision: int) -> bytes:
    """The stored JSON with ``metadata.resourceVersion`` spliced in, without decoding."""
    if value.startswith(_HEAD):
        return b'%s"resourceVersion":"%d",%s' % (value[:_SPLICE_AT], revision, value[_SPLICE_AT:])
    obj = decode_value(value, revision)
    return orjson.dumps(obj)


def decode(kv: KeyValue) -> Obj:
    """The stored object with ``metadata.resourceVersion`` = the key's mod revision."""
    obj: Obj = orjson.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


def decode_value(value: bytes, revision: int) -> Obj:
    obj: Obj = orjson.loads(value)
    obj["metadata"]["resourceVersion"] = str(revision)
    return obj


def format_time(epoch: float) -> str:
    """RFC 3339 in UTC with whole seconds, as ``metav1.Time`` marshals."""
    return _format_second(math.floor(epoch))


@lru_cache(maxsize=8)  # every write stamps the current second, most of them twice
def _format_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def parse_time(text: str) -> float:
    """Inverse of :func:`format_time` (fractional seconds accepted and dropped)."""
    import calendar

    base = text[:19]
    return float(calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")))


class ObjectStore:
    """Typed access to API objects over a :class:`Backend`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> tuple[Obj, KeyValue]:
        kv = await self.backend.get(object_key(info, namespace, name))
        if kv is None:
            raise not_found(info.plural, info.group, name)
        return decode(kv), kv

    async def create(self, info: ResourceInfo, obj: Obj) -> Obj:
        """Store a new object; 409 AlreadyExists when the key is live. Returns ``obj`` with its RV."""
        meta = obj["metadata"]
        key = object_key(info, meta.get("namespace", ""), meta["name"])
        try:
            kv = await self.backend.create(key, encode(obj))
        except KeyExists:
            raise already_exists(info.plural, info.group, meta["name"]) from None
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def update(self, key: str, obj: Obj, expected_revision: int) -> Obj:
        """CAS write; lets :class:`RevisionMismatch` / :class:`KeyNotFound` through."""
        kv = await self.backend.update(key, encode(obj), expected_mod_revision=expected_revision)
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def delete(self, key: str, expected_revision: int) -> Obj:
        """CAS delete; returns the deleted object with the delete's revision as RV."""
        kv = await self.backend.delete(key, expected_mod_revision=expected_revision)
        return decode(kv)
