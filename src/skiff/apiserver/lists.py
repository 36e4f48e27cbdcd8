"""LIST: selectors, pagination (limit/continue) and resourceVersion semantics.

=========================================  ===========================================
query                                      read
=========================================  ===========================================
no resourceVersion, or ``"0"``             the latest state
``resourceVersion=R`` (NotOlderThan)       the latest state (never older than R here)
``resourceVersion=R&limit=N``              exactly at R (as Kubernetes pages from etcd)
``resourceVersionMatch=Exact``             exactly at R; 410 Expired once compacted
``continue=T``                             at the token's revision, after its key
=========================================  ===========================================

A continue token is ``base64url(json{"v","rv","start"})``: the snapshot revision
and the last key returned, relative to the listed prefix.  Lists with selectors
keep reading pages until ``limit`` matching objects are found, like kube-apiserver.
``metadata.name=x`` field selectors on a known namespace read one key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import orjson

from ..api.errors import StatusError, bad_request, expired
from ..api.resource import ResourceInfo
from ..api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    check_field_labels,
    field_getters,
    parse_field_selector,
    parse_label_selector,
)
from ..storage.interface import Backend, Compacted, FutureRevision, KeyValue
from .objects import collection_prefix, decode, object_key

Obj = dict[str, Any]
Transform = Callable[[Obj], Obj]

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")
PAGE = 500  # keys read per storage round trip when filtering


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """Label and field selectors of one request, bound to a kind's field labels."""

    label: LabelSelector
    field: FieldSelector
    getters: Mapping[str, Callable[[Obj], str]]

    @property
    def everything(self) -> bool:
        return self.label.empty and self.field.empty

    def matches(self, obj: Obj) -> bool:
        if not self.label.empty and not self.label.matches_object(obj):
            return False
        if not self.field.empty and not self.field.matches_object(obj, self.getters):
            return False
        return True


def parse_filter(info: ResourceInfo, query: Mapping[str, str]) -> ObjectFilter:
    try:
        label = parse_label_selector(query.get("labelSelector", ""))
        field = parse_field_selector(query.get("fieldSelector", ""))
        getters = field_getters(info.namespaced, info.field_labels)
        check_field_labels(field, getters)
    except SelectorError as exc:
        raise bad_request(str(exc)) from None
    return ObjectFilter(label, field, getters)


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: ObjectFilter
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    match: str = ""  # "" | Exact | NotOlderThan


def parse_list_query(info: ResourceInfo, query: Mapping[str, str]) -> ListQuery:
    limit_text = query.get("limit", "") or "0"
    try:
        limit = max(0, int(limit_text))
    except ValueError:
        raise bad_request(f'limit: Invalid value: "{limit_text}": must be an integer') from None
    rv = query.get("resourceVersion", "")
    match = query.get("resourceVersionMatch", "")
    token = query.get("continue", "")
    if match and match not in ("Exact", "NotOlderThan"):
        raise bad_request(f'resourceVersionMatch: Unsupported value: "{match}": '
                          'supported values: "Exact", "NotOlderThan"')
    if match and not rv:
        raise bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
                          "unless resourceVersion is provided")
    if token and (rv and rv != "0"):
        raise bad_request("specifying resource version is not allowed when using continue")
    if match == "Exact" and rv == "0":
        raise bad_request('resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is '
                          'forbidden for resourceVersion "0"')
    if rv:
        parse_revision(rv)
    return ListQuery(parse_filter(info, query), limit, token, rv, match)


def parse_revision(rv: str) -> int:
    try:
        value = int(rv)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        raise bad_request(f'invalid resource version "{rv}"') from None


