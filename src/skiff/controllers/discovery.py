"""Which resources the API server serves, learnt through discovery as clients do.

The garbage collector and the namespace controller must handle *every* kind,
including ones they were not written for (a CustomResource tomorrow), so they
ask the server instead of importing a list of kinds::

    GET /api                 {"versions": ["v1"]}
    GET /api/v1              APIResourceList: pods, services, pods/status ...
    GET /apis                APIGroupList: groups, their versions, preferredVersion
    GET /apis/<g>/<v>        APIResourceList of that group version

:func:`discover` returns an :class:`ApiResources` snapshot:

* :meth:`ApiResources.preferred` -- one entry per (group, resource), in the
  group's preferred version (what kube-controller-manager's
  ``ServerPreferredResources`` gives), optionally filtered by verbs and scope;
* :meth:`ApiResources.for_kind` -- ``(apiVersion, kind)`` -> resource, over
  every served version (an ownerReference may name any of them);
* :attr:`ApiResources.failed` -- group versions whose discovery failed
  (``groupVersion -> error``): callers report them, they do not stop.

Subresources (``pods/status``) are not resources and are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..api.errors import StatusError
from ..client.rest import ApiClient, TransportError

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApiResource:
    """One served resource (usable wherever the client takes a ``ResourceLike``)."""

    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str
    verbs: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def supports(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` -> ``("apps", "v1")``; ``"v1"`` -> ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass
class ApiResources:
    """A snapshot of what the server serves (see module docstring)."""

    resources: list[ApiResource] = field(default_factory=list)
    preferred_versions: dict[str, str] = field(default_factory=dict)  # group -> version
    failed: dict[str, str] = field(default_factory=dict)  # groupVersion -> error
    _kinds: dict[tuple[str, str], ApiResource] | None = field(default=None, repr=False,
                                                              compare=False)

    def preferred(self, *verbs: str, namespaced: bool | None = None) -> list[ApiResource]:
        """Each (group, resource) once, in its group's preferred version (or the first
        version serving it), having all ``verbs`` and, if given, that scope."""
        chosen: dict[tuple[str, str], ApiResource] = {}
        for res in self.resources:
            key = (res.group, res.plural)
            current = chosen.get(key)
            if current is None or (res.version == self.preferred_versions.get(res.group)
                                   and current.version != res.version):
                chosen[key] = res
        return [r for r in chosen.values()
                if r.supports(*verbs) and (namespaced is None or r.namespaced == namespaced)]

    def for_kind(self, api_version: str, kind: str) -> ApiResource | None:
        """The resource serving ``kind`` in ``api_version`` (None when not served)."""
        if self._kinds is None:
            self._kinds = {}
            for res in self.resources:
                self._kinds.setdefault((res.api_version, res.kind), res)
        return self._kinds.get((api_version, kind))


def _resources_of(group: str, version: str, doc: Obj) -> list[ApiResource]:
    out = []
    for entry in doc.get("resources") or []:
        name = str(entry.get("name", ""))
        if not name or "/" in name:
            continue  # a subresource
        out.append(ApiResource(group=group, version=version, plural=name,
                               namespaced=bool(entry.get("namespaced")),
                               kind=str(entry.get("kind", "")),
                               verbs=frozenset(entry.get("verbs") or ())))
    return out


async def discover(client: ApiClient) -> ApiResources:
    """Ask the server what it serves (legacy discovery; one request per group version).

    Raises :class:`~skiff.api.errors.StatusError` / :class:`TransportError` only
    when the group lists themselves cannot be read; a failing group version is
    recorded in :attr:`ApiResources.failed`.
    """
    result = ApiResources()
    core = await client.request("GET", "/api")
    group_list = await client.request("GET", "/apis")
    targets: list[tuple[str, str]] = [("", v) for v in (core.get("versions") or [])]
    result.preferred_versions[""] = targets[0][1] if targets else "v1"
    for g in group_list.get("groups") or []:
        name = str(g.get("name", ""))
        preferred = (g.get("preferredVersion") or {}).get("version")
        versions = [str(v.get("version", "")) for v in g.get("versions") or []]
        if preferred:
            result.preferred_versions[name] = str(preferred)
        elif versions:
            result.preferred_versions[name] = versions[0]
        targets.extend((name, v) for v in versions)

    async def one(group: str, version: str) -> list[ApiResource]:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = await client.request("GET", path)
        except (StatusError, TransportError) as e:
            result.failed[f"{group}/{version}" if group else version] = str(e)
            return []
        return _resources_of(group, version, doc)

    for found in await asyncio.gather(*(one(g, v) for g, v in targets)):
        result.resources.extend(found)
    return result


def resource_names(resources: Iterable[ApiResource]) -> list[str]:
    """``["deployments.apps", "pods", ...]`` sorted, for log lines and messages."""
    return sorted(str(r) for r in resources)
