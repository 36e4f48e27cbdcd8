"""The kubelet: one node's agent, running the pods bound to it as real containers.

::

    run_kubelet(client, node_name=..., data_dir=...)
      │ runtime, image store, pod network set up (adopting what a previous run left)
      │ Node registered (capacity/allocatable from the machine, addresses, nodeInfo,
      │ conditions), Lease in kube-node-lease
      ├─ informers: pods with spec.nodeName=<node> (the only pods it sees),
      │             ConfigMaps, Secrets, Services (env, volumes, service links)
      ├─ adoption, once the caches are filled: sandboxes and containers in the runtime
      │   are matched to pods by UID and handed to their workers; the rest (pods
      │   deleted while the kubelet was down) is killed and removed, with its network
      │   and volumes
      ├─ pod workers (.podworker): one task per pod, woken by events only
      ├─ status manager (.statusmanager): the single status writer
      ├─ eviction manager (.eviction): pressure conditions; under pressure, one pod
      │   evicted per pass (Failed/Evicted)
      ├─ events, lease renewal every 10 s, node status every 10 s when it changed
      │   (at least every 5 min: the heartbeat of the conditions)
      └─ on cancellation: workers stop; containers keep running (a new kubelet adopts them)

Data directory (``data_dir``)::

    runtime/    the runc runtime's state (when no runtime is passed in)
    images/     the image store (when none is passed in; what ``skiff image`` uses)
    network/    the pod network's state (when a pod CIDR is given)
    pods/<uid>/ volumes, etc-hosts, termination-message files
    logs/<namespace>_<pod>_<uid>/<container>/<attempt>.log   (removed with the pod)
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..api.errors import StatusError
from ..client.clock import Clock, RealClock
from ..client.informer import Informer
from ..client.resources import (CONFIGMAPS, LEASES, NAMESPACES, NODES, PERSISTENTVOLUMECLAIMS,
                                PERSISTENTVOLUMES, PODS, SECRETS, SERVICEACCOUNTS, SERVICES)
from ..client.rest import ApiClient, TransportError
from ..controllers.events import EventRecorder
from . import podsandbox
from .containerstart import ContainerStarter
from .context import KubeletConfig, NodeContext
from .eviction import EvictionConfig, EvictionManager
from .evictionsignals import NodeSignals
from .imagepull import ImagePuller
from .images.registry import RegistryClient
from .images.store import ImageStore
from .lifecycle import DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, BackOff
from .machine import Machine, kernel_version, node_conditions, os_image
from .network import NodeNetwork
from .node_status import (DEFAULT_KUBELET_PORT, NODE_LEASE_NAMESPACE, NodeSpec, micro_timestamp, node_lease,
                          node_object, node_status)
from .podnetworking import LoopbackNetwork, PodNetworking
from .podworker import PodWorker
from .probes import ProbeManager
from .runtime.diskdirs import spread_subdirectories
from .runtime.interface import Runtime, SandboxState
from .statusmanager import StatusManager
from .volumes import VolumeManager, VolumeSources

Obj = dict[str, Any]
log = logging.getLogger(__name__)

LEASE_INTERVAL = 10.0
EVENT_WRITERS = 2
STATUS_CHECK_INTERVAL = 10.0
STATUS_REPORT_INTERVAL = 300.0


class Kubelet:
    def __init__(self, client: ApiClient, *, node_name: str, data_dir: Path,
                 pod_cidr: str | None = None, runtime: Runtime | None = None,
                 images: ImageStore | None = None, network: PodNetworking | None = None,
                 clock: Clock | None = None, node_ip: str = "127.0.0.1",
                 registry: RegistryClient | None = None, cluster_dns: Sequence[str] = (),
                 cluster_domain: str = "cluster.local",
                 backoff_base: float = DEFAULT_BACKOFF_BASE,
                 backoff_cap: float = DEFAULT_BACKOFF_CAP, parallel_starts: int = 4,
                 kubelet_port: int = DEFAULT_KUBELET_PORT, eviction: EvictionConfig | None = None,
                 run_dir: Path | None = None) -> None:
        """``run_dir``: where the default runtime and pod network keep their state (a
        tmpfs on a real node, see .rundir); ``data_dir`` when not given."""
        self.client = client
        self.kubelet_port = kubelet_port  # advertised in status.daemonEndpoints (logs/exec/port-forward)
        self.clock: Clock = clock or RealClock()
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.node_name = node_name
        self.node_ip = node_ip
        self.pod_cidr = pod_cidr
        self.config = KubeletConfig(node_name=node_name, data_dir=self.data_dir,
                                    backoff_base=backoff_base, backoff_cap=backoff_cap,
                                    cluster_dns=tuple(cluster_dns), cluster_domain=cluster_domain)
        for per_pod in (self.config.pods_dir, self.config.logs_dir):
            spread_subdirectories(per_pod)          # see .runtime.diskdirs
        run = Path(run_dir).resolve() if run_dir is not None else self.data_dir
        if runtime is None:
            from .runtime.runc import RuncRuntime
            runtime = RuncRuntime(run / "runtime", layers=self.data_dir / "layers")
        self.runtime = runtime
        self.store = images or ImageStore(self.data_dir / "images")
        self._own_registry = registry is None
        self.registry = registry or RegistryClient(self.store)
        if network is None:
            network = (NodeNetwork(state_dir=run / "network", pod_cidr=pod_cidr,
                                   node_ip=node_ip) if pod_cidr else LoopbackNetwork(node_ip))
        self.network = network
        self.machine = Machine.read(self.data_dir)
        self.pods = Informer(client, PODS, field_selector=f"spec.nodeName={node_name}", clock=self.clock)
        self.config_maps = Informer(client, CONFIGMAPS, clock=self.clock)
        self.secrets = Informer(client, SECRETS, clock=self.clock)
        self.services = Informer(client, SERVICES, clock=self.clock)
        # Events are best-effort: few writers, so that under a burst they do not crowd
        # out the status writes pods wait for on a busy API server.
        self.recorder = EventRecorder(client, clock=self.clock, concurrency=EVENT_WRITERS)
        self.statuses = StatusManager(client, self.clock)
        self.workers: dict[str, PodWorker] = {}
        self._finished: set[str] = set()
        self.eviction = EvictionManager(eviction or EvictionConfig(), NodeSignals.for_runtime(
            self.runtime, data_dir=self.data_dir, image_dir=self.store.root), self.workers, self.recorder,
            node_name=node_name, clock=self.clock)      # node-pressure eviction (.eviction)
        self.ready = asyncio.Event()
        self.node: Obj | None = None
        self.lease: Obj | None = None
        self._last_report = 0.0
        self.ctx = NodeContext(
            config=self.config, client=client, clock=self.clock, runtime=self.runtime,
            network=self.network,
            images=ImagePuller(self.store, self.registry, BackOff(backoff_base, backoff_cap), self.clock.time),
            volumes=VolumeManager(self.config.pods_dir, VolumeSources(
                config_map=self._config_map, secret=self._secret, claim=self._claim,
                persistent_volume=self._persistent_volume, token=self._token,
                node_allocatable=self.machine.allocatable())),
            probes=ProbeManager(self.runtime, self.clock, self._probe_changed),
            statuses=self.statuses, recorder=self.recorder,
            restarts=BackOff(backoff_base, backoff_cap), config_map=self._config_map,
            secret=self._secret, services=self.services.list,
            node_allocatable=self.machine.allocatable(), memory_capacity=self.machine.memory,
            start_slots=asyncio.Semaphore(parallel_starts))
        self.starter = ContainerStarter(self.ctx)

    # -- object lookups (informer caches; API reads for the rare kinds) --------------------

    def _config_map(self, namespace: str, name: str) -> Obj | None:
        return self.config_maps.get_by(namespace, name)

    def _secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get_by(namespace, name)

    async def _read(self, resource: Any, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return await self.client.get(resource, name, namespace=namespace)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    async def _claim(self, namespace: str, name: str) -> Obj | None:
        return await self._read(PERSISTENTVOLUMECLAIMS, name, namespace)

    async def _persistent_volume(self, name: str) -> Obj | None:
        return await self._read(PERSISTENTVOLUMES, name)

    async def _token(self, pod: Obj, projection: Obj) -> str | None:
        """A bound service-account token through TokenRequest (None when unavailable)."""
        meta = pod["metadata"]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [projection["audience"]] if projection.get("audience") else [],
            "expirationSeconds": int(projection.get("expirationSeconds") or 3600),
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]}}}
        try:
            answer = await self.client.create(SERVICEACCOUNTS, request, namespace=meta.get("namespace"),
                                              name=account, subresource="token")
        except (StatusError, TransportError) as err:
            log.info("no service account token for pod %s: %s", meta["name"], err)
            return None
        token = (answer.get("status") or {}).get("token")
        return str(token) if token else None

    # -- events from the informers ----------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        uid = str(pod["metadata"].get("uid", ""))
        if uid in self._finished:
            return
        worker = self.workers.get(uid)
        if worker is not None:
            self.statuses.observe(pod)
            worker.update(pod)
            return
        if not self.ready.is_set():
            return                      # adoption creates the workers of pods already known
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return                      # finished before this kubelet knew it: leave it alone
        self._start_worker(pod)

    def _on_pod_gone(self, pod: Obj) -> None:
        worker = self.workers.get(str(pod["metadata"].get("uid", "")))
        if worker is not None:
            worker.update(None)

    def _start_worker(self, pod: Obj) -> PodWorker:
        uid = str(pod["metadata"]["uid"])
        worker = PodWorker(self.ctx, self.starter, pod, ready=self.ready, on_finished=self._worker_done)
        self.workers[uid] = worker
        worker.task = asyncio.create_task(worker.run(), name=f"pod-{pod['metadata'].get('name', uid)}")
        return worker

    def _worker_done(self, uid: str) -> None:
        self.workers.pop(uid, None)
        self._finished.add(uid)

    def _probe_changed(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            worker.wake()

    def _on_object(self, kind: str, obj: Obj) -> None:
        """A ConfigMap or Secret changed: wake the pods that read it."""
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        for worker in list(self.workers.values()):
            pod = worker.pod
            if pod is not None and pod["metadata"].get("namespace") == namespace \
                    and _references(pod, kind, name):
                worker.wake(refresh_volumes=True)

    # -- adoption ---------------------------------------------------------------------------

    async def _adopt(self) -> None:
        """Match what the runtime holds to the pods of this node (after a restart)."""
        pods = {str(p["metadata"]["uid"]): p for p in self.pods.list()}
        containers = await self.runtime.list()
        by_sandbox: dict[str, list[Any]] = {}
        for container in containers:
            by_sandbox.setdefault(container.sandbox_id, []).append(container)
        adopted: set[str] = set()
        for sandbox in await self.runtime.list_sandboxes():
            pod = pods.get(sandbox.uid)
            usable = pod is not None and sandbox.uid not in adopted and (
                sandbox.state == SandboxState.READY
                or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"))
            if pod is None or not usable:
                log.info("removing sandbox %s of pod %s/%s (no such pod on this node)",
                         sandbox.id[:12], sandbox.namespace, sandbox.name)
                await podsandbox.destroy(self.ctx, sandbox.uid, sandbox.id)
                continue
            worker = self.workers.get(sandbox.uid) or self._start_worker(pod)
            await worker.adopt(sandbox.id, by_sandbox.pop(sandbox.id, []))
            adopted.add(sandbox.uid)
        known = {s.id for s in await self.runtime.list_sandboxes()}
        for sandbox_id, leftovers in by_sandbox.items():
            if sandbox_id not in known:
                for container in leftovers:
                    await self.runtime.remove(container.id)
        for network in self.network.list_pods():
            if network.pod_uid not in adopted:
                await self.network.remove_pod(network.pod_uid)
        for uid in self.ctx.volumes.known_pods():
            if uid not in adopted and uid not in pods:
                await self.ctx.volumes.teardown(uid)
        for uid, logs in self.config.logged_pods().items():
            if uid not in adopted and uid not in pods:
                await asyncio.to_thread(shutil.rmtree, logs, True)
        for pod in self.pods.list():     # the cache as it is now (it moved on meanwhile)
            uid = str(pod["metadata"]["uid"])
            if uid not in self.workers and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                self._start_worker(pod)

    # -- the node ---------------------------------------------------------------------------

    def _node_spec(self, version: str) -> NodeSpec:
        return NodeSpec(name=self.node_name, capacity=self.machine.capacity(),
                        allocatable=self.machine.allocatable(), internal_ip=self.network.node_ip,
                        pod_cidr=self.pod_cidr or "", container_runtime_version=f"{self.runtime.name}://{version}",
                        os_image=os_image(), kernel_version=kernel_version(),
                        kubelet_port=self.kubelet_port)

    async def _node_status(self, version: str) -> Obj:
        previous = (self.node or {}).get("status") or {}
        status = node_status(self._node_spec(version), self.clock.time(), previous=previous)
        pressure = self.eviction.pressure()
        status["conditions"] = node_conditions(self.clock.time(), pressure, True,
                                               previous.get("conditions") or ())
        images = await asyncio.to_thread(self.store.list)
        status["images"] = [{"names": list(i.names) + list(i.repo_digests), "sizeBytes": i.size}
                            for i in sorted(images, key=lambda i: -i.size)[:50]]
        return status

    async def register(self, version: str) -> None:
        desired = node_object(self._node_spec(version), self.clock.time())
        if not self.pod_cidr:
            desired["spec"] = {}
        try:
            self.node = await self.client.create(NODES, desired)
        except StatusError as err:
            if err.code != 409:
                raise
            self.node = await self.client.patch(NODES, self.node_name, {
                "metadata": {"labels": desired["metadata"]["labels"]}})
        self.node = await self.client.patch(NODES, self.node_name, {"status": await self._node_status(version)},
                                            subresource="status")
        self._last_report = self.clock.monotonic()
        await self.renew_lease()
        self._node_event("Starting", "Starting kubelet.")
        self._condition_events({}, self.node.get("status") or {})

    def _node_event(self, reason: str, message: str) -> None:
        # A kubelet names its Node by name in events, uid included: `kubectl describe node`
        # looks them up that way.
        ref = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": self.node_name, "uid": self.node_name}}
        self.recorder.event(ref, "Normal", reason, message, component="kubelet")

    def _condition_events(self, before: Obj, after: Obj) -> None:
        """``NodeHasSufficientMemory``, ``NodeReady`` ... for each condition that changed."""
        was = {c.get("type"): c.get("status") for c in before.get("conditions") or []}
        for c in after.get("conditions") or []:
            reason = NODE_CONDITION_EVENTS.get((str(c.get("type")), str(c.get("status"))))
            if reason is not None and was.get(c.get("type")) != c.get("status"):
                self._node_event(reason, f"Node {self.node_name} status is now: {reason}")

    async def renew_lease(self) -> None:
        now = self.clock.time()
        if self.lease is not None:
            lease = dict(self.lease, spec=dict(self.lease.get("spec") or {}, renewTime=micro_timestamp(now),
                                               holderIdentity=self.node_name))
            try:
                self.lease = await self.client.update(LEASES, lease)
                return
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
                self.lease = None
        fresh = node_lease(self.node_name, str(((self.node or {}).get("metadata") or {}).get("uid", "")), now)
        try:
            self.lease = await self.client.create(LEASES, fresh, namespace=NODE_LEASE_NAMESPACE)
        except StatusError as err:
            if err.code == 404:
                try:
                    await self.client.create(NAMESPACES, {"metadata": {"name": NODE_LEASE_NAMESPACE}})
                except StatusError as again:
                    if again.code != 409:
                        raise
                self.lease = await self.client.create(LEASES, fresh, namespace=NODE_LEASE_NAMESPACE)
            elif err.code == 409:
                current = await self.client.get(LEASES, self.node_name, namespace=NODE_LEASE_NAMESPACE)
                current["spec"] = dict(current.get("spec") or {}, **fresh["spec"])
                self.lease = await self.client.update(LEASES, current)
            else:
                raise

    async def _register_until_done(self, version: str) -> None:
        """Register, retrying (0.5 s doubling to 10 s) while the API server is not there."""
        delay = 0.5
        while True:
            try:
                await self.register(version)
                return
            except (StatusError, TransportError) as err:
                log.warning("node %s: registration failed (%s); retrying in %.1fs", self.node_name, err, delay)
            await self.clock.sleep(delay)
            delay = min(10.0, delay * 2)

    async def _lease_loop(self) -> None:
        while True:
            await self.clock.sleep(LEASE_INTERVAL)
            try:
                await self.renew_lease()
            except (StatusError, TransportError) as err:
                log.warning("node %s: lease renewal failed: %s", self.node_name, err)
            except Exception:
                log.exception("node %s: lease renewal failed", self.node_name)

    async def _status_loop(self, version: str) -> None:
        while True:
            await self.eviction.pressure_changed(STATUS_CHECK_INTERVAL)    # or sooner, on a flip
            try:
                self.node = await self.client.get(NODES, self.node_name)   # 404: deleted
                status = await self._node_status(version)
                before = (self.node or {}).get("status") or {}
                changed = _without_heartbeats(status) != _without_heartbeats(before)
                due = self.clock.monotonic() - self._last_report >= STATUS_REPORT_INTERVAL
                if changed or due:
                    self.node = await self.client.patch(NODES, self.node_name, {"status": status},
                                                        subresource="status")
                    self._last_report = self.clock.monotonic()
                    self._condition_events(before, status)
            except StatusError as err:
                if err.code == 404:
                    log.info("node %s was deleted; registering it again", self.node_name)
                    await self._register_until_done(version)
                else:
                    log.warning("node %s: status update failed: %s", self.node_name, err)
            except TransportError as err:
                log.warning("node %s: status update failed: %s", self.node_name, err)
            except Exception:
                log.exception("node %s: status update failed", self.node_name)

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the node until cancelled (containers keep running afterwards)."""
        await self.network.setup()
        version = (await self.runtime.version()).split()[-1]
        await self._register_until_done(version)
        self.pods.add_handler(on_add=self._on_pod, on_update=lambda old, new: self._on_pod(new),
                              on_delete=self._on_pod_gone)
        self.config_maps.add_handler(on_add=lambda obj: self._on_object("configmap", obj),
                                     on_update=lambda old, new: self._on_object("configmap", new))
        self.secrets.add_handler(on_add=lambda obj: self._on_object("secret", obj),
                                 on_update=lambda old, new: self._on_object("secret", new))
        try:
            async with asyncio.TaskGroup() as group:
                for informer in (self.pods, self.config_maps, self.secrets, self.services):
                    group.create_task(informer.run(), name=f"kubelet-{informer.resource.plural}")
                group.create_task(self.recorder.run(), name="kubelet-events")
                group.create_task(self.statuses.run(), name="kubelet-statuses")
                group.create_task(self._lease_loop(), name="kubelet-lease")
                group.create_task(self._status_loop(version), name="kubelet-node-status")
                group.create_task(self.eviction.run(), name="kubelet-eviction")
                await asyncio.gather(*(i.wait_synced() for i in
                                       (self.pods, self.config_maps, self.secrets, self.services)))
                await self._adopt()
                self.ready.set()
                log.info("kubelet %s ready: %d pod(s)", self.node_name, len(self.workers))
        finally:
            await self.close()

    async def close(self) -> None:
        for informer in (self.pods, self.config_maps, self.secrets, self.services):
            informer.stop()
        workers = [w.task for w in self.workers.values() if w.task is not None]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.ctx.probes.close()
        await self.ctx.images.close()
        if self._own_registry:
            await self.registry.close()
        await self.runtime.close()


