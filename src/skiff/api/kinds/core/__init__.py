"""The core (``""``) group, version v1: Pods, Services, Nodes, Namespaces ...

Each module defines one kind or a small family of kinds as
:class:`~skiff.api.resource.ResourceInfo` records; :data:`RESOURCES` lists them all
for :func:`skiff.api.kinds.builtin_registry`, in the order discovery lists them.
"""

from __future__ import annotations

from ...resource import ResourceInfo
from .componentstatuses import COMPONENT_STATUSES
from .config import CONFIGMAPS, SECRETS
from .events import EVENTS
from .limits import LIMIT_RANGES, RESOURCE_QUOTAS
from .namespaces import NAMESPACES
from .nodes import NODES
from .pods import BINDINGS, POD_TEMPLATES, PODS
from .replicationcontrollers import REPLICATION_CONTROLLERS
from .serviceaccounts import SERVICE_ACCOUNTS
from .services import ENDPOINTS, SERVICES
from .volumes import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES

RESOURCES: tuple[ResourceInfo, ...] = (
    BINDINGS,
    COMPONENT_STATUSES,
    CONFIGMAPS,
    ENDPOINTS,
    EVENTS,
    LIMIT_RANGES,
    NAMESPACES,
    NODES,
    PERSISTENT_VOLUME_CLAIMS,
    PERSISTENT_VOLUMES,
    PODS,
    POD_TEMPLATES,
    REPLICATION_CONTROLLERS,
    RESOURCE_QUOTAS,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVICES,
)
