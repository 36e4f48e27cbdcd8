"""Small builders for node and pod objects used by the scheduler tests."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: int = 110, *,
         labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
         unschedulable: bool = False, extra: dict[str, str] | None = None,
         images: list[tuple[list[str], int]] | None = None, ephemeral: str | None = None) -> Obj:
    alloc: dict[str, Any] = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    if ephemeral:
        alloc["ephemeral-storage"] = ephemeral
    alloc.update(extra or {})
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    status: Obj = {"allocatable": alloc, "capacity": dict(alloc)}
    if images:
        status["images"] = [{"names": names, "sizeBytes": size} for names, size in images]
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": status,
    }


def pod(name: str, cpu: str | None = None, memory: str | None = None, *, namespace: str = "default",
        node_name: str = "", labels: dict[str, str] | None = None, priority: int | None = None,
        spec: Obj | None = None, extra: dict[str, str] | None = None, image: str = "busybox",
        start_time: str = "", deleting: bool = False, **spec_fields: Any) -> Obj:
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    requests.update(extra or {})
    container: Obj = {"name": "c", "image": image}
    if requests:
        container["resources"] = {"requests": requests}
    s: Obj = {"containers": [container], "schedulerName": "default-scheduler", **(spec or {})}
    for k, v in spec_fields.items():
        s[k] = v
    if node_name:
        s["nodeName"] = node_name
    if priority is not None:
        s["priority"] = priority
    meta: Obj = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: Obj = {"phase": "Pending"}
    if start_time:
        status["startTime"] = start_time
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": s, "status": status}
