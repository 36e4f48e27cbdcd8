"""The state one API server shares between its handlers.

Built once by :func:`skiff.apiserver.app.make_app`; nothing here is global,
so several servers (tests) can live in one process.

The served kinds (``registry``) change while the server runs when
CustomResourceDefinitions come and go: :meth:`ServerContext.serve` installs a new
registry and bumps ``registry_generation``, which discovery and the OpenAPI
documents compare to know when to rebuild.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..api.kinds import Registry
from ..api.resource import ResourceInfo
from ..api.schema import Schema
from ..storage.interface import Backend
from .hooks import DEFAULT_HOOKS, KindHooks
from .objects import ObjectStore

if TYPE_CHECKING:
    from .admission import Admission
    from .conversion import StorageView
    from .readonly import ReadOnlySource
    from .webhooks import WebhookAdmission
    from .watchcache import WatchCache

Obj = dict[str, Any]


@dataclass
class ServerContext:
    backend: Backend
    registry: Registry
    schema: Schema | None
    clock: Callable[[], float] = time.time
    hooks: dict[tuple[str, str], KindHooks] = field(default_factory=dict)
    bookmark_interval: float = 60.0  # seconds between watch BOOKMARK events
    watch_cache: "WatchCache | None" = None
    #: create-only resources answered without storing: (group, plural) -> handler (reviews.py)
    reviews: dict[tuple[str, str], Callable[[Obj], Obj]] = field(default_factory=dict)
    #: resources read from a component's memory: (group, plural) -> source (readonly.py)
    read_only: "dict[tuple[str, str], ReadOnlySource]" = field(default_factory=dict)
    #: LimitRanger and ResourceQuota admission, run by the write path after the kind hooks
    admission: "Admission | None" = None
    #: admission webhooks, run by the write path around the kind's validation
    webhooks: "WebhookAdmission | None" = None
    #: custom resources' served versions stored as another version: (group, version, plural) -> view
    custom_views: "dict[tuple[str, str, str], StorageView]" = field(default_factory=dict)
    #: grows each time :meth:`serve` installs another registry
    registry_generation: int = 0
    store: ObjectStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = ObjectStore(self.backend)

    def serve(self, registry: Registry, custom_views: "dict[tuple[str, str, str], StorageView]") -> None:
        """Serve ``registry`` from now on (the built-in kinds plus established custom ones)."""
        self.registry = registry
        self.custom_views = custom_views
        self.registry_generation += 1

    def hooks_for(self, info: ResourceInfo) -> KindHooks:
        return self.hooks.get((info.group, info.plural), DEFAULT_HOOKS)

    def decode_protobuf(self, body: bytes) -> Obj:
        if self.schema is None:
            from ..api.errors import unsupported_media_type

            raise unsupported_media_type("application/vnd.kubernetes.protobuf")
        from ..api.protobuf import decode_object

        return decode_object(body, self.schema)
