"""URL path -> what the request addresses, the way kube-apiserver reads its URLs.

Resource paths::

    /api/v1[/watch][/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]
    /apis/<group>/<version>[/watch][/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]

``/api/v1/namespaces/<name>`` is the Namespace object itself, and
``/api/v1/namespaces/<name>/status|finalize`` its subresources; any other
segment after ``namespaces/<ns>/`` starts a namespaced resource path.

Everything else (``/api``, ``/apis/apps``, ``/version``, ``/openapi/v3/...``)
is a :class:`ApiPath` with ``kind`` telling which document is asked for.
Parsing is pure; :class:`PathCache` memoises it per server.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Subresources of a Namespace that are not namespaced resources of their own.
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """A request for a resource collection, an item or an item's subresource."""

    group: str
    version: str
    plural: str
    namespace: str = ""  # "" = cluster-scoped or all namespaces
    name: str = ""  # "" = the collection
    subresource: str = ""
    watch: bool = False  # the legacy /watch/ prefix
    rest: str = ""  # anything after the subresource (proxy paths)


@dataclass(frozen=True, slots=True)
class ApiPath:
    """A non-resource path: discovery, version, health, OpenAPI or unknown."""

    kind: str  # api | apis | group | groupversion | version | health | openapi | unknown
    group: str = ""
    version: str = ""
    rest: str = ""  # the OpenAPI sub-path, the health endpoint


Parsed = ResourcePath | ApiPath

_HEALTH = frozenset({"healthz", "livez", "readyz"})


def parse_path(path: str) -> Parsed:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return ApiPath("unknown")
    head = parts[0]
    if head == "api":
        if len(parts) == 1:
            return ApiPath("api")
        return _resource_path("", parts[1], parts[2:])
    if head == "apis":
        if len(parts) == 1:
            return ApiPath("apis")
        if len(parts) == 2:
            return ApiPath("group", group=parts[1])
        return _resource_path(parts[1], parts[2], parts[3:])
    if head == "version" and len(parts) == 1:
        return ApiPath("version")
    if head in _HEALTH:
        return ApiPath("health", rest="/".join(parts))
    if head == "openapi":
        return ApiPath("openapi", rest="/".join(parts[1:]))
    return ApiPath("unknown")


def _resource_path(group: str, version: str, parts: list[str]) -> Parsed:
    if not parts:
        return ApiPath("groupversion", group=group, version=version)
    watch = False
    if parts[0] == "watch":
        watch = True
        parts = parts[1:]
        if not parts:
            return ApiPath("unknown")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        if len(parts) == 2 or parts[2] in NAMESPACE_SUBRESOURCES:
            # the Namespace object (or its status/finalize subresource)
            return ResourcePath(group, version, "namespaces", name=parts[1],
                                subresource=parts[2] if len(parts) > 2 else "",
                                watch=watch, rest="/".join(parts[3:]))
        namespace = parts[1]
        parts = parts[2:]
    plural = parts[0]
    name = parts[1] if len(parts) > 1 else ""
    sub = parts[2] if len(parts) > 2 else ""
    return ResourcePath(group, version, plural, namespace=namespace, name=name,
                        subresource=sub, watch=watch, rest="/".join(parts[3:]))


class PathCache:
    """Memoised :func:`parse_path` (bounded; cleared wholesale when full)."""

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._cache: dict[str, Parsed] = {}

    def parse(self, path: str) -> Parsed:
        hit = self._cache.get(path)
        if hit is None:
            hit = parse_path(path)
            if len(self._cache) >= self._size:
                self._cache.clear()
            self._cache[path] = hit
        return hit
