"""Node-pressure eviction without a machine: thresholds, pressure state, ranking, messages,
and the manager's passes over a scripted SignalReader and fake pod workers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from skiff.client.clock import FakeClock
from skiff.kubelet.eviction import (
    DEFAULT_EVICTION_HARD, HARD_GRACE_PERIOD, IMAGEFS_AVAILABLE, MEMORY_AVAILABLE, NODEFS_AVAILABLE,
    NODEFS_INODES_FREE, PID_AVAILABLE, Amount, ContainerUsage, EvictionConfig, EvictionManager,
    Observation, PodUsage, PressureTracker, Threshold, eviction_message, grace_for, is_critical,
    parse_thresholds, rank_pods,
)
from skiff.kubelet.evictionsignals import (NodeSignals, container_working_set, disk_usage, node_memory,
                                           read_keyed)
from skiff.kubelet.runtime.interface import ContainerState, ContainerStatus

Obj = dict[str, Any]
Mi = 1 << 20
Gi = 1 << 30


def pod(name: str, *, priority: int | None = None, memory_request: str | None = None,
        grace: int | None = None, annotations: dict[str, str] | None = None,
        containers: Sequence[str] = ("app",)) -> Obj:
    resources = {"requests": {"memory": memory_request}} if memory_request else {}
    spec: Obj = {"containers": [{"name": c, "image": "busybox", "resources": resources} for c in containers]}
    if priority is not None:
        spec["priority"] = priority
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec, "status": {"phase": "Running"}}


def memory_usage(**by_pod: int) -> dict[str, PodUsage]:
    return {f"uid-{name}": PodUsage((ContainerUsage("app", memory=amount),)) for name, amount in by_pod.items()}


def names(pods: list[Obj]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# -- thresholds ------------------------------------------------------------------------------

def test_default_thresholds_are_kubernetes_linux_defaults() -> None:
    by_signal = {t.signal: t for t in parse_thresholds()}
    assert set(by_signal) == set(DEFAULT_EVICTION_HARD)
    assert by_signal[MEMORY_AVAILABLE].value.resolve(8 * Gi) == 100 * Mi
    assert by_signal[NODEFS_AVAILABLE].value.resolve(1000) == 100
    assert by_signal[IMAGEFS_AVAILABLE].value.resolve(1000) == 150
    assert by_signal[NODEFS_INODES_FREE].value.resolve(1000) == 50
    assert all(t.hard for t in by_signal.values())


def test_flags_parse_like_the_kubelets() -> None:
    config = EvictionConfig.from_flags(
        eviction_hard="memory.available<200Mi,pid.available<5%,nodefs.available<0%",
        eviction_soft="memory.available<1Gi", eviction_soft_grace_period="memory.available=1m30s",
        eviction_minimum_reclaim="memory.available=50Mi", eviction_pressure_transition_period="30s",
        eviction_max_pod_grace_period=20)
    hard = [t for t in config.thresholds if t.hard]
    soft = [t for t in config.thresholds if not t.hard]
    assert [t.signal for t in hard] == [MEMORY_AVAILABLE, PID_AVAILABLE]     # 0% disables nodefs
    assert soft[0].signal == MEMORY_AVAILABLE and soft[0].grace_period == 90.0
    assert soft[0].value.resolve(0) == Gi
    assert hard[0].min_reclaim == Amount.parse("50Mi") and soft[0].min_reclaim == Amount.parse("50Mi")
    assert config.pressure_transition_period == 30.0 and config.max_pod_grace_period == 20.0


@pytest.mark.parametrize("kwargs, error", [
    ({"hard": {"memory.free": "1Mi"}}, "unsupported eviction signal memory.free"),
    ({"soft": {"memory.available": "1Gi"}}, "grace period must be specified for the soft eviction threshold"),
    ({"hard": {"nodefs.available": "120%"}}, "percentage threshold must be >= 0% and <= 100%"),
    ({"hard": {"memory.available": "-1Mi"}}, "cannot be negative"),
    ({"hard": {"memory.available": "lots"}}, "invalid quantity"),
])
def test_bad_thresholds_are_refused(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_thresholds(**kwargs)


# -- the pressure state ----------------------------------------------------------------------

def memory(available: int, capacity: int = 8 * Gi) -> dict[str, Observation]:
    return {MEMORY_AVAILABLE: Observation(available, capacity)}


def test_hard_threshold_acts_at_once_and_the_condition_outlives_it_by_the_transition_period() -> None:
    tracker = PressureTracker(EvictionConfig(pressure_transition_period=60))
    assert tracker.update(memory(500 * Mi), 0) == [] and not tracker.pressure().memory
    acted = tracker.update(memory(99 * Mi), 10)
    assert [t.signal for t in acted] == [MEMORY_AVAILABLE] and tracker.pressure().memory
    assert tracker.update(memory(500 * Mi), 20) == []
    assert tracker.pressure().memory                       # 10 s since last seen < 60 s
    tracker.update(memory(500 * Mi), 69.9)
    assert tracker.pressure().memory
    tracker.update(memory(500 * Mi), 70)
    assert not tracker.pressure().memory


def test_soft_threshold_raises_the_condition_at_once_but_acts_only_after_its_grace_period() -> None:
    soft = parse_thresholds({}, {MEMORY_AVAILABLE: "1Gi"}, {MEMORY_AVAILABLE: 30})
    tracker = PressureTracker(EvictionConfig(thresholds=soft))
    assert tracker.update(memory(900 * Mi), 0) == [] and tracker.pressure().memory
    assert tracker.update(memory(900 * Mi), 29) == []
    assert [t.grace_period for t in tracker.update(memory(900 * Mi), 30)] == [30.0]
    tracker.update(memory(2 * Gi), 31)                      # recovered: the clock starts over
    assert tracker.update(memory(900 * Mi), 32) == []


def test_minimum_reclaim_keeps_an_acted_on_threshold_until_value_plus_reclaim() -> None:
    thresholds = parse_thresholds({MEMORY_AVAILABLE: "100Mi"}, minimum_reclaim={MEMORY_AVAILABLE: "400Mi"})
    tracker = PressureTracker(EvictionConfig(thresholds=thresholds))
    assert tracker.update(memory(50 * Mi), 0)
    assert tracker.update(memory(300 * Mi), 1)             # above 100Mi, below 100Mi + 400Mi
    assert tracker.update(memory(499 * Mi), 2)
    assert tracker.update(memory(501 * Mi), 3) == []
    assert tracker.update(memory(300 * Mi), 4) == []       # not met anew: above the bare value


def test_memory_is_reclaimed_before_disk_and_conditions_follow_their_signals() -> None:
    tracker = PressureTracker(EvictionConfig())
    observations = {NODEFS_AVAILABLE: Observation(5, 100), PID_AVAILABLE: Observation(10, 100),
                    MEMORY_AVAILABLE: Observation(10 * Mi, 8 * Gi)}
    acted = tracker.update(observations, 0)
    assert [t.signal for t in acted] == [MEMORY_AVAILABLE, NODEFS_AVAILABLE]   # no pid default
    pressure = tracker.pressure()
    assert pressure.memory and pressure.disk and not pressure.pid


# -- ranking ---------------------------------------------------------------------------------

def test_memory_ranking_over_requests_first_then_priority_then_usage_above_request() -> None:
    pods = [pod("guaranteed-big", memory_request="1Gi"),           # 900Mi, under its request
            pod("low-prio-small", priority=-10),                    # 10Mi over 0
            pod("besteffort-big"),                                   # 300Mi over 0
            pod("besteffort-small"),                                 # 20Mi over 0
            pod("burstable", memory_request="100Mi"),                # 350Mi: 250Mi over
            pod("important", priority=1000)]                         # 800Mi over 0
    usage = memory_usage(**{"guaranteed-big": 900 * Mi, "low-prio-small": 10 * Mi,
                            "besteffort-big": 300 * Mi, "besteffort-small": 20 * Mi,
                            "burstable": 350 * Mi, "important": 800 * Mi})
    assert names(rank_pods(pods, "memory", usage)) == [
        "low-prio-small", "besteffort-big", "burstable", "besteffort-small", "important",
        "guaranteed-big"]


def test_pods_without_usage_figures_rank_first() -> None:
    pods = [pod("measured"), pod("unknown")]
    assert names(rank_pods(pods, "memory", memory_usage(measured=500 * Mi))) == ["unknown", "measured"]


def test_disk_ranking_counts_layers_logs_and_volumes_against_ephemeral_requests() -> None:
    writer = pod("writer")
    writer["spec"]["containers"][0]["resources"] = {"requests": {"ephemeral-storage": "1Gi"}}
    pods = [writer, pod("logger"), pod("quiet", priority=-1)]
    usage = {"uid-writer": PodUsage((ContainerUsage("app", disk=900 * Mi, inodes=5),)),
             "uid-logger": PodUsage((ContainerUsage("app", disk=10 * Mi, inodes=3),), volume_disk=40 * Mi),
             "uid-quiet": PodUsage((ContainerUsage("app", disk=1 * Mi, inodes=1),))}
    assert names(rank_pods(pods, "ephemeral-storage", usage)) == ["quiet", "logger", "writer"]
    assert names(rank_pods(pods[:2], "inodes", usage)) == ["writer", "logger"]


def test_pid_ranking_is_priority_then_process_count() -> None:
    pods = [pod("forky"), pod("calm"), pod("low", priority=-5)]
    usage = {"uid-forky": PodUsage(processes=300), "uid-calm": PodUsage(processes=2),
             "uid-low": PodUsage(processes=1)}
    assert names(rank_pods(pods, "pids", usage)) == ["low", "forky", "calm"]


def test_critical_pods() -> None:
    assert is_critical(pod("node-critical", priority=2_000_001_000))
    assert is_critical(pod("cluster-critical", priority=2_000_000_000))
    assert is_critical(pod("static", annotations={"kubernetes.io/config.source": "file"}))
    assert is_critical(pod("mirror", annotations={"kubernetes.io/config.mirror": "abc"}))
    assert not is_critical(pod("api", priority=1_000_000_000,
                               annotations={"kubernetes.io/config.source": "api"}))


# -- messages and grace ----------------------------------------------------------------------

def test_eviction_message_names_threshold_availability_and_offending_containers() -> None:
    victim = pod("hog", containers=("app", "side"))
    victim["spec"]["containers"][1]["resources"] = {"requests": {"memory": "64Mi"}}
    usage = PodUsage((ContainerUsage("app", memory=200 * Mi), ContainerUsage("side", memory=32 * Mi)))
    thresholds = parse_thresholds({MEMORY_AVAILABLE: "100Mi"})
    message, annotations = eviction_message("memory", victim, usage, thresholds, memory(42 * Mi))
    assert message == ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. "
                       "Container app was using 200Mi, request is 0, has larger consumption of memory. ")
    assert annotations == {"offending_containers": "app", "offending_containers_usage": "200Mi",
                           "starved_resource": "memory"}


def test_percentage_threshold_is_printed_as_the_quantity_it_stands_for() -> None:
    thresholds = parse_thresholds({NODEFS_AVAILABLE: "10%"})
    observed = {NODEFS_AVAILABLE: Observation(5 * Gi, 100 * Gi)}
    message, annotations = eviction_message("ephemeral-storage", pod("x"), None, thresholds, observed)
    assert message == ("The node was low on resource: ephemeral-storage. "
                       "Threshold quantity: 10Gi, available: 5Gi. ")
    assert annotations == {}


def test_grace_periods() -> None:
    config = EvictionConfig(max_pod_grace_period=20)
    hard = Threshold(MEMORY_AVAILABLE, Amount.parse("100Mi"))
    soft = Threshold(MEMORY_AVAILABLE, Amount.parse("1Gi"), grace_period=60)
    assert grace_for(hard, pod("a", grace=300), config) == HARD_GRACE_PERIOD
    assert grace_for(soft, pod("a", grace=300), config) == 20
    assert grace_for(soft, pod("a", grace=5), config) == 5


# -- the manager -----------------------------------------------------------------------------

class ScriptedSignals:
    def __init__(self, usage: dict[str, PodUsage]) -> None:
        self.memory = 4 * Gi
        self.usage = usage
        self.asked: list[str] = []

    async def observe(self) -> dict[str, Observation]:
        return {MEMORY_AVAILABLE: Observation(self.memory, 8 * Gi),
                NODEFS_AVAILABLE: Observation(50 * Gi, 100 * Gi)}

    async def pod_usage(self, pods: Sequence[Obj], resource: str) -> dict[str, PodUsage]:
        self.asked.append(resource)
        return {uid: u for uid, u in self.usage.items() if any(p["metadata"]["uid"] == uid for p in pods)}


class FakeWorker:
    def __init__(self, pod: Obj) -> None:
        self.pod: Obj | None = pod
        self.terminal = False
        self.evictions: list[tuple[float, str, Obj]] = []
        self.stopped = asyncio.Event()

    def evict(self, grace: float, message: str, condition: Obj) -> asyncio.Event:
        self.evictions.append((grace, message, condition))
        self.terminal = True
        self.stopped.set()
        return self.stopped


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, component: str) -> None:
        assert component == "kubelet"
        self.seen.append((obj["metadata"]["name"], type_, reason, message))


async def test_manager_evicts_one_pod_per_pass_never_a_critical_one() -> None:
    pods = [pod("critical-hog", priority=2_000_001_000), pod("hog"), pod("small"), pod("done")]
    workers = {p["metadata"]["uid"]: FakeWorker(p) for p in pods}
    workers["uid-done"].terminal = True
    signals = ScriptedSignals(memory_usage(**{"critical-hog": 900 * Mi, "hog": 300 * Mi, "small": 5 * Mi,
                                              "done": 999 * Mi}))
    events = Events()
    clock = FakeClock()
    manager = EvictionManager(EvictionConfig(pressure_transition_period=30), signals, workers, events,
                              node_name="node-1", clock=clock)

    assert await manager.synchronize() is False
    assert not manager.pressure().memory and signals.asked == []

    signals.memory = 42 * Mi
    changed = asyncio.ensure_future(manager.pressure_changed(3600))
    assert await manager.synchronize() is True
    await asyncio.wait_for(changed, 1)                     # the node status is told at once
    assert manager.pressure().memory and manager.evicted == ["default/hog"]
    [(grace, message, condition)] = workers["uid-hog"].evictions
    assert grace == HARD_GRACE_PERIOD
    assert message == ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. "
                       "Container app was using 300Mi, request is 0, has larger consumption of memory. ")
    assert {k: condition[k] for k in ("type", "status", "reason", "message")} == {
        "type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet", "message": message}
    assert ("node-1", "Warning", "EvictionThresholdMet", "Attempting to reclaim memory") in events.seen
    assert ("hog", "Warning", "Evicted", message) in events.seen

    assert await manager.synchronize() is True             # still starved: the next one
    assert manager.evicted == ["default/hog", "default/small"]
    assert workers["uid-critical-hog"].evictions == [] and workers["uid-done"].evictions == []
    assert await manager.synchronize() is False            # only the critical pod is left

    signals.memory = 4 * Gi
    clock.advance(31)
    assert await manager.synchronize() is False
    assert not manager.pressure().memory


async def test_manager_waits_out_a_soft_grace_period_and_caps_the_pods_grace() -> None:
    config = EvictionConfig(thresholds=parse_thresholds({}, {MEMORY_AVAILABLE: "1Gi"}, {MEMORY_AVAILABLE: "1m"}),
                            max_pod_grace_period=10)
    worker = FakeWorker(pod("slow", grace=30))
    clock = FakeClock()
    signals = ScriptedSignals(memory_usage(slow=100 * Mi))
    signals.memory = 512 * Mi
    manager = EvictionManager(config, signals, {"uid-slow": worker}, Events(), node_name="n", clock=clock)
    assert await manager.synchronize() is False and manager.pressure().memory
    clock.advance(60)
    assert await manager.synchronize() is True
    assert [e[0] for e in worker.evictions] == [10.0]


# -- the kernel readers (on files laid out like cgroupfs / procfs) ---------------------------

def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_node_memory_from_a_v1_root_cgroup_and_from_meminfo_on_v2(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    write(meminfo, "MemTotal:  8388608 kB\nMemFree:  1048576 kB\nInactive(file):  1048576 kB\n")
    v1 = tmp_path / "v1"
    write(v1 / "memory" / "memory.usage_in_bytes", f"{3 * Gi}\n")
    write(v1 / "memory" / "memory.stat", f"cache 1\ntotal_inactive_file {Gi}\n")
    assert node_memory(v1, meminfo) == Observation(available=6 * Gi, capacity=8 * Gi)
    v2 = tmp_path / "v2"
    write(v2 / "cgroup.controllers", "memory pids\n")
    assert node_memory(v2, meminfo) == Observation(available=2 * Gi, capacity=8 * Gi)
    assert read_keyed(meminfo)["MemTotal"] == 8 * Gi


def test_container_working_set_v1_and_v2(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    write(v1 / "memory" / "skiff" / "podu" / "c1" / "memory.usage_in_bytes", str(300 * Mi))
    write(v1 / "memory" / "skiff" / "podu" / "c1" / "memory.stat", f"total_inactive_file {100 * Mi}\n")
    assert container_working_set("/skiff/podu/c1", v1) == 200 * Mi
    v2 = tmp_path / "v2"
    write(v2 / "cgroup.controllers", "memory\n")
    write(v2 / "skiff" / "podu" / "c1" / "memory.current", str(300 * Mi))
    write(v2 / "skiff" / "podu" / "c1" / "memory.stat", f"anon 1\ninactive_file {50 * Mi}\n")
    assert container_working_set("/skiff/podu/c1", v2) == 250 * Mi
    assert container_working_set("/skiff/podu/gone", v2) is None


def test_disk_usage_counts_blocks_and_inodes(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a", "x" * 10000)
    write(tmp_path / "d" / "sub" / "b", "y")
    size, inodes = disk_usage(tmp_path / "d")
    assert inodes == 3 and size >= 10000
    assert disk_usage(tmp_path / "missing") == (0, 0)


class ListingRuntime:
    """Just ``list()``, the one verb NodeSignals asks of a runtime."""

    def __init__(self, containers: list[ContainerStatus]) -> None:
        self.containers = containers

    async def list(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return self.containers


def status(container_id: str, pod_uid: str, name: str, state: ContainerState, *,
           log_path: Path | None = None, pid: int | None = None) -> ContainerStatus:
    return ContainerStatus(id=container_id, sandbox_id="s", name=name, state=state, image="busybox",
                           image_id="sha256:0", created_at=datetime.now(timezone.utc), pid=pid,
                           log_path=log_path, labels={"io.kubernetes.pod.uid": pod_uid,
                                                      "io.kubernetes.container.name": name})


async def test_pod_usage_from_cgroups_layers_logs_and_volumes(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "memory" / "memory.usage_in_bytes", str(Gi))
    for cid, used in (("c1", 300 * Mi), ("c2", 10 * Mi)):
        write(root / "memory" / "skiff" / "poduid-a" / cid / "memory.usage_in_bytes", str(used))
    write(root / "pids" / "skiff" / "poduid-a" / "pids.current", "7\n")
    data, layers = tmp_path / "kubelet", tmp_path / "layers"
    write(layers / "c1" / "upper" / "tmp" / "big", "x" * 50_000)
    write(data / "logs" / "default_a_uid-a" / "app" / "0.log", "y" * 10_000)
    write(data / "pods" / "uid-a" / "volumes" / "kubernetes.io~empty-dir" / "cache" / "f", "z" * 20_000)
    runtime = ListingRuntime([
        status("c1", "uid-a", "app", ContainerState.RUNNING,
               log_path=data / "logs" / "default_a_uid-a" / "app" / "0.log"),
        status("c2", "uid-a", "side", ContainerState.RUNNING),
        status("c0", "uid-a", "app", ContainerState.EXITED),          # a previous instance
        status("c9", "uid-other", "x", ContainerState.RUNNING)])      # not asked about
    signals = NodeSignals(data_dir=data, image_dir=tmp_path, runtime=runtime,
                          cgroup_parent="skiff", writable_layer=lambda cid: layers / cid / "upper",
                          cgroup_root=root)
    pods = [pod("a")]

    memory_use = await signals.pod_usage(pods, "memory")
    assert list(memory_use) == ["uid-a"]
    assert memory_use["uid-a"].containers == (ContainerUsage("app", memory=300 * Mi),
                                              ContainerUsage("side", memory=10 * Mi))
    disk = (await signals.pod_usage(pods, "ephemeral-storage"))["uid-a"]
    app = disk.containers[0]
    assert app.disk is not None and app.disk >= 60_000 and disk.volume_disk >= 20_000
    assert disk.total("ephemeral-storage") >= 80_000 and disk.total("inodes") == 4   # tmp, big, 0.log, f
    assert (await signals.pod_usage(pods, "pids"))["uid-a"].processes == 7

    without_cgroups = NodeSignals(data_dir=data, image_dir=tmp_path, runtime=ListingRuntime(
        [status("p1", "uid-a", "app", ContainerState.RUNNING, pid=os.getpid())]))
    [own] = (await without_cgroups.pod_usage(pods, "memory"))["uid-a"].containers
    assert own.memory is not None and own.memory > 10 * Mi          # this test process's RSS
