"""The ``apps/v1`` group: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

One module per kind; :mod:`.workload` holds the selector/template rules they
share, :mod:`.selector` the LabelSelector helpers and :mod:`.rollout` the
generation bookkeeping (also used by batch, networking and policy kinds).
"""

from __future__ import annotations

from ...resource import ResourceInfo
from .controllerrevision import CONTROLLERREVISIONS
from .daemonset import DAEMONSETS
from .deployment import DEPLOYMENTS
from .replicaset import REPLICASETS
from .statefulset import STATEFULSETS

RESOURCES: tuple[ResourceInfo, ...] = (
    DEPLOYMENTS, REPLICASETS, STATEFULSETS, DAEMONSETS, CONTROLLERREVISIONS,
)

__all__ = ["RESOURCES", "DEPLOYMENTS", "REPLICASETS", "STATEFULSETS", "DAEMONSETS", "CONTROLLERREVISIONS"]
