"""A tiny in-memory Kubernetes-shaped API server for client tests.

Just enough of the wire protocol to exercise the client against edge cases the
real server makes hard to stage on demand: forcing ``410 Expired`` on the next
watch (:meth:`StubApi.compact`), breaking every open watch mid-stream
(:meth:`StubApi.break_watches`), counting requests, sending bookmarks.
Generic over resources; pods get graceful deletion (a ``deletionTimestamp``)
unless deleted with ``gracePeriodSeconds: 0``.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # (prefix, plural, namespace, name)


@dataclass
class _Watcher:
    prefix: str
    plural: str
    namespace: str
    fields: dict[str, str]
    queue: asyncio.Queue[Obj | None] = field(default_factory=asyncio.Queue)


def _status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


def _get_path(obj: Obj, dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def _matches(obj: Obj, fields: dict[str, str], labels: dict[str, str]) -> bool:
    obj_labels = obj.get("metadata", {}).get("labels") or {}
    return (all(_get_path(obj, k[:-1]) != v if k.endswith("!") else _get_path(obj, k) == v
                for k, v in fields.items())
            and all(obj_labels.get(k) == v for k, v in labels.items()))


def _selector(raw: str) -> dict[str, str]:
    """``a=b,c!=d`` -> ``{"a": "b", "c!": "d"}`` (a trailing ``!`` marks "not equal")."""
    out = {}
    for term in filter(None, raw.split(",")):
        k, _, v = term.partition("=")
        out[k] = v.lstrip("=")
    return out


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = _merge(result.get(k), v)
    return result


class StubApi:
    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.history: list[tuple[int, Key, str, Obj]] = []  # (rv, key, type, obj)
        self.rv = 100
        self.compacted = 0
        self.requests: list[tuple[str, str]] = []
        self.authorization: list[str] = []
        self.drop_events = False  # True: watchers miss changes (as if disconnected)
        self.fail_lists = 0  # answer this many list requests with 500
        self.watch_opened = asyncio.Event()  # set whenever a watch starts streaming
        self._watchers: list[_Watcher] = []
        self._uids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    # -- test controls ------------------------------------------------------------

    def compact(self) -> None:
        """Forget history: any watch from an older resourceVersion now gets 410."""
        self.compacted = self.rv

    def break_watches(self) -> None:
        for w in self._watchers:
            w.queue.put_nowait(None)

    def bookmark(self) -> None:
        for w in self._watchers:
            w.queue.put_nowait({"type": "BOOKMARK", "object": {
                "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.rv)}}})

    @property
    def watch_count(self) -> int:
        return len(self._watchers)

    # -- storage ------------------------------------------------------------------

    def _commit(self, key: Key, type_: str, obj: Obj) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if type_ == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.history.append((self.rv, key, type_, obj))
        for w in [] if self.drop_events else self._watchers:
            if self._watched(w, key, obj):
                w.queue.put_nowait({"type": type_, "object": obj})

    @staticmethod
    def _watched(w: _Watcher, key: Key, obj: Obj) -> bool:
        return (key[0] == w.prefix and key[1] == w.plural
                and (not w.namespace or key[2] == w.namespace) and _matches(obj, w.fields, {}))

    # -- HTTP ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        self.authorization.append(request.headers.get("Authorization", ""))
        segs = request.path.strip("/").split("/")
        if segs[0] == "api":
            prefix, rest = "/".join(segs[:2]), segs[2:]
        else:
            prefix, rest = "/".join(segs[:3]), segs[3:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        key = (prefix, plural, namespace, name)
        q = request.query
        body = orjson.loads(await request.read()) if request.can_read_body else None
        if request.method == "GET" and not name:
            if q.get("watch") == "true":
                return await self._watch(request, prefix, plural, namespace)
            return self._list(prefix, plural, namespace, q)
        if request.method == "POST":
            return self._create(prefix, plural, namespace, body)
        obj = self.objects.get(key)
        if obj is None:
            return _status(404, "NotFound", f'{plural} "{name}" not found', name=name, kind=plural)
        if request.method == "GET":
            return web.json_response(obj, dumps=lambda o: orjson.dumps(o).decode())
        if request.method == "PUT":
            if body["metadata"].get("resourceVersion") not in (None, obj["metadata"]["resourceVersion"]):
                return _status(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": '
                               "the object has been modified", name=name, kind=plural)
            new = dict(obj, status=body.get("status")) if sub == "status" else dict(body, status=obj.get("status"))
            new["metadata"] = dict(obj["metadata"]) if sub == "status" else dict(body["metadata"], uid=obj["metadata"]["uid"])
            self._commit(key, "MODIFIED", new)
            return web.json_response(new)
        if request.method == "PATCH":
            patched = _merge(obj, {"status": body.get("status")} if sub == "status" else body)
            self._commit(key, "MODIFIED", patched)
            return web.json_response(patched)
        if request.method == "DELETE":
            grace = (body or {}).get("gracePeriodSeconds")
            if plural == "pods" and grace != 0:
                if not obj["metadata"].get("deletionTimestamp"):
                    new = dict(obj, metadata=dict(obj["metadata"], deletionTimestamp="2025-01-01T00:00:00Z",
                                                  deletionGracePeriodSeconds=30))
                    self._commit(key, "MODIFIED", new)
                return web.json_response(self.objects[key])
            self._commit(key, "DELETED", dict(obj, metadata=dict(obj["metadata"])))
            return web.json_response(obj)
        return _status(405, "MethodNotAllowed", "no")

    def _create(self, prefix: str, plural: str, namespace: str, body: Obj) -> web.Response:
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{next(self._uids):05d}"
        name = meta.get("name", "")
        key = (prefix, plural, namespace, name)
        if key in self.objects:
            return _status(409, "AlreadyExists", f'{plural} "{name}" already exists', name=name, kind=plural)
        meta["uid"] = f"uid-{next(self._uids)}"
        if namespace:
            meta["namespace"] = namespace
        meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        self._commit(key, "ADDED", body)
        return web.json_response(body, status=201)

    def _list(self, prefix: str, plural: str, namespace: str, q: Any) -> web.Response:
        if self.fail_lists > 0:
            self.fail_lists -= 1
            return _status(500, "InternalError", "Internal error occurred: injected")
        fields, labels = _selector(q.get("fieldSelector", "")), _selector(q.get("labelSelector", ""))
        items = [o for (p, pl, ns, _), o in sorted(self.objects.items())
                 if p == prefix and pl == plural and (not namespace or ns == namespace)
                 and _matches(o, fields, labels)]
        start = int(q.get("continue") or 0)
        limit = int(q.get("limit") or 0) or len(items)
        page = items[start:start + limit]
        meta: Obj = {"resourceVersion": str(self.rv)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        version = prefix.split("/", 1)[1]
        return web.json_response({"kind": f"{plural.capitalize()[:-1]}List", "apiVersion": version,
                                  "metadata": meta, "items": page})

    async def _watch(self, request: web.Request, prefix: str, plural: str,
                     namespace: str) -> web.StreamResponse:
        q = request.query
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        since = int(q.get("resourceVersion") or self.rv)
        if since < self.compacted:
            err = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                               "status": "Failure", "reason": "Expired", "code": 410,
                                               "message": f"too old resource version: {since}"}}
            await resp.write(orjson.dumps(err) + b"\n")
            return resp
        w = _Watcher(prefix, plural, namespace, _selector(q.get("fieldSelector", "")))
        for rv, key, type_, obj in self.history:
            if rv > since and self._watched(w, key, obj):
                w.queue.put_nowait({"type": type_, "object": obj})
        self._watchers.append(w)
        self.watch_opened.set()
        try:
            while (event := await w.queue.get()) is not None:
                await resp.write(orjson.dumps(event) + b"\n")
        finally:
            self._watchers.remove(w)
        return resp
