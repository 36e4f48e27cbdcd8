"""`skiff up` runs its scheduler and node agent as child processes (cli/children.py).

What a user sees: the cluster works the same with and without ``--single-process``;
the children go when `skiff up` goes, also when it is killed (no orphan scheduler or
node agent left on the machine); and a child that dies takes the cluster down with
exit code 1 and says which one, instead of leaving a half-working cluster.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path
from typing import Any

from e2e_support import SkiffProcess


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the processes ``pid`` started."""
    children: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            children[int(child)] = cmdline.decode()
    return children


def _component(children: dict[int, str], marker: str) -> int:
    found = [pid for pid, cmd in children.items() if marker in cmd]
    assert len(found) == 1, f"expected one {marker!r} child, got {children}"
    return found[0]


def _await_exit(pidfd: int, timeout: float) -> bool:
    """True once the process behind ``pidfd`` has ended (a pidfd reads ready then)."""
    ready, _, _ = select.select([pidfd], [], [], timeout)
    return bool(ready)


def _run_pod(cluster: SkiffProcess, name: str) -> dict[str, Any]:
    cluster.kubectl("run", name, "--image=registry.k8s.io/pause:3.10")
    cluster.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")
    pod: dict[str, Any] = cluster.get_json("pod", name)
    return pod


def test_scheduler_and_node_agent_are_children_that_die_with_skiff_up(start_cluster: Any) -> None:
    cluster = start_cluster(nodes=2)
    assert cluster.proc is not None
    children = _children(cluster.proc.pid)
    scheduler = _component(children, "skiff.scheduler")
    agent = _component(children, " agent ")
    pod = _run_pod(cluster, "placed")  # bound by the scheduler process, run by the agent's nodes
    assert pod["spec"]["nodeName"] in ("skiff-node-0", "skiff-node-1")

    pidfds = [os.pidfd_open(scheduler), os.pidfd_open(agent)]
    try:
        cluster.crash()  # SIGKILL to skiff up alone, not to its children
        for pidfd in pidfds:
            assert _await_exit(pidfd, 10), "a component process outlived skiff up"
    finally:
        for pidfd in pidfds:
            os.close(pidfd)


def test_a_component_process_that_dies_stops_the_cluster(start_cluster: Any) -> None:
    cluster = start_cluster()
    assert cluster.proc is not None
    scheduler = _component(_children(cluster.proc.pid), "skiff.scheduler")
    os.kill(scheduler, signal.SIGKILL)
    try:
        code = cluster.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("skiff up kept running without its scheduler") from None
    assert code == 1
    assert "component scheduler exited with code -9" in cluster.stderr_tail()


def test_a_component_that_crashes_leaves_where_it_was_in_the_log(start_cluster: Any) -> None:
    cluster = start_cluster()
    assert cluster.proc is not None
    scheduler = _component(_children(cluster.proc.pid), "skiff.scheduler")
    os.kill(scheduler, signal.SIGABRT)         # what a crash in C code (uvloop, libc) raises
    try:
        code = cluster.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("skiff up kept running without its scheduler") from None
    assert code == 1
    log = cluster.stderr_tail()
    assert "Fatal Python error: Aborted" in log and "File " in log   # the threads' stacks
    assert "component scheduler exited with code -6" in log


def test_single_process_runs_the_same_cluster_in_one_process(start_cluster: Any) -> None:
    cluster = start_cluster("--single-process", nodes=2)
    assert cluster.proc is not None
    assert _children(cluster.proc.pid) == {}
    pod = _run_pod(cluster, "placed")
    assert pod["status"]["phase"] == "Running"
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=placed").stdout
    assert "Successfully assigned default/placed to skiff-node-" in events
