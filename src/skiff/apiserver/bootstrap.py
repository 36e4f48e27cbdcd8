"""Objects every cluster starts with, created on API server start (idempotent).

* Namespaces ``default``, ``kube-system``, ``kube-public``, ``kube-node-lease``.
* PriorityClasses ``system-node-critical`` and ``system-cluster-critical``.
* Service ``default/kubernetes``: ClusterIP = the first address of the service
  CIDR, port 443 (``https``) -> 6443, labelled ``component=apiserver``,
  ``provider=kubernetes``.

Existing objects are left alone, so a restart changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from ..api.errors import StatusError
from .context import ServerContext
from .writes import WriteOptions, Writer

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MANAGER = WriteOptions(field_manager="skiff-apiserver")


async def _ensure(ctx: ServerContext, writer: Writer, group: str, plural: str, namespace: str,
                  obj: dict[str, Any]) -> None:
    info = next((r for r in ctx.registry if r.group == group and r.plural == plural), None)
    if info is None:
        return
    name = obj["metadata"]["name"]
    from .objects import object_key

    if await ctx.backend.get(object_key(info, namespace, name)) is not None:
        return
    try:
        await writer.create(info, namespace, obj, MANAGER, [])
    except StatusError as err:
        if err.code != 409:
            raise


async def bootstrap(ctx: ServerContext, writer: Writer, kubernetes_ip: str) -> None:
    from ..api.kinds.scheduling import system_priority_classes

    for ns in SYSTEM_NAMESPACES:
        await _ensure(ctx, writer, "", "namespaces", "",
                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for priority_class in system_priority_classes():
        await _ensure(ctx, writer, "scheduling.k8s.io", "priorityclasses", "", priority_class)
    await _ensure(ctx, writer, "", "services", "default", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": kubernetes_ip, "clusterIPs": [kubernetes_ip],
                 "sessionAffinity": "None",
                 "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}]},
    })
