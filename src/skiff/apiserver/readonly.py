"""Resources that are read from a component's memory, not from the store (metrics.k8s.io).

In Kubernetes, ``metrics.k8s.io`` is served by metrics-server behind the aggregation
layer: kube-apiserver forwards ``/apis/metrics.k8s.io/...`` to it.  skiff keeps the
idea without the proxy hop: a component that owns such a group registers a
:class:`ReadOnlySource` per resource in ``ServerContext.read_only`` (the cluster
wires it; the API server never imports components), and the API server answers
``get`` and ``list`` from it, with the usual label and field selectors, Table and
metadata-only forms::

    GET .../pods              source.list(namespace)  -> selectors -> PodMetricsList
    GET .../pods/<name>       source.get(namespace, name) -> PodMetrics | 404 NotFound
    anything else             405 MethodNotAllowed (no writes, no watch)
    no source registered      503 ServiceUnavailable (an unavailable APIService)

Which resources are served this way is data: ``ResourceInfo.stored`` is False (also
core/v1 ComponentStatus, whose ``ResourceInfo.warning`` goes out as a Warning header).
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from aiohttp import web

from ..api.errors import StatusError, method_not_allowed, not_found
from ..api.resource import ResourceInfo
from .lists import parse_filter
from .negotiation import Accept, compressed, json_response, parse_accept, query_flag
from .paths import ResourcePath
from .tables import include_object_mode, partial_metadata, partial_metadata_list, table

Obj = dict[str, Any]

NO_RESOURCE = StatusError(404, "NotFound", "the server could not find the requested resource")
UNAVAILABLE = StatusError(503, "ServiceUnavailable", "the server is currently unable to handle the request")


class ReadOnlySource(Protocol):
    """What a component offers for one read-only resource (objects in their served form)."""

    async def get(self, namespace: str, name: str) -> Obj | None:
        """The object, or None when there is none (yet)."""
        ...

    async def list(self, namespace: str) -> list[Obj]:
        """Every object in ``namespace`` ("" = all namespaces), in a stable order."""
        ...


async def serve_read_only(request: web.Request, info: ResourceInfo, target: ResourcePath,
                          source: ReadOnlySource | None) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD") or target.subresource or target.watch \
            or query_flag(request.query, "watch"):
        raise method_not_allowed()
    if info.namespaced and target.name and not target.namespace:
        raise NO_RESOURCE      # .../pods/<name> without a namespace names nothing
    if source is None:
        raise UNAVAILABLE
    accept = parse_accept(request.headers.get("Accept", ""))
    response = await _answer(request, info, target, source, accept)
    if info.warning:       # a deprecated kind: kubectl prints "Warning: ..."
        response.headers["Warning"] = '299 - "' + info.warning.replace('"', '\\"') + '"'
    return response


async def _answer(request: web.Request, info: ResourceInfo, target: ResourcePath,
                  source: ReadOnlySource, accept: Accept) -> web.Response:
    if target.name:
        obj = await source.get(target.namespace, target.name)
        if obj is None:
            raise not_found(info.plural, info.group, target.name)
        if accept.table:
            return json_response(table(info, [obj], include_object_mode(request.query)))
        if accept.partial_metadata:
            return json_response(partial_metadata(obj))
        return json_response(obj)
    wanted = parse_filter(info, request.query)
    objs = [o for o in await source.list(target.namespace) if wanted.matches(o)]
    meta: Obj = {}
    if accept.table:
        body = orjson.dumps(table(info, objs, include_object_mode(request.query), meta))
    elif accept.partial_metadata:
        body = orjson.dumps(partial_metadata_list(objs, meta))
    else:
        body = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version,
                             "metadata": meta, "items": objs})
    return compressed(request, json_response(body))
