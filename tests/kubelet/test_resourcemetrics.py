"""The kubelet's /metrics/resource (skiff.kubelet.resourcemetrics): where the numbers come
from and how they are written.  Fake /proc and cgroup trees in temp directories; no root,
no runc."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from skiff.kubelet.resourcemetrics import (
    CONTENT_TYPE, ContainerUsage, NodeUsage, ResourceMetrics, cgroup_cpu_seconds,
    machine_cpu_seconds, process_cpu_seconds, render,
)
from skiff.kubelet.runtime.interface import ContainerState, ContainerStatus, RuntimeFailure
from skiff.metrics.points import parse_scrape

HZ = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024
PARENT = "skiff"
CREATED = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
STARTED = datetime(2025, 1, 1, 12, 0, 5, tzinfo=timezone.utc)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``(series name, sorted labels) -> value`` of a Prometheus text body."""
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# -- machine_cpu_seconds ------------------------------------------------------------------


def test_machine_cpu_counts_busy_ticks_only(tmp_path: Path) -> None:
    #          user nice system  idle  iowait irq softirq steal guest guest_nice
    stat = write(tmp_path / "stat",
                 "cpu  1000 20 300 999999 4000 5 60 7 400 8\n"
                 "cpu0 500 10 150 499999 2000 2 30 3 200 4\n"
                 "intr 12345\n")
    # idle and iowait are not busy; guest time is already in user
    assert machine_cpu_seconds(stat) == pytest.approx((1000 + 20 + 300 + 5 + 60 + 7) / HZ)


def test_machine_cpu_of_an_old_kernel_with_fewer_columns(tmp_path: Path) -> None:
    stat = write(tmp_path / "stat", "cpu  200 0 100 5000 0\n")
    assert machine_cpu_seconds(stat) == pytest.approx(300 / HZ)


def test_machine_cpu_without_the_file_is_zero(tmp_path: Path) -> None:
    assert machine_cpu_seconds(tmp_path / "missing") == 0.0


def test_machine_cpu_of_this_host_is_positive_and_grows() -> None:
    before = machine_cpu_seconds()
    assert before > 0
    burn_cpu(0.3)     # this process's CPU time is part of the machine's busy time
    assert machine_cpu_seconds() - before >= 0.2


# -- process_cpu_seconds ------------------------------------------------------------------


def stat_line(pid: int, comm: str, utime: int, stime: int, cutime: int, cstime: int) -> str:
    # pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    #   utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss ...
    return (f"{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 1500 90 2 0 "
            f"{utime} {stime} {cutime} {cstime} 20 0 1 0 123456 10485760 300 "
            "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n")


def test_process_cpu_is_utime_stime_and_waited_children(tmp_path: Path) -> None:
    write(tmp_path / "1234" / "stat", stat_line(1234, "nginx", 250, 50, 7, 3))
    assert process_cpu_seconds(1234, tmp_path) == pytest.approx((250 + 50 + 7 + 3) / HZ)


@pytest.mark.parametrize("comm", ["my (odd) name", "a) S 9 9 9 9 9 9 9 9 9 9 9 9 9 9 (", "two  spaces", ")"])
def test_process_cpu_with_spaces_and_parentheses_in_the_command_name(tmp_path: Path, comm: str) -> None:
    write(tmp_path / "77" / "stat", stat_line(77, comm, 1000, 200, 0, 0))
    assert process_cpu_seconds(77, tmp_path) == pytest.approx(1200 / HZ)


def test_process_cpu_of_no_process(tmp_path: Path) -> None:
    assert process_cpu_seconds(None, tmp_path) is None
    assert process_cpu_seconds(4242, tmp_path) is None               # exited: no /proc entry


def burn_cpu(seconds: float) -> None:
    start = time.process_time()
    x = 0
    while time.process_time() - start < seconds:
        x += sum(range(1000))


def test_process_cpu_of_this_process_grows_as_it_computes() -> None:
    before = process_cpu_seconds(os.getpid())
    assert before is not None and before > 0
    burn_cpu(0.3)
    after = process_cpu_seconds(os.getpid())
    assert after is not None
    assert after - before >= 0.2
    times = os.times()
    assert after == pytest.approx(times.user + times.system + times.children_user + times.children_system,
                                  abs=0.1)


