"""Which resource a request is about, and the URL path it lives at.

A :class:`Resource` is the client's view of a kind: group, version, plural and
whether it is namespaced.  The API server's :class:`~skiff.api.resource.ResourceInfo`
has the same four attributes, so either can be passed wherever the client asks
for a :class:`ResourceLike`.

Paths follow the Kubernetes REST layout::

    core:   /api/v1[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]
    groups: /apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]

The constants at the bottom are the resources skiff's own components use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote


class ResourceLike(Protocol):
    @property
    def group(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def plural(self) -> str: ...

    @property
    def namespaced(self) -> bool: ...


@dataclass(frozen=True)
class Resource:
    """A served resource, e.g. ``Resource("apps", "v1", "deployments")``."""

    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def resource_path(res: ResourceLike, *, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """The URL path for a collection (no ``name``) or one object.

    ``namespace`` is ignored for cluster-scoped resources; for namespaced ones
    ``None`` means "all namespaces" (only meaningful for list and watch).
    """
    prefix = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    parts = [prefix]
    if res.namespaced and namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(res.plural)
    if name is not None:
        if not name:
            raise ValueError(f"an object of {res.plural} needs a non-empty name")
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
    elif subresource:
        raise ValueError("a subresource needs an object name")
    return "/".join(parts)


NAMESPACES = Resource("", "v1", "namespaces", namespaced=False, kind="Namespace")
NODES = Resource("", "v1", "nodes", namespaced=False, kind="Node")
PODS = Resource("", "v1", "pods", kind="Pod")
SERVICES = Resource("", "v1", "services", kind="Service")
ENDPOINTS = Resource("", "v1", "endpoints", kind="Endpoints")
CONFIGMAPS = Resource("", "v1", "configmaps", kind="ConfigMap")
SECRETS = Resource("", "v1", "secrets", kind="Secret")
EVENTS = Resource("", "v1", "events", kind="Event")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", kind="ServiceAccount")
PERSISTENTVOLUMES = Resource("", "v1", "persistentvolumes", namespaced=False, kind="PersistentVolume")
PERSISTENTVOLUMECLAIMS = Resource("", "v1", "persistentvolumeclaims", kind="PersistentVolumeClaim")
LEASES = Resource("coordination.k8s.io", "v1", "leases", kind="Lease")
DEPLOYMENTS = Resource("apps", "v1", "deployments", kind="Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", kind="ReplicaSet")
STATEFULSETS = Resource("apps", "v1", "statefulsets", kind="StatefulSet")
DAEMONSETS = Resource("apps", "v1", "daemonsets", kind="DaemonSet")
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions", kind="ControllerRevision")
JOBS = Resource("batch", "v1", "jobs", kind="Job")
CRONJOBS = Resource("batch", "v1", "cronjobs", kind="CronJob")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", kind="EndpointSlice")
