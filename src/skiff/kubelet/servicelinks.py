"""Service discovery by environment: the variables a container starts with.

Before cluster DNS, and still today, the kubelet tells each container where
the Services of its namespace are, through environment variables computed
when the container starts.  For Service ``redis-primary`` with ClusterIP
10.0.0.11 and port ``6379/TCP`` named ``redis``::

    REDIS_PRIMARY_SERVICE_HOST=10.0.0.11
    REDIS_PRIMARY_SERVICE_PORT=6379            (the first port)
    REDIS_PRIMARY_SERVICE_PORT_REDIS=6379      (every named port)
    REDIS_PRIMARY_PORT=tcp://10.0.0.11:6379    (Docker links: the first port ...)
    REDIS_PRIMARY_PORT_6379_TCP=tcp://10.0.0.11:6379      (... and each port)
    REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp
    REDIS_PRIMARY_PORT_6379_TCP_PORT=6379
    REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.0.0.11

Names are the Service name upper-cased with dashes turned into underscores.
Which Services count, as the kubelet decides:

* only Services with a cluster IP (not headless, not ExternalName);
* the pod's own namespace's Services when ``enableServiceLinks`` (default true);
* always the ``kubernetes`` Service of the ``default`` namespace (the API
  server), unless the pod's namespace has its own Service of that name.

Pure: Services in, ``[{"name", "value"}]`` out (sorted by Service name, then
in the kubelet's order per Service).  The kubelet appends these after the
container's own ``env`` (which wins on a name clash) and uses them to expand
``$(VAR)`` references.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]

#: Services the kubelet always exposes, from the default namespace.
MASTER_SERVICES = frozenset({"kubernetes"})
DEFAULT_NAMESPACE = "default"


def env_name(service_name: str) -> str:
    """``redis-primary`` -> ``REDIS_PRIMARY``."""
    return service_name.replace("-", "_").upper()


def _has_cluster_ip(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _variables(service: Obj) -> list[dict[str, str]]:
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports:
        return []
    ip = str(spec["clusterIP"])
    prefix = env_name(str(service["metadata"]["name"]))
    out = [{"name": f"{prefix}_SERVICE_HOST", "value": ip},
           {"name": f"{prefix}_SERVICE_PORT", "value": str(ports[0]["port"])}]
    for port in ports:
        if port.get("name"):
            out.append({"name": f"{prefix}_SERVICE_PORT_{env_name(port['name'])}",
                        "value": str(port["port"])})
    for i, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        url = f"{protocol.lower()}://{_host_port(ip, int(port['port']))}"
        if i == 0:
            out.append({"name": f"{prefix}_PORT", "value": url})
        base = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        out += [{"name": base, "value": url},
                {"name": f"{base}_PROTO", "value": protocol.lower()},
                {"name": f"{base}_PORT", "value": str(port["port"])},
                {"name": f"{base}_ADDR", "value": ip}]
    return out


def service_env(services: Iterable[Obj], namespace: str,
                enable_service_links: bool = True) -> list[dict[str, str]]:
    """The service-link variables for a pod in ``namespace`` (see module docstring)."""
    chosen: dict[str, Obj] = {}
    for service in services:
        meta = service.get("metadata") or {}
        name = str(meta.get("name") or "")
        if not _has_cluster_ip(service):
            continue
        ns = meta.get("namespace") or ""
        if ns == DEFAULT_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)  # the namespace's own one, if any, wins
        elif ns == namespace and enable_service_links:
            chosen[name] = service
    out: list[dict[str, str]] = []
    for name in sorted(chosen):
        out += _variables(chosen[name])
    return out
