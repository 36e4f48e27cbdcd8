"""The controller manager: every controller in one process, sharing one set of informers.

Like kube-controller-manager, it builds each enabled controller from the
explicit list :data:`CONTROLLERS`, hands them one shared
:class:`~skiff.client.factory.InformerFactory` (so N controllers interested in
pods cause one pod watch, not N) and runs everything in one TaskGroup until
cancelled::

    run_controllers(client)
      ├─ InformerFactory.run()      every informer any controller asked for
      ├─ EventRecorder.run()        writes the controllers' Events
      └─ controller.run() ...       waits for its caches, then N workers each

Which controllers run follows ``--controllers`` semantics: ``None`` = all;
otherwise names, where ``"*"`` means all and ``"-name"`` disables one, e.g.
``["*", "-deployment"]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence

from ..client.clock import Clock, RealClock
from ..client.factory import InformerFactory
from ..client.rest import ApiClient
from .cronjob import CronJobController
from .daemonset import DaemonSetsController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .endpoints import EndpointsController
from .endpointslice import EndpointSliceController
from .endpointslicemirroring import EndpointSliceMirroringController
from .gc import GarbageCollector
from .job import JobController
from .namespace import NamespaceController
from .nodelifecycle import NodeLifecycleController, TaintEvictionController
from .podautoscaler import HorizontalPodAutoscalerController
from .persistentvolume import (LocalPathProvisioner, PersistentVolumeController, PVCProtectionController,
                               PVProtectionController)
from .podgc import PodGCController
from .resourcequota import ResourceQuotaController
from .serviceaccount import ServiceAccountsController
from .statefulset import StatefulSetController
from .ttlafterfinished import TTLAfterFinishedController
from .events import EventRecorder
from .reconciler import Controller, ControllerContext
from .replicaset import ReplicaSetController, ReplicationControllerController

ControllerFactory = Callable[[ControllerContext], Controller]

#: Every controller skiff runs, by ``--controllers`` name, in start order.
CONTROLLERS: tuple[tuple[str, ControllerFactory], ...] = (
    ("replicaset", ReplicaSetController),
    ("replicationcontroller", ReplicationControllerController),
    ("deployment", DeploymentController),
    ("garbagecollector", GarbageCollector),
    ("namespace", NamespaceController),
    ("serviceaccount", ServiceAccountsController),
    ("podgc", PodGCController),
    ("nodelifecycle", NodeLifecycleController),
    ("taint-eviction-controller", TaintEvictionController),
    ("ttl-after-finished", TTLAfterFinishedController),
    ("disruption", DisruptionController),
    ("endpoint", EndpointsController),
    ("endpointslice", EndpointSliceController),
    ("endpointslicemirroring", EndpointSliceMirroringController),
    ("job", JobController),
    ("cronjob", CronJobController),
    ("statefulset", StatefulSetController),
    ("daemonset", DaemonSetsController),
    ("horizontalpodautoscaling", HorizontalPodAutoscalerController),
    ("resourcequota", ResourceQuotaController),
    ("persistentvolume-binder", PersistentVolumeController),
    ("pvc-protection", PVCProtectionController),
    ("pv-protection", PVProtectionController),
    ("local-path-provisioner", LocalPathProvisioner),
)


def enabled_names(enabled: Iterable[str] | None,
                  known: Sequence[tuple[str, ControllerFactory]] = CONTROLLERS) -> list[str]:
    """The controller names ``enabled`` selects (``--controllers`` semantics)."""
    names = [name for name, _ in known]
    if enabled is None:
        return names
    wanted = list(enabled)
    unknown = [w.lstrip("-") for w in wanted if w != "*" and w.lstrip("-") not in names]
    if unknown:
        raise ValueError(f"unknown controllers: {', '.join(unknown)}")
    everything = "*" in wanted
    disabled = {w[1:] for w in wanted if w.startswith("-")}
    return [n for n in names if n not in disabled and (everything or n in wanted)]


def build_controllers(ctx: ControllerContext, enabled: Iterable[str] | None = None,
                      known: Sequence[tuple[str, ControllerFactory]] = CONTROLLERS
                      ) -> list[Controller]:
    """Construct the enabled controllers (they register their informers and handlers)."""
    chosen = set(enabled_names(enabled, known))
    return [factory(ctx) for name, factory in known if name in chosen]


async def run_controllers(client: ApiClient, *, enabled: Iterable[str] | None = None,
                          clock: Clock | None = None,
                          informers: InformerFactory | None = None,
                          started: asyncio.Event | None = None,
                          known: Sequence[tuple[str, ControllerFactory]] = CONTROLLERS) -> None:
    """Run the enabled controllers until cancelled.

    ``informers`` lets a caller share its factory with other components (it is run
    here unless the caller runs it already - pass one that is not yet running).
    ``started`` is set once every controller's caches have synced.
    """
    clock = clock or RealClock()
    factory = informers or InformerFactory(client)
    recorder = EventRecorder(client, clock=clock)
    ctx = ControllerContext(client=client, informers=factory, clock=clock, recorder=recorder)
    controllers = build_controllers(ctx, enabled, known)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(factory.run(), name="controller-informers")
            tg.create_task(recorder.run(), name="controller-events")
            for controller in controllers:
                tg.create_task(controller.run(), name=f"controller-{controller.name}")
            if started is not None:
                await asyncio.gather(*(c.wait_synced() for c in controllers))
                started.set()
    finally:
        factory.stop()
