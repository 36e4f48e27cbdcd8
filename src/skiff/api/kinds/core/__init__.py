"""The core (``""``) group, version v1: Pods, Services, Nodes, Namespaces ...

Each module defines one kind or a small family of kinds as
:class:`~skiff.api.resource.ResourceInfo` records; :data:`RESOURCES` lists them all
for :func:`skiff.api.kinds.builtin_registry`.
"""

from __future__ import annotations

from ...resource import ResourceInfo
from .config import CONFIGMAPS, SECRETS
from .namespaces import NAMESPACES
from .pods import BINDINGS, POD_TEMPLATES, PODS

RESOURCES: tuple[ResourceInfo, ...] = (
    BINDINGS,
    CONFIGMAPS,
    NAMESPACES,
    PODS,
    POD_TEMPLATES,
    SECRETS,
)