# -- cgroup_cpu_seconds -------------------------------------------------------------------


def test_cgroup_cpu_on_v1_reads_cpuacct_usage_in_nanoseconds(tmp_path: Path) -> None:
    write(tmp_path / "cpuacct" / "skiff" / "podU1" / "c1" / "cpuacct.usage", "2500000000\n")
    assert cgroup_cpu_seconds("/skiff/podU1/c1", tmp_path) == 2.5
    assert cgroup_cpu_seconds("skiff/podU1/c1/", tmp_path) == 2.5


def test_cgroup_cpu_on_v2_reads_usage_usec_from_cpu_stat(tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "cpuset cpu io memory pids\n")
    write(tmp_path / "skiff" / "podU1" / "c1" / "cpu.stat",
          "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 0\n")
    # a v1-looking file must not be what is read on a v2 host
    write(tmp_path / "cpuacct" / "skiff" / "podU1" / "c1" / "cpuacct.usage", "9000000000\n")
    assert cgroup_cpu_seconds("/skiff/podU1/c1", tmp_path) == 1.5


def test_cgroup_cpu_of_a_removed_cgroup_is_none(tmp_path: Path) -> None:
    assert cgroup_cpu_seconds("/skiff/podU1/gone", tmp_path) is None
    write(tmp_path / "cgroup.controllers", "cpu memory\n")
    assert cgroup_cpu_seconds("/skiff/podU1/gone", tmp_path) is None
    write(tmp_path / "skiff" / "podU1" / "nocpu" / "cpu.stat", "nr_periods 0\n")
    assert cgroup_cpu_seconds("/skiff/podU1/nocpu", tmp_path) is None


# -- ResourceMetrics ----------------------------------------------------------------------