#: (condition, status) -> the reason of the Event a kubelet records when it changes
NODE_CONDITION_EVENTS = {
    ("MemoryPressure", "False"): "NodeHasSufficientMemory", ("MemoryPressure", "True"): "NodeHasInsufficientMemory",
    ("DiskPressure", "False"): "NodeHasNoDiskPressure", ("DiskPressure", "True"): "NodeHasDiskPressure",
    ("PIDPressure", "False"): "NodeHasSufficientPID", ("PIDPressure", "True"): "NodeHasInsufficientPID",
    ("Ready", "True"): "NodeReady", ("Ready", "False"): "NodeNotReady",
}


def _without_heartbeats(status: Obj) -> Obj:
    copy = dict(status)
    copy["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                          for c in status.get("conditions") or []]
    return copy


def _references(pod: Obj, kind: str, name: str) -> bool:
    """Whether the pod reads ConfigMap/Secret ``name`` (volumes, env, envFrom)."""
    spec = pod.get("spec") or {}
    volume_key, ref_key, from_key = (("configMap", "configMapKeyRef", "configMapRef") if kind == "configmap"
                                     else ("secret", "secretKeyRef", "secretRef"))
    for volume in spec.get("volumes") or []:
        source = volume.get(volume_key)
        if isinstance(source, dict) and (source.get("name") or source.get("secretName")) == name:
            return True
        for projection in (volume.get("projected") or {}).get("sources") or []:
            if (projection.get(volume_key) or {}).get("name") == name:
                return True
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for var in container.get("env") or []:
            if ((var.get("valueFrom") or {}).get(ref_key) or {}).get("name") == name:
                return True
        for source in container.get("envFrom") or []:
            if (source.get(from_key) or {}).get("name") == name:
                return True
    return False


async def run_kubelet(client: ApiClient, *, node_name: str, data_dir: Path, pod_cidr: str | None,
                      runtime: Runtime | None = None, images: ImageStore | None = None,
                      network: PodNetworking | None = None, clock: Clock | None = None,
                      node_ip: str = "127.0.0.1", **options: Any) -> None:
    """Run a kubelet for ``node_name`` until cancelled (see :class:`Kubelet` for ``options``:
    registry, cluster_dns, cluster_domain, backoff_base, backoff_cap, parallel_starts)."""
    kubelet = Kubelet(client, node_name=node_name, data_dir=data_dir, pod_cidr=pod_cidr,
                      runtime=runtime, images=images, network=network, clock=clock,
                      node_ip=node_ip, **options)
    await kubelet.run()
