"""A cluster for the StatefulSet and DaemonSet controller tests.

:class:`WorkloadCluster` = the real API server in-process (housekeeping_support's
:class:`ApiServer`, with a kubeconfig for the real kubectl) + simulated nodes
(a FakeNodeFleet that also adopts Nodes created later with the fake label) + the
real default scheduler (DaemonSet pods are placed by their node affinity) + the
controllers under test, the garbage collector, and the pod garbage collector with
short periods (it removes pods of deleted nodes, as in Kubernetes), and the storage
controllers (claims of volumeClaimTemplates get local-path volumes under tmp_path).

Waiting is always on watches (:class:`controller_cluster.Observed`), with deadlines.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from controller_cluster import Observed
from housekeeping_support import ApiServer, background, running_controllers
from skiff.client.resources import NODES, ResourceLike
from skiff.controllers.daemonset import DaemonSetsController
from skiff.controllers.gc import GarbageCollector
from skiff.controllers.persistentvolume import (LocalPathProvisioner, PersistentVolumeController,
                                                PVCProtectionController, PVProtectionController, with_volumes_dir)
from skiff.controllers.podgc import PodGCController
from skiff.controllers.reconciler import ControllerContext
from skiff.controllers.statefulset import StatefulSetController
from skiff.kubelet.fake import FAKE_NODE_LABEL, FakeNodeAgent, FakeNodeFleet, fake_node_specs
from skiff.scheduler.scheduler import run_scheduler

Obj = dict[str, Any]
DEADLINE = 15.0
#: A pod with this annotation runs on a fake node but never becomes Ready.
NEVER_READY = {"skiff.dev/fake-ready": "false"}


def _fast_podgc(ctx: ControllerContext) -> PodGCController:
    return PodGCController(ctx, gc_period=0.2, quarantine=0.2)


CONTROLLERS = (("statefulset", StatefulSetController), ("daemonset", DaemonSetsController),
               ("garbagecollector", GarbageCollector), ("podgc", _fast_podgc))
STORAGE_CONTROLLERS = (("persistentvolume-binder", PersistentVolumeController),
                       ("pvc-protection", PVCProtectionController), ("pv-protection", PVProtectionController),
                       ("local-path-provisioner", LocalPathProvisioner))


class WorkloadCluster:
    """``async with WorkloadCluster(tmp_path) as c``: ``c.client``, ``c.kubectl``, ``c.observe``."""

    def __init__(self, tmp_path: Path, *, nodes: int = 3,
                 taints: Sequence[Sequence[Mapping[str, Any]]] | None = None,
                 labels: Sequence[Mapping[str, str]] | None = None) -> None:
        self.tmp_path = tmp_path
        self.specs = fake_node_specs(nodes, taints_per_node=taints, labels_per_node=labels)
        self._stack = contextlib.AsyncExitStack()
        self.api: ApiServer

    @property
    def client(self) -> Any:
        return self.api.client

    @property
    def node_names(self) -> list[str]:
        return [s.name for s in self.specs]

    async def __aenter__(self) -> "WorkloadCluster":
        try:
            self.api = await self._stack.enter_async_context(ApiServer(self.tmp_path))
            agents = [FakeNodeAgent(self.client, spec) for spec in self.specs]
            fleet = FakeNodeFleet(self.client, agents, workers=4, adopt=True)
            await self._stack.enter_async_context(background(fleet.run()))
            nodes = await self.observe(NODES, namespace=None)
            await nodes.wait_for(lambda items: len(items) >= len(self.specs), DEADLINE, "nodes")
            await self._stack.enter_async_context(background(run_scheduler(self.client)))
            storage = with_volumes_dir(STORAGE_CONTROLLERS, self.tmp_path / "volumes")
            await self._stack.enter_async_context(running_controllers(self.client, (*CONTROLLERS, *storage)))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def observe(self, resource: ResourceLike, namespace: str | None = "default",
                      label_selector: str | None = None) -> Observed:
        """A watched collection, stopped when the cluster closes."""
        obs = Observed(self.client, resource, namespace, label_selector)
        await self._stack.enter_async_context(background(obs.informer.run()))
        await obs.wait_for(lambda _: True, DEADLINE, "the first list")
        return obs

    async def kubectl(self, *args: str, timeout: float = DEADLINE) -> str:
        """Run the real kubectl; its output (a non-zero exit fails the test)."""
        code, out, err = await self.api.kubectl(*args, timeout=timeout)
        assert code == 0, f"kubectl {' '.join(args)} -> {code}\n{out}\n{err}"
        return out

    async def add_node(self, name: str, *, labels: Mapping[str, str] | None = None) -> Obj:
        """A new Node the fake fleet adopts and serves (a machine joining)."""
        node: Obj = await self.client.create(NODES, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {FAKE_NODE_LABEL: "true", **(labels or {})}}})
        return node


# -- objects -------------------------------------------------------------------------------


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name", ""))


def is_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or [])


def image_of(pod: Obj) -> str:
    return str(pod["spec"]["containers"][0]["image"])


def pod_template(app: str, image: str = "nginx:1.26", annotations: Mapping[str, str] | None = None,
                 **spec: Any) -> Obj:
    tmeta: Obj = {"labels": {"app": app}}
    if annotations:
        tmeta["annotations"] = dict(annotations)
    return {"metadata": tmeta, "spec": {"containers": [{"name": "c", "image": image}], **spec}}


def by_name(items: list[Obj]) -> dict[str, Obj]:
    return {name_of(o): o for o in items}


class EventLog:
    """Every change an :class:`Observed` delivers, in order: (sequence, type, object)."""

    def __init__(self, obs: Observed) -> None:
        self.entries: list[tuple[int, str, Obj]] = []
        obs.on_change(lambda type_, obj: self.entries.append((len(self.entries), type_, obj)))

    def first(self, check: Callable[[str, Obj], bool]) -> int:
        """Sequence number of the first change satisfying ``check``."""
        for seq, type_, obj in self.entries:
            if check(type_, obj):
                return seq
        raise AssertionError(f"no change satisfies {check}")


__all__ = ["WorkloadCluster", "EventLog", "NEVER_READY", "DEADLINE", "meta", "name_of",
           "is_ready", "image_of", "pod_template", "by_name"]
