"""One pod worker per pod bound to the node: the loop that makes the pod run.

A worker is woken (never polls) by a new version of its pod, a container exit
(the runtime's pidfd watch), a probe result, a ConfigMap/Secret it reads, or a
timer it set itself (a back-off ending, a retry). Each wake-up runs one
level-triggered ``sync``::

    pod gone from the API ────────────────────────▶ kill everything, clean up, done
    evicted (node pressure, .eviction) ───▶ every container stopped within the given grace
                            ──▶ terminal status Failed/Evicted + DisruptionTarget condition
    deletionTimestamp ────▶ preStop, SIGTERM, grace period, SIGKILL (sidecars last)
                            ──▶ final status ──▶ sandbox, network, volumes removed
                            ──▶ DELETE pod (gracePeriodSeconds=0, UID precondition), done
    otherwise:
      sandbox + network (once)         FailedCreatePodSandBox -> retry
      volumes (once; refreshed when    FailedMount            -> retry
               their objects change)
      liveness/startup failures        Killing "Container web failed liveness probe,
                                       will be restarted"
      init containers (lifecycle.next_init_step), then regular containers:
        start the ones never started; restart exited ones per restartPolicy
        after their back-off (CrashLoopBackOff)
        ephemeral containers (kubectl debug): started once each, as they are added,
        in the target container's process namespace if they name one; never restarted
      everything finished for good ──▶ sidecars stopped, sandbox stopped: terminal
      status ──▶ StatusManager (the single writer)

Pod state lives in the runtime (container labels say whose they are), so a
restarted kubelet *adopts* what it finds (:meth:`PodWorker.adopt`) instead of
starting anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ..api.errors import StatusError
from ..api.kinds.meta import parse_time
from ..client.resources import PODS
from ..client.rest import TransportError
from . import podsandbox
from .containerstart import (CONTAINER_KIND_LABEL, CONTAINER_NAME_LABEL, IMAGE_ID_ANNOTATION,
                             IMAGE_REF_ANNOTATION, TERMINATION_LOG_ANNOTATION, ContainerRecord,
                             ContainerStarter, probe_target, reported_image)
from .context import NodeContext
from .hooks import pod_description, pre_stop
from .imagepull import go_duration
from .lifecycle import (InitAction, container_specs, grace_period, is_sidecar, next_init_step,
                        regular_all_done, restart_wanted, sidecars_in_stop_order)
from .network import NetworkError
from .podsandbox import Sandbox
from .runtime.interface import ContainerState, ContainerStatus, NotFound, RuntimeFailure
from .status import KUBELET_CONDITIONS, ContainerView, pod_status
from .volumes import PreparedVolume, VolumeError

Obj = dict[str, Any]
log = logging.getLogger(__name__)
MAX_MESSAGE = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048


class PodWorker:
    def __init__(self, ctx: NodeContext, starter: ContainerStarter, pod: Obj, *,
                 ready: asyncio.Event, on_finished: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.starter = starter
        self.uid = str(pod["metadata"]["uid"])
        self.pod: Obj | None = pod
        self.last_pod: Obj = pod
        self.sandbox: Sandbox | None = None
        self.pod_ips: list[str] = []
        self.volumes: dict[str, PreparedVolume] = {}
        self.records: dict[tuple[str, str], ContainerRecord] = {
            (kind, c["name"]): ContainerRecord(kind, c) for kind, c in container_specs(pod.get("spec") or {})}
        self.completed_init: set[str] = set()
        self.initialized = not (pod.get("spec") or {}).get("initContainers")
        started = parse_time((pod.get("status") or {}).get("startTime"))
        self.start_time: float | None = started.timestamp() if started else None
        self.terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        self.failure: tuple[str, str] | None = None      # the pod failed as a whole (deadline)
        self.eviction: tuple[float, str, Obj] | None = None  # (grace, message, condition) asked for
        self.evicted = asyncio.Event()                   # set once an evicted pod runs nothing
        self._added_conditions: list[Obj] = []           # pod conditions the kubelet adds (DisruptionTarget)
        self._ready = ready
        self._on_finished = on_finished
        self._wake = asyncio.Event()
        self._wake_at: float | None = None
        self._refresh_volumes = False
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._messages: dict[str, str] = {}
        self.task: asyncio.Task[None] | None = None

    # -- driving the worker -------------------------------------------------------------

    def update(self, pod: Obj | None) -> None:
        """A new version of the pod (None: it is gone from the API)."""
        self.pod = pod
        if pod is not None:
            self.last_pod = pod
        self.wake()

    def evict(self, grace: float, message: str, condition: Obj) -> asyncio.Event:
        """Node-pressure eviction: stop every container within ``grace`` seconds and end the
        pod Failed, reason ``Evicted``, with ``condition`` added.  The event returned is set
        once nothing of the pod runs any more (or its worker is gone)."""
        if self.eviction is None:
            self.eviction = (grace, message, condition)
        self.wake()
        return self.evicted

    def wake(self, *, refresh_volumes: bool = False) -> None:
        self._refresh_volumes |= refresh_volumes
        self._wake.set()

    def _after(self, seconds: float) -> None:
        """Sync again within ``seconds`` (the earliest request wins)."""
        when = self.ctx.clock.monotonic() + max(0.0, seconds)
        if self._wake_at is None or when < self._wake_at:
            self._wake_at = when

    async def run(self) -> None:
        await self._ready.wait()
        failures = 0
        try:
            while True:
                self._wake.clear()
                self._wake_at = None
                try:
                    if await self.sync():
                        return
                    failures = 0
                except (RuntimeFailure, NetworkError, StatusError, TransportError, OSError) as err:
                    failures += 1
                    log.warning("pod %s: sync failed: %s", self._name(), err)
                    self._after(min(30.0, 0.5 * 2 ** failures))
                except Exception:          # a bug must not leave the pod without a worker
                    failures += 1
                    log.exception("pod %s: sync failed", self._name())
                    self._after(min(30.0, 0.5 * 2 ** failures))
                await self._idle()
        finally:
            for watcher in self._watchers.values():
                watcher.cancel()
            self.evicted.set()
            self._on_finished(self.uid)

    async def _idle(self) -> None:
        if self._wake.is_set():
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        timer = None
        if self._wake_at is not None:
            timer = asyncio.ensure_future(self.ctx.clock.sleep(self._wake_at - self.ctx.clock.monotonic()))
        try:
            await asyncio.wait([f for f in (waiter, timer) if f is not None],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if timer is not None:
                timer.cancel()

    def _name(self) -> str:
        meta = self.last_pod.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    # -- adoption after a kubelet restart ---------------------------------------------------

    async def adopt(self, sandbox_id: str, containers: list[ContainerStatus]) -> None:
        """Take over a sandbox and containers a previous kubelet left running."""
        pod = self.last_pod
        status = await self.ctx.runtime.sandbox_status(sandbox_id)
        spec = pod.get("spec") or {}
        network = await self.ctx.network.add_pod(
            self.uid, pod["metadata"]["name"], pod["metadata"].get("namespace", ""),
            netns_path=status.netns_path, host_network=bool(spec.get("hostNetwork")),
            host_ports=podsandbox.host_ports(pod))
        hosts = self.ctx.config.pods_dir / self.uid / "etc-hosts"
        self.sandbox = Sandbox(sandbox_id, network, None if spec.get("hostNetwork") else hosts)
        self.pod_ips = network.ips
        for container in sorted(containers, key=lambda c: (c.attempt, c.created_at)):
            key = (container.labels.get(CONTAINER_KIND_LABEL, ""), container.labels.get(CONTAINER_NAME_LABEL, ""))
            record = self.records.get(key)
            if record is None:
                await self.ctx.runtime.remove(container.id)
                continue
            if record.previous is not None:
                await self.ctx.runtime.remove(record.previous.id)
            record.adopt(container)
        for (kind, name), record in self.records.items():
            current = record.current
            if current is None:
                continue
            if kind == "regular":
                self.initialized = True
            elif kind == "init" and current.state == ContainerState.EXITED and current.exit_code == 0 \
                    and not is_sidecar(record.spec):
                self.completed_init.add(name)
            if current.state == ContainerState.RUNNING:
                self._watch(current.id)
                self.ctx.probes.add(self.uid, record.spec, probe_target(self.sandbox, current.id, record.spec),
                                    self.ctx.events(pod))
        if self.initialized:
            self.completed_init.update(n for (k, n), r in self.records.items() if k == "init")

    # -- one sync ---------------------------------------------------------------------------

    async def sync(self) -> bool:
        """Bring the pod one step closer to its spec; True when the worker is done."""
        pod = self.pod
        if pod is None:
            await self._shutdown(self.last_pod, delete=False)
            return True
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._shutdown(pod, delete=True)
            return True
        if self.start_time is None:
            self.start_time = self.ctx.clock.time()
        await self._observe()
        if self.eviction is not None and not self.terminal:
            grace, message, condition = self.eviction
            self._added_conditions.append(condition)
            await self._fail(pod, "Evicted", message, grace=grace, announce=False)
        if self.terminal:
            if self.eviction is not None:
                self.evicted.set()
            self._publish(pod)
            return False
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline is not None and self.start_time is not None:
            left = self.start_time + float(deadline) - self.ctx.clock.time()
            if left <= 0:
                await self._fail(pod, "DeadlineExceeded",
                                 "Pod was active on the node longer than the specified deadline")
                return False
            self._after(left)
        await self._probe_kills(pod)
        for container in (pod.get("spec") or {}).get("ephemeralContainers") or []:
            self.records.setdefault(("ephemeral", container["name"]), ContainerRecord("ephemeral", container))
        async with self.ctx.start_slots:    # a few pods at a time: first come, first running
            if not await self._prepare(pod):
                return False
            if not self.initialized:
                await self._init_containers(pod)
            if self.initialized:
                await self._regular_containers(pod)
                await self._sidecar_restarts(pod)
                await self._ephemeral_containers(pod)
        spec = pod.get("spec") or {}
        await self._observe()
        current = {n: r.current for (k, n), r in self.records.items() if k == "regular"}
        init_failed = self._init_failed(spec)
        if init_failed or regular_all_done(spec, current):
            await self._stop_sidecars(pod, grace_period(pod))
            await self._observe()
            self.terminal = True
            self.ctx.probes.remove_pod(self.uid)
            await podsandbox.stop(self.ctx, self.uid, self.sandbox.id if self.sandbox else None)
        self._publish(pod)
        return False

    async def _fail(self, pod: Obj, reason: str, message: str, *, grace: float | None = None,
                    announce: bool = True) -> None:
        """End the pod as Failed (activeDeadlineSeconds, eviction): every container stopped."""
        if announce:
            self.ctx.events(pod)("Normal", reason, message)
        if grace is None:
            grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        await asyncio.gather(*(self._kill(pod, r, grace) for r in self.records.values()
                               if not (r.kind == "init" and is_sidecar(r.spec))))
        await self._stop_sidecars(pod, grace)
        self.failure = (reason, message)
        self.terminal = True
        self.ctx.probes.remove_pod(self.uid)
        await podsandbox.stop(self.ctx, self.uid, self.sandbox.id if self.sandbox else None)
        self._publish(pod)

    async def _prepare(self, pod: Obj) -> bool:
        """Sandbox, network and volumes; False (status published, retry set) if not ready."""
        events = self.ctx.events(pod)
        if self.sandbox is None:
            try:
                self.sandbox = await podsandbox.create(self.ctx, pod)
            except (RuntimeFailure, NetworkError, OSError, ValueError) as err:
                events("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {err}")
                self._publish(pod)
                self._after(self.ctx.config.retry_interval)
                return False
            self.pod_ips = self.sandbox.network.ips
        try:
            self.volumes = await self.ctx.volumes.setup(pod)
            if self._refresh_volumes:       # an object it reads changed: volumes, and
                self._refresh_volumes = False   # containers that could not be configured
                await self.ctx.volumes.refresh(pod)
                for record in self.records.values():
                    if record.waiting_reason == "CreateContainerConfigError":
                        record.retry_at = 0.0
        except VolumeError as err:
            events("Warning", "FailedMount",
                   f'MountVolume.SetUp failed for volume "{err.volume}" : {err.message}')
            self._publish(pod)
            self._after(self.ctx.config.retry_interval)
            return False
        return True

    @contextlib.asynccontextmanager
    async def _slot_released(self) -> AsyncIterator[None]:
        """Give the start slot back while waiting on the container (a postStart hook)."""
        self.ctx.start_slots.release()
        try:
            yield
        finally:
            await self.ctx.start_slots.acquire()

    def _init_failed(self, spec: Obj) -> bool:
        if self.initialized:
            return False
        current = {n: r.current for (k, n), r in self.records.items() if k == "init"}
        started = {n: bool(s and self.ctx.probes.started(s.id)) for n, s in current.items()}
        return next_init_step(spec, current, started, self.completed_init).action == InitAction.FAILED

    async def _observe(self) -> None:
        """Refresh what the runtime says about the containers that may have changed."""
        for (kind, name), record in self.records.items():
            current = record.current
            if current is None or current.state == ContainerState.EXITED:
                continue
            try:
                record.current = await self.ctx.runtime.status(current.id)
            except NotFound:
                record.current = None
                continue
            if record.current.state == ContainerState.EXITED:
                self.ctx.probes.remove(current.id)
                await self._read_message(record)
                if kind == "init" and record.current.exit_code == 0 and not is_sidecar(record.spec):
                    self.completed_init.add(name)

    async def _read_message(self, record: ContainerRecord) -> None:
        status = record.current
        if status is None or status.id in self._messages:
            return
        path = status.annotations.get(TERMINATION_LOG_ANNOTATION, "")
        message = ""
        if path:
            try:
                message = (await asyncio.to_thread(Path(path).read_bytes))[:MAX_MESSAGE].decode(errors="replace")
            except OSError:
                message = ""
        if (not message and status.exit_code and
                record.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"):
            lines = [r.content async for r in self.ctx.runtime.logs(status.id, tail_lines=FALLBACK_LOG_LINES)]
            message = b"\n".join(lines)[-FALLBACK_LOG_BYTES:].decode(errors="replace")
        self._messages[status.id] = message

    # -- containers -------------------------------------------------------------------------

    async def _probe_kills(self, pod: Obj) -> None:
        for record in self.records.values():
            current = record.current
            if current is None or current.state != ContainerState.RUNNING:
                continue
            state = self.ctx.probes.state(current.id)
            if state is None or not state.failed:
                continue
            grace = state.grace if state.grace is not None else float(
                (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            await self._kill(pod, record, grace, f"Container {record.name} {state.message}")

    async def _init_containers(self, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        while True:
            current = {n: r.current for (k, n), r in self.records.items() if k == "init"}
            started = {n: bool(s and s.state == ContainerState.RUNNING and self.ctx.probes.started(s.id))
                       for n, s in current.items()}
            step = next_init_step(spec, current, started, self.completed_init)
            if step.action == InitAction.DONE:
                self.initialized = True
                return
            if step.action != InitAction.START:
                return
            record = self.records[("init", step.name)]
            if record.current is not None and not self._restart_allowed(pod, record):
                return
            if not await self._start(pod, record):
                return
            if not is_sidecar(record.spec) or not self.ctx.probes.started(record.current.id if record.current else ""):
                return

    async def _regular_containers(self, pod: Obj) -> None:
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        for (kind, _), record in self.records.items():
            if kind != "regular":
                continue
            current = record.current
            if current is not None:
                if current.state != ContainerState.EXITED:
                    continue
                if not restart_wanted(policy, current.exit_code):
                    continue
                if not self._restart_allowed(pod, record):
                    continue
            await self._start(pod, record)

    async def _ephemeral_containers(self, pod: Obj) -> None:
        """Start each ephemeral container once (Kubernetes never restarts them); one naming
        ``targetContainerName`` joins that container's process namespace while it runs."""
        for (kind, _), record in list(self.records.items()):
            if kind != "ephemeral" or record.current is not None:
                continue
            target_name = str(record.spec.get("targetContainerName") or "")
            target = self.records.get(("regular", target_name)) or self.records.get(("init", target_name))
            joined = ""
            if target_name:
                if target is None or target.current is None or target.current.state != ContainerState.RUNNING:
                    record.waiting_reason = "ContainerCreating"
                    self._after(1.0)          # its target is not running (yet)
                    continue
                joined = target.current.id
            await self._start(pod, record, pid_namespace_of=joined)

    async def _sidecar_restarts(self, pod: Obj) -> None:
        for (kind, _), record in self.records.items():
            if kind == "init" and is_sidecar(record.spec) and record.current is not None \
                    and record.current.state == ContainerState.EXITED and self._restart_allowed(pod, record):
                await self._start(pod, record)

    def _restart_allowed(self, pod: Obj, record: ContainerRecord) -> bool:
        """The restart back-off (CrashLoopBackOff) of an exited container."""
        current = record.current
        if current is None or current.state != ContainerState.EXITED:
            return True
        now = self.ctx.clock.time()
        finished = current.finished_at.timestamp() if current.finished_at else now
        key = f"{self.uid}/{record.kind}/{record.name}"
        remaining = self.ctx.restarts.remaining(key, finished, now)
        if remaining > 0:
            delay = go_duration(self.ctx.restarts.delay(key))
            record.waiting_reason = "CrashLoopBackOff"
            record.waiting_message = (f"back-off {delay} restarting failed container={record.name} "
                                      f"pod={pod_description(pod)}")
            if record.backoff_reported != finished:
                record.backoff_reported = finished
                self.ctx.events(pod)("Warning", "BackOff", f"Back-off restarting failed container "
                                                           f"{record.name} in pod {pod_description(pod)}")
            self._after(remaining)
            return False
        self.ctx.restarts.step(key, finished)
        return True

    async def _start(self, pod: Obj, record: ContainerRecord, *, pid_namespace_of: str = "") -> bool:
        """Start one container (its postStart hook included); False if it did not start."""
        remaining = record.retry_at - self.ctx.clock.monotonic()
        if remaining > 0:
            self._after(remaining)
            return False
        assert self.sandbox is not None
        container_id = await self.starter.start(pod, record, self.sandbox, self.volumes,
                                                self.ctx.memory_capacity, pid_namespace_of)
        if container_id is None:
            self._after(record.retry_at - self.ctx.clock.monotonic())
            return False
        current = record.current
        if current is None or current.state != ContainerState.RUNNING:
            return True            # it failed to start: it counts as exited (StartError)
        self._watch(container_id)
        if (record.spec.get("lifecycle") or {}).get("postStart"):
            async with self._slot_released():
                failure = await self.starter.run_post_start(pod, record, self.sandbox)
                if failure is not None:
                    self.ctx.events(pod)("Warning", "FailedPostStartHook", failure)
                    grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
                    await self._kill(pod, record, grace, "FailedPostStartHook")
                    return True
        self.ctx.probes.add(self.uid, record.spec, probe_target(self.sandbox, container_id, record.spec),
                            self.ctx.events(pod))
        return True

    def _watch(self, container_id: str) -> None:
        if container_id in self._watchers:
            return

        async def wait() -> None:
            try:
                await self.ctx.runtime.wait(container_id)
            except NotFound:
                pass
            finally:
                self._watchers.pop(container_id, None)
            self.wake()

        self._watchers[container_id] = asyncio.create_task(wait(), name=f"exit-{container_id[:12]}")

    async def _kill(self, pod: Obj, record: ContainerRecord, grace: float, message: str = "") -> None:
        """Stop the current instance: Killing event, preStop, stop signal, SIGKILL after grace."""
        current = record.current
        if current is None or current.state != ContainerState.RUNNING:
            return
        events = self.ctx.events(pod)
        events("Normal", "Killing", message or f"Stopping container {record.name}")
        self.ctx.probes.remove(current.id)
        started = self.ctx.clock.monotonic()
        if self.sandbox is not None:
            target = probe_target(self.sandbox, current.id, record.spec)
            failure = await pre_stop(self.ctx.runtime, pod, record.spec, target, grace)
            if failure is not None:
                events("Warning", "FailedPreStopHook", failure)
        remaining = max(grace - (self.ctx.clock.monotonic() - started), self.ctx.config.minimum_grace)
        try:
            await self.ctx.runtime.stop(current.id, remaining)
            record.current = await self.ctx.runtime.status(current.id)
        except NotFound:
            record.current = None
        if record.current is not None:
            await self._read_message(record)

    async def _stop_sidecars(self, pod: Obj, grace: float) -> None:
        started = self.ctx.clock.monotonic()
        for name in sidecars_in_stop_order(pod.get("spec") or {}):
            left = max(0.0, grace - (self.ctx.clock.monotonic() - started))
            await self._kill(pod, self.records[("init", name)], left)

    # -- the end ----------------------------------------------------------------------------

    async def _shutdown(self, pod: Obj, *, delete: bool) -> None:
        """Kill everything (regular containers together, then sidecars), clean up, and,
        for a deleted pod, report the final status and remove the API object."""
        grace = grace_period(pod) if delete else 0.0
        started = self.ctx.clock.monotonic()
        await self._observe()
        regular = [r for (k, _), r in self.records.items() if k in ("regular", "ephemeral")]
        await asyncio.gather(*(self._kill(pod, r, grace) for r in regular))
        left = max(0.0, grace - (self.ctx.clock.monotonic() - started))
        await self._stop_sidecars(pod, left)
        for record in self.records.values():
            if record.kind == "init" and not is_sidecar(record.spec):
                await self._kill(pod, record, left)
        self.ctx.probes.remove_pod(self.uid)
        await self._observe()
        if delete:
            self.terminal = True
            self._publish(pod, terminal=True)
            await self.ctx.statuses.flush(self.uid)
        await podsandbox.destroy(self.ctx, self.uid, self.sandbox.id if self.sandbox else None)
        self.sandbox = None
        await self.ctx.volumes.teardown(self.uid)
        await asyncio.to_thread(shutil.rmtree, self.ctx.config.pod_logs_dir(pod["metadata"]), True)
        self.ctx.images.forget_pod(self.uid)
        self.ctx.restarts.forget(self.uid + "/")
        if delete:
            meta = pod["metadata"]
            try:
                await self.ctx.client.delete(PODS, meta["name"], namespace=meta.get("namespace"),
                                             grace_period_seconds=0, preconditions={"uid": self.uid})
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
        self.ctx.statuses.forget(self.uid)

    # -- status -----------------------------------------------------------------------------

    def _view(self, record: ContainerRecord, waiting_default: str) -> ContainerView:
        current, previous = record.current, record.previous
        shown = current or previous
        running = current is not None and current.state == ContainerState.RUNNING
        reason = record.waiting_reason
        if not reason and current is None:
            reason = waiting_default
        probes = self.ctx.probes
        return ContainerView(
            name=record.name,
            image=(shown.annotations.get(IMAGE_REF_ANNOTATION) if shown else None)
            or reported_image(str(record.spec.get("image", ""))),
            current=current, previous=previous, restart_count=record.restart_count,
            waiting_reason=reason if not running else "", waiting_message=record.waiting_message,
            ready=running and current is not None and probes.ready(current.id),
            started=running and current is not None and probes.started(current.id),
            image_id=shown.annotations.get(IMAGE_ID_ANNOTATION, "") if shown else "",
            runtime=self.ctx.runtime.name,
            current_message=self._messages.get(current.id, "") if current else "",
            previous_message=self._messages.get(previous.id, "") if previous else "")

    def _publish(self, pod: Obj, *, terminal: bool = False) -> None:
        base = dict(pod)
        status = dict(pod.get("status") or {})
        mine = self.ctx.statuses.last(self.uid)
        if mine is not None:
            kept = [c for c in status.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
            status["conditions"] = [c for c in mine.get("conditions") or []
                                    if c.get("type") in KUBELET_CONDITIONS] + kept
            if mine.get("phase") in ("Succeeded", "Failed"):
                status["phase"] = mine["phase"]
        if self._added_conditions:
            present = {c.get("type") for c in status.get("conditions") or []}
            status["conditions"] = list(status.get("conditions") or []) + [
                c for c in self._added_conditions if c.get("type") not in present]
        base["status"] = status
        init_default = "PodInitializing"
        regular_default = "ContainerCreating" if self.initialized else "PodInitializing"
        init = [self._view(r, init_default) for (k, _), r in self.records.items() if k == "init"]
        regular = [self._view(r, regular_default) for (k, _), r in self.records.items() if k == "regular"]
        ephemeral = [dataclasses.replace(self._view(r, "ContainerCreating"), ready=False)   # never ready
                     for (k, _), r in self.records.items() if k == "ephemeral"]
        result = pod_status(base, init=init, regular=regular, ephemeral=ephemeral,
                            sandbox_ready=self.sandbox is not None and not self.terminal,
                            initialized=self.initialized, pod_ips=self.pod_ips,
                            host_ips=[self.ctx.network.node_ip], start_time=self.start_time,
                            now=self.ctx.clock.time(), terminal=terminal, failure=self.failure)
        self.ctx.statuses.set(pod, result)
