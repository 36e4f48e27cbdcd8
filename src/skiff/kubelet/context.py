"""Everything a pod worker works with, in one place (built once by the Kubelet).

::

    NodeContext
      config        KubeletConfig: node name, directories, back-off, DNS
      client        the API client (pod deletion, PVC/PV reads, TokenRequest)
      runtime       containers and sandboxes (runtime.interface.Runtime)
      network       pod networking (podnetworking.PodNetworking)
      images        ImagePuller        volumes   VolumeManager
      probes        ProbeManager       statuses  StatusManager (the one status writer)
      recorder      Events             restarts  BackOff of container restarts
      config_map / secret / services   reads from the kubelet's informer caches
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client.clock import Clock
from ..client.rest import ApiClient
from ..controllers.events import EventRecorder
from .imagepull import ImagePuller
from .lifecycle import DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, BackOff
from .podnetworking import PodNetworking
from .probes import ProbeManager
from .runtime.interface import Runtime
from .statusmanager import StatusManager
from .volumes import VolumeManager

Obj = dict[str, Any]
EventSink = Callable[[str, str, str], None]
COMPONENT = "kubelet"


@dataclass(frozen=True)
class KubeletConfig:
    node_name: str
    data_dir: Path
    backoff_base: float = DEFAULT_BACKOFF_BASE      # CrashLoopBackOff / ImagePullBackOff start
    backoff_cap: float = DEFAULT_BACKOFF_CAP
    retry_interval: float = 2.0                     # FailedMount, CreateContainerConfigError ...
    cluster_dns: Sequence[str] = ()                 # nameservers for dnsPolicy ClusterFirst
    cluster_domain: str = "cluster.local"
    minimum_grace: float = 2.0                      # shortest stop window (as Kubernetes)

    @property
    def pods_dir(self) -> Path:
        return self.data_dir / "pods"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def pod_logs_dir(self, meta: Obj) -> Path:
        """A pod's container logs, ``<namespace>_<name>_<uid>/<container>/<restart>.log``
        (the layout of a kubelet's /var/log/pods).  They go with the pod."""
        return self.logs_dir / f"{meta.get('namespace', '')}_{meta['name']}_{meta['uid']}"

    def logged_pods(self) -> dict[str, Path]:
        """The pods with a log directory (found again after a restart), by UID."""
        try:
            names = os.listdir(self.logs_dir)
        except FileNotFoundError:
            return {}
        return {name.rsplit("_", 1)[-1]: self.logs_dir / name for name in names}


@dataclass
class NodeContext:
    config: KubeletConfig
    client: ApiClient
    clock: Clock
    runtime: Runtime
    network: PodNetworking
    images: ImagePuller
    volumes: VolumeManager
    probes: ProbeManager
    statuses: StatusManager
    recorder: EventRecorder
    restarts: BackOff
    config_map: Callable[[str, str], Obj | None]
    secret: Callable[[str, str], Obj | None]
    services: Callable[[], list[Obj]]
    node_allocatable: Mapping[str, str] = field(default_factory=dict)
    memory_capacity: int = 1 << 30                  # bytes (for QoS-based oom_score_adj)
    #: Pods making progress (sandbox, volumes, container starts) at once; FIFO, so that
    #: under a burst the first pods run early instead of all finishing together.
    start_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))

    def events(self, pod: Obj) -> EventSink:
        """An event sink about ``pod`` (never blocks, never raises)."""
        meta = pod.get("metadata") or {}
        involved = {"kind": "Pod", "apiVersion": "v1",
                    "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion")
                                 if k in meta}}

        def emit(type_: str, reason: str, message: str) -> None:
            self.recorder.event(involved, type_, reason, message, component=COMPONENT)

        return emit
