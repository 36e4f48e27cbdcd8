"""Discovery documents, computed once from the :class:`Registry` and served as bytes.

Legacy discovery (what the Python client and old kubectls read)::

    /api              APIVersions         {"versions": ["v1"]}
    /apis             APIGroupList        groups, their versions, preferredVersion
    /apis/<g>         APIGroup
    /api/v1, /apis/<g>/<v>   APIResourceList  resources and subresources ("deployments/scale")

Aggregated discovery (kubectl >= 1.26): the same ``/api`` and ``/apis`` answer an
``APIGroupDiscoveryList`` when the Accept header asks for
``as=APIGroupDiscoveryList`` in ``apidiscovery.k8s.io`` v2 or v2beta1; the
response Content-Type names the version chosen, since client-go picks its
decoder from it.  v2 is only answered when v2 is asked for.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from ..api.kinds import Registry
from ..api.resource import ResourceInfo, Subresource

Obj = dict[str, Any]

DISCOVERY_GROUP = "apidiscovery.k8s.io"


def aggregated_content_type(version: str) -> str:
    return f"application/json;g={DISCOVERY_GROUP};v={version};as=APIGroupDiscoveryList"


def subresources_of(info: ResourceInfo) -> list[Subresource]:
    """Declared subresources plus the implied ``status``/``scale`` ones."""
    subs = list(info.subresources)
    names = {s.name for s in subs}
    if info.has_status and "status" not in names:
        subs.append(Subresource("status", info.kind))
    if info.scale is not None and "scale" not in names:
        subs.append(Subresource("scale", "Scale", group="autoscaling", version="v1"))
    return sorted(subs, key=lambda s: s.name)


def storage_version_hash(info: ResourceInfo) -> str:
    digest = hashlib.sha256(f"{info.group}/{info.version}/{info.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def api_resource(info: ResourceInfo) -> list[Obj]:
    """Legacy APIResource entries: the resource, then each subresource."""
    main: Obj = {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                 "kind": info.kind, "verbs": list(info.verbs)}
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    main["storageVersionHash"] = storage_version_hash(info)
    out = [main]
    for sub in subresources_of(info):
        entry: Obj = {"name": f"{info.plural}/{sub.name}", "singularName": "",
                      "namespaced": info.namespaced}
        if sub.group or sub.version:
            entry["group"] = sub.group
            entry["version"] = sub.version or "v1"
        entry["kind"] = sub.kind
        entry["verbs"] = list(sub.verbs)
        out.append(entry)
    return out


def resource_discovery(info: ResourceInfo) -> Obj:
    """An aggregated-discovery APIResourceDiscovery entry."""
    out: Obj = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        out["shortNames"] = list(info.short_names)
    if info.categories:
        out["categories"] = list(info.categories)
    subs = []
    for sub in subresources_of(info):
        subs.append({"subresource": sub.name,
                     "responseKind": {"group": sub.group if (sub.group or sub.version) else info.group,
                                      "version": sub.version or info.version, "kind": sub.kind},
                     "verbs": list(sub.verbs)})
    if subs:
        out["subresources"] = subs
    return out


class Discovery:
    """Every discovery answer, pre-encoded."""

    def __init__(self, registry: Registry) -> None:
        gvs = registry.group_versions()
        self.group_versions = set(gvs)
        groups: dict[str, list[str]] = {}
        for g, v in gvs:
            groups.setdefault(g, []).append(v)
        self.groups = set(groups)
        self.api_versions = orjson.dumps({"kind": "APIVersions", "versions": groups.get("", []),
                                          "serverAddressByClientCIDRs": None})
        group_objs = {g: self._group(g, vs) for g, vs in groups.items() if g}
        self.group_list = orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": list(group_objs.values())})
        self.group = {g: orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **obj})
                      for g, obj in group_objs.items()}
        self.resource_list = {
            (g, v): orjson.dumps({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _gv(g, v),
                "resources": [e for r in registry.resources(g, v) for e in api_resource(r)],
            })
            for g, v in gvs
        }
        self.aggregated: dict[tuple[str, str], bytes] = {}
        for disc_version in ("v2", "v2beta1"):
            for prefix in ("api", "apis"):
                items = [self._group_discovery(registry, g, vs) for g, vs in groups.items()
                         if (g == "") == (prefix == "api")]
                self.aggregated[(disc_version, prefix)] = orjson.dumps({
                    "kind": "APIGroupDiscoveryList", "apiVersion": f"{DISCOVERY_GROUP}/{disc_version}",
                    "metadata": {}, "items": items})

    @staticmethod
    def _group(group: str, versions: list[str]) -> Obj:
        entries = [{"groupVersion": _gv(group, v), "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    @staticmethod
    def _group_discovery(registry: Registry, group: str, versions: list[str]) -> Obj:
        return {
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [resource_discovery(r) for r in registry.resources(group, v)]}
                         for v in versions],
        }