class FakeRuntime:
    """Only what ResourceMetrics uses of a Runtime: list()."""

    def __init__(self, containers: list[ContainerStatus] | Exception) -> None:
        self.containers = containers

    async def list(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        if isinstance(self.containers, Exception):
            raise self.containers
        return list(self.containers)


def container(cid: str, name: str, state: ContainerState = ContainerState.RUNNING, *,
              namespace: str = "default", pod: str = "web-1", uid: str = "U1",
              started: datetime | None = STARTED, pid: int | None = None,
              labels: dict[str, str] | None = None) -> ContainerStatus:
    if labels is None:
        labels = {"io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.name": pod,
                  "io.kubernetes.pod.uid": uid, "io.kubernetes.container.name": name}
    return ContainerStatus(id=cid, sandbox_id=f"sb-{pod}", name=f"k8s_{name}_{pod}", state=state,
                           image="busybox:test", image_id="sha256:abc", created_at=CREATED,
                           started_at=started, pid=pid, labels=labels)


def v1_container_cgroup(root: Path, uid: str, cid: str, cpu_ns: int, usage: int, inactive: int) -> None:
    write(root / "cpuacct" / PARENT / f"pod{uid}" / cid / "cpuacct.usage", f"{cpu_ns}\n")
    memory = root / "memory" / PARENT / f"pod{uid}" / cid
    write(memory / "memory.usage_in_bytes", f"{usage}\n")
    write(memory / "memory.stat", f"cache 100\ntotal_inactive_file {inactive}\ntotal_rss 5\n")


@pytest.fixture
def v1_root(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    write(root / "memory" / "memory.usage_in_bytes", f"{300 * MiB}\n")
    write(root / "memory" / "memory.stat", f"total_inactive_file {100 * MiB}\n")
    return root


async def test_sample_reports_running_containers_from_their_cgroups(v1_root: Path) -> None:
    v1_container_cgroup(v1_root, "U1", "c-app", 2_500_000_000, 50 * MiB, 10 * MiB)
    v1_container_cgroup(v1_root, "U1", "c-side", 500_000_000, 5 * MiB, 1 * MiB)
    v1_container_cgroup(v1_root, "U1", "c-old", 9_000_000_000, 9 * MiB, 0)       # exited
    v1_container_cgroup(v1_root, "U2", "c-new", 1_000_000_000, 9 * MiB, 0)       # created
    v1_container_cgroup(v1_root, "U3", "c-dns", 4_000_000_000, 20 * MiB, 4 * MiB)
    runtime = FakeRuntime([
        container("c-app", "app"),
        container("c-side", "sidecar", started=None),
        container("c-old", "app", ContainerState.EXITED),
        container("c-new", "app", ContainerState.CREATED, pod="web-2", uid="U2"),
        container("c-dns", "coredns", namespace="kube-system", pod="coredns-1", uid="U3"),
        container("c-gone", "app", pod="web-3", uid="U4"),       # running, but its cgroup is gone
        container("c-unk", "app", ContainerState.UNKNOWN, pod="web-5", uid="U5"),
    ])
    metrics = ResourceMetrics(runtime, cgroup_parent=PARENT, cgroup_root=v1_root)  # type: ignore[arg-type]
    before = time.time()
    node, containers = await metrics.sample()
    after = time.time()
    assert node.memory_bytes == 200 * MiB              # root memory cgroup: usage - inactive file
    assert node.cpu_seconds > 0
    assert before <= node.sampled_at <= after
    got = {(c.namespace, c.pod, c.container): c for c in containers}
    assert set(got) == {("default", "web-1", "app"), ("default", "web-1", "sidecar"),
                        ("kube-system", "coredns-1", "coredns")}
    app = got[("default", "web-1", "app")]
    assert (app.cpu_seconds, app.memory_bytes) == (2.5, 40 * MiB)
    assert app.started_at == STARTED.timestamp()
    assert before <= app.sampled_at <= after
    side = got[("default", "web-1", "sidecar")]
    assert (side.cpu_seconds, side.memory_bytes) == (0.5, 4 * MiB)
    assert side.started_at == CREATED.timestamp()      # not started yet: its creation time
    dns = got[("kube-system", "coredns-1", "coredns")]
    assert (dns.cpu_seconds, dns.memory_bytes) == (4.0, 16 * MiB)


async def test_sample_on_a_cgroup_v2_host(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu memory pids\n")
    base = root / PARENT / "podU1" / "c1"
    write(base / "cpu.stat", "usage_usec 3250000\nuser_usec 3000000\n")
    write(base / "memory.current", f"{64 * MiB}\n")
    write(base / "memory.stat", f"anon 1\nfile 2\ninactive_file {16 * MiB}\n")
    metrics = ResourceMetrics(FakeRuntime([container("c1", "app")]),  # type: ignore[arg-type]
                              cgroup_parent=PARENT, cgroup_root=root)
    node, containers = await metrics.sample()
    assert node.memory_bytes > 0 and node.cpu_seconds > 0
    assert [(c.container, c.cpu_seconds, c.memory_bytes) for c in containers] == [("app", 3.25, 48 * MiB)]


async def test_without_cgroups_a_container_is_its_main_process(tmp_path: Path) -> None:
    me = os.getpid()
    runtime = FakeRuntime([container("p1", "app", pid=me),
                           container("p2", "gone", pid=None),
                           container("p3", "stopped", ContainerState.EXITED, pid=me)])
    metrics = ResourceMetrics(runtime, cgroup_parent=None, cgroup_root=tmp_path)  # type: ignore[arg-type]
    _, containers = await metrics.sample()
    assert [c.container for c in containers] == ["app"]
    own = process_cpu_seconds(me)
    assert own is not None
    assert containers[0].cpu_seconds == pytest.approx(own, abs=0.1)
    assert containers[0].memory_bytes > MiB      # this Python's resident set


async def test_the_container_name_label_falls_back_to_the_runtime_name(v1_root: Path) -> None:
    v1_container_cgroup(v1_root, "", "c1", 1_000_000_000, MiB, 0)
    runtime = FakeRuntime([container("c1", "app", labels={})])
    metrics = ResourceMetrics(runtime, cgroup_parent=PARENT, cgroup_root=v1_root)  # type: ignore[arg-type]
    _, containers = await metrics.sample()
    assert [(c.namespace, c.pod, c.container) for c in containers] == [("", "", "k8s_app_web-1")]


async def test_render_writes_what_the_metrics_server_reads(v1_root: Path) -> None:
    v1_container_cgroup(v1_root, "U1", "c-app", 2_500_000_000, 50 * MiB, 10 * MiB)
    v1_container_cgroup(v1_root, "U1", "c-side", 500_000_000, 5 * MiB, 1 * MiB)
    v1_container_cgroup(v1_root, "U1", "c-old", 7_000_000_000, 7 * MiB, 0)
    v1_container_cgroup(v1_root, "U3", "c-dns", 4_000_000_000, 20 * MiB, 4 * MiB)
    runtime = FakeRuntime([container("c-app", "app"), container("c-side", "sidecar"),
                           container("c-old", "app", ContainerState.EXITED),
                           container("c-dns", "coredns", namespace="kube-system", pod="coredns-1", uid="U3")])
    metrics = ResourceMetrics(runtime, cgroup_parent=PARENT, cgroup_root=v1_root)  # type: ignore[arg-type]
    body = await metrics.render()
    got = samples(body)
    app = (("container", "app"), ("namespace", "default"), ("pod", "web-1"))
    side = (("container", "sidecar"), ("namespace", "default"), ("pod", "web-1"))
    assert got[("container_cpu_usage_seconds_total", app)] == 2.5
    assert got[("container_memory_working_set_bytes", app)] == 40 * MiB
    assert got[("container_start_time_seconds", app)] == STARTED.timestamp()
    assert got[("container_cpu_usage_seconds_total", side)] == 0.5
    web = (("namespace", "default"), ("pod", "web-1"))
    dns = (("namespace", "kube-system"), ("pod", "coredns-1"))
    assert got[("pod_cpu_usage_seconds_total", web)] == 3.0                 # app + sidecar, not the exited one
    assert got[("pod_memory_working_set_bytes", web)] == 44 * MiB
    assert got[("pod_cpu_usage_seconds_total", dns)] == 4.0
    assert got[("pod_memory_working_set_bytes", dns)] == 16 * MiB
    assert got[("node_memory_working_set_bytes", ())] == 200 * MiB
    assert got[("node_cpu_usage_seconds_total", ())] > 0
    assert got[("resource_scrape_error", ())] == 0
    assert len([k for k in got if k[0] == "container_cpu_usage_seconds_total"]) == 3
    scrape = parse_scrape(body.decode())
    assert set(scrape.containers) == {("default", "web-1", "app"), ("default", "web-1", "sidecar"),
                                      ("kube-system", "coredns-1", "coredns")}
    assert scrape.node is not None and scrape.node.memory_bytes == 200 * MiB


async def test_render_reports_a_scrape_error_when_the_runtime_fails(tmp_path: Path) -> None:
    metrics = ResourceMetrics(FakeRuntime(RuntimeFailure("runc list: boom")),  # type: ignore[arg-type]
                              cgroup_parent=PARENT, cgroup_root=tmp_path)
    body = await metrics.render()
    got = samples(body)
    assert got[("resource_scrape_error", ())] == 1
    assert not [k for k in got if k[0] != "resource_scrape_error"]


def test_render_sums_pods_and_stamps_samples_in_milliseconds() -> None:
    at = 1_700_000_000.25
    body = render(NodeUsage(100.5, 3 * MiB, at + 1.0), [
        ContainerUsage("ns", "p", "a", 1.25, MiB, at - 60, at),
        ContainerUsage("ns", "p", "b", 0.75, 2 * MiB, at - 30, at + 0.5),
        ContainerUsage("ns", "q", "a", 4.0, 8 * MiB, at - 10, at),
    ])
    lines = body.decode().splitlines()
    assert 'container_cpu_usage_seconds_total{container="a",namespace="ns",pod="p"} 1.25 1700000000250' in lines
    assert 'pod_cpu_usage_seconds_total{namespace="ns",pod="p"} 2.0 1700000000750' in lines   # the newest
    assert "node_cpu_usage_seconds_total 100.5 1700000001250" in lines
    assert "# TYPE container_cpu_usage_seconds_total counter" in lines
    assert "# TYPE container_memory_working_set_bytes gauge" in lines
    got = samples(body)
    assert got[("pod_memory_working_set_bytes", (("namespace", "ns"), ("pod", "p")))] == 3 * MiB
    assert got[("pod_cpu_usage_seconds_total", (("namespace", "ns"), ("pod", "q")))] == 4.0
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
