"""Helpers of the persistent-storage component tests (no tests here).

:func:`storage_cluster` is the in-process cluster of controller_cluster.py with the
storage controllers only, the provisioner writing under ``tmp_path/volumes``, and
either the test binder (round-robin, no volume awareness) or -- ``scheduler=True``
-- the real scheduler with its VolumeBinding plugin in the binder's place.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

import controller_cluster
from controller_cluster import Cluster
from skiff.client.rest import ApiClient
from skiff.controllers.persistentvolume import with_volumes_dir
from skiff.scheduler.scheduler import Scheduler

Obj = dict[str, Any]

STORAGE_CONTROLLERS = ["persistentvolume-binder", "pvc-protection", "pv-protection", "local-path-provisioner"]


async def _run_scheduler(client: ApiClient, nodes: list[str]) -> None:
    await Scheduler(client).run()


@asynccontextmanager
async def storage_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, nodes: int = 2,
                          scheduler: bool = False, more: tuple[str, ...] = ()) -> AsyncIterator[Cluster]:
    if scheduler:
        monkeypatch.setattr(controller_cluster, "_bind_pending", _run_scheduler)
    cluster = Cluster(tmp_path, nodes=nodes, controllers=[*STORAGE_CONTROLLERS, *more])
    cluster.known = with_volumes_dir(cluster.known, tmp_path / "volumes")
    async with cluster:
        yield cluster


def claim(name: str, size: str = "1Gi", *, cls: str | None = None, modes: tuple[str, ...] = ("ReadWriteOnce",),
          **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                 "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec}}
    if cls is not None:
        body["spec"]["storageClassName"] = cls
    return body


def volume(name: str, size: str, path: Path, *, cls: str = "", policy: str = "Retain",
           labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
                 "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                          "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": str(path)}, **spec}}
    if cls:
        body["spec"]["storageClassName"] = cls
    return body


def pod(name: str, *claims: str, node_name: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": "busybox",
                                 "volumeMounts": [{"name": c, "mountPath": f"/{c}"} for c in claims]}],
                 "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def phase(obj: Obj | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def by_name(items: list[Obj], name: str) -> Obj | None:
    return next((o for o in items if o["metadata"]["name"] == name), None)


def reasons(events: list[Obj], name: str) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in events if e["involvedObject"].get("name") == name]


async def settle() -> None:
    """Let in-flight handlers run (used only before asserting that nothing happened)."""
    for _ in range(3):
        await asyncio.sleep(0)
