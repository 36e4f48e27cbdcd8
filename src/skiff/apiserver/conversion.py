"""Resources served in more than one form over one set of stored objects.

Kubernetes stores each resource once and converts at the edge: HorizontalPodAutoscalers
are stored as ``autoscaling/v2`` and also served as ``autoscaling/v1``; Events
are stored as ``core/v1`` and also served as ``events.k8s.io/v1``.  A
:class:`StorageView` says where a served resource's objects live and how to
convert them::

    request on the view ──▶ body ──to_storage──▶ generic write path (storage kind)
                                                        │
    response  ◀──from_storage── stored object ◀─────────┘
    list/watch: stored objects ──from_storage──▶ selectors ──▶ client

The conversion functions belong to the kind modules (:mod:`skiff.api.kinds`);
the table below only connects them.  A module that is not there leaves its
view out (the resource then stores its objects on its own).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..api.kinds import Registry
from ..api.resource import ResourceInfo

Obj = dict[str, Any]

#: served (group, version, plural) -> stored (group, version, plural), converters
#: (module, served -> stored function, stored -> served function).
KNOWN_VIEWS: tuple[tuple[tuple[str, str, str], tuple[str, str, str], str, str, str], ...] = (
    (("autoscaling", "v1", "horizontalpodautoscalers"), ("autoscaling", "v2", "horizontalpodautoscalers"),
     "skiff.api.kinds.autoscaling", "hpa_v1_to_v2", "hpa_v2_to_v1"),
    (("events.k8s.io", "v1", "events"), ("", "v1", "events"),
     "skiff.api.kinds.events", "event_to_core", "core_to_event"),
)


@dataclass(frozen=True)
class StorageView:
    """A served resource whose objects are stored as another resource."""

    served: ResourceInfo
    storage: ResourceInfo
    to_storage: Callable[[Obj], Obj]
    from_storage: Callable[[Obj], Obj]

    def present(self, obj: Obj) -> Obj:
        """A stored object as the clients of this view see it."""
        return self.from_storage(obj)

    def store(self, obj: Obj) -> Obj:
        """A client's object in the stored form."""
        return self.to_storage(obj)


def storage_views(registry: Registry) -> dict[tuple[str, str, str], StorageView]:
    views: dict[tuple[str, str, str], StorageView] = {}
    for served_id, stored_id, module_name, to_name, from_name in KNOWN_VIEWS:
        served = registry.get(*served_id)
        stored = registry.get(*stored_id)
        if served is None or stored is None:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        to_storage = getattr(module, to_name, None)
        from_storage = getattr(module, from_name, None)
        if to_storage is None or from_storage is None:
            continue
        views[served_id] = StorageView(served, stored, to_storage, from_storage)
    return views