def encode_continue(revision: int, start: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        revision, start = int(data["rv"]), str(data["start"])
        if data.get("v") != "meta.k8s.io/v1" or revision <= 0 or start.startswith("/"):
            raise ValueError
        return revision, start
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise bad_request(f"continue key is not valid: invalid continue token {token!r}") from None


@dataclass(slots=True)
class ListPage:
    """One LIST answer: the matching objects (raw and, when decoded, as dicts)."""

    kvs: list[KeyValue]
    objects: list[Obj] | None  # decoded, in kvs order (None when nothing needed decoding)
    revision: int
    continue_token: str = ""
    remaining: int | None = None
    transform: Transform | None = None  # stored form -> served form (see conversion.py)

    def decoded(self) -> list[Obj]:
        if self.objects is None:
            t = self.transform
            self.objects = [t(decode(kv)) if t else decode(kv) for kv in self.kvs]
        return self.objects


def too_large(requested: int, current: int) -> StatusError:
    return StatusError(504, "Timeout", f"Too large resource version: {requested}, current: {current}",
                       retry_after_seconds=1)


async def list_objects(backend: Backend, info: ResourceInfo, namespace: str, q: ListQuery,
                       transform: Transform | None = None) -> ListPage:
    """List ``info``'s stored objects; ``transform`` turns each into its served form
    before selectors see it (for resources served through a :class:`StorageView`)."""
    prefix = collection_prefix(info, namespace)
    start_after = ""
    revision = 0
    if q.continue_token:
        revision, start = decode_continue(q.continue_token)
        start_after = prefix + start
        if revision < backend.compacted_revision:
            raise expired(CONTINUE_EXPIRED)
    elif q.resource_version and q.resource_version != "0":
        wanted = int(q.resource_version)
        if q.match == "Exact" or (q.limit and q.match != "NotOlderThan"):
            revision = wanted
        elif wanted > backend.revision:
            raise too_large(wanted, backend.revision)
    try:
        name = q.filter.field.exact("metadata.name")
        if name is not None and (namespace or not info.namespaced) and not start_after:
            return await _list_one(backend, info, namespace, name, revision, q.filter, transform)
        return await _list_range(backend, prefix, revision, start_after, q, transform)
    except Compacted:
        if q.continue_token:
            raise expired(CONTINUE_EXPIRED) from None
        raise expired(f"too old resource version: {revision} ({backend.compacted_revision})") from None
    except FutureRevision as exc:
        raise too_large(exc.requested, exc.current) from None


async def _list_one(backend: Backend, info: ResourceInfo, namespace: str, name: str,
                    revision: int, flt: ObjectFilter, transform: Transform | None) -> ListPage:
    at = revision or backend.revision
    kv = await backend.get(object_key(info, namespace, name), revision=revision)
    if kv is None:
        return ListPage([], [], at)
    obj = transform(decode(kv)) if transform else decode(kv)
    if not flt.matches(obj):
        return ListPage([], [], at)
    return ListPage([kv], [obj], at)


async def _list_range(backend: Backend, prefix: str, revision: int, start_after: str,
                      q: ListQuery, transform: Transform | None) -> ListPage:
    flt, limit = q.filter, q.limit
    if flt.everything:
        r = await backend.range(prefix, revision=revision, start_after=start_after, limit=limit)
        token, remaining = "", None
        if r.more and r.kvs:
            token = encode_continue(r.revision, r.kvs[-1].key[len(prefix):])
            remaining = max(0, r.count - len(r.kvs))
        return ListPage(r.kvs, None, r.revision, token, remaining, transform)
    kvs: list[KeyValue] = []
    objs: list[Obj] = []
    at = revision
    while True:
        r = await backend.range(prefix, revision=at, start_after=start_after,
                                limit=max(limit, PAGE) if limit else 0)
        at = r.revision
        for i, kv in enumerate(r.kvs):
            obj = transform(decode(kv)) if transform else decode(kv)
            if not flt.matches(obj):
                continue
            kvs.append(kv)
            objs.append(obj)
            if limit and len(kvs) >= limit:
                more = r.more or i + 1 < len(r.kvs)
                token = encode_continue(at, kv.key[len(prefix):]) if more else ""
                return ListPage(kvs, objs, at, token)
        if not r.more or not r.kvs:
            return ListPage(kvs, objs, at)
        start_after = r.kvs[-1].key
