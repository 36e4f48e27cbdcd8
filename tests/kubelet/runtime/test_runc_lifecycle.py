"""Container lifecycle with real runc: run, logs, exit codes, stop, OOM, adoption, cleanup."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from pathlib import Path

import pytest
from runtime_support import SpecFactory, leftovers, run_to_exit, start

from skiff.kubelet.runtime import cgroups, shimmed
from skiff.kubelet.runtime.interface import (ContainerState, Resources, SandboxSpec,
                                             StartFailed)
from skiff.kubelet.runtime.runc import RuncRuntime

CRI_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] .*$")


async def test_echo_hello_is_logged_in_cri_format(runtime: RuncRuntime, sandbox: str,
                                                  spec: SpecFactory) -> None:
    status, lines = await run_to_exit(runtime, spec(sandbox, "sh", "-c", "echo hello; echo oops >&2"))
    assert status.state == ContainerState.EXITED
    assert (status.exit_code, status.reason) == (0, "Completed")
    assert status.started_at is not None and status.finished_at is not None
    assert status.created_at <= status.started_at <= status.finished_at
    assert lines == ["stdout hello", "stderr oops"]
    raw = Path(status.log_path or "").read_bytes().splitlines()
    assert len(raw) == 2 and all(CRI_LINE.match(line) for line in raw)
    assert raw[0].endswith(b" stdout F hello")


async def test_exit_code_and_reason(runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    status, _ = await run_to_exit(runtime, spec(sandbox, "sh", "-c", "exit 3"))
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 3, "Error")


async def test_missing_executable_fails_to_start(runtime: RuncRuntime, sandbox: str,
                                                 spec: SpecFactory) -> None:
    container_id = await runtime.create(spec(sandbox, "/no/such/binary"))
    with pytest.raises(StartFailed, match="no such file"):
        await runtime.start(container_id)
    status = await runtime.status(container_id)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 128, "StartError")


async def test_stop_with_sigterm_within_grace(runtime: RuncRuntime, sandbox: str,
                                              spec: SpecFactory) -> None:
    command = "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 1000 & wait"
    container_id = await start(runtime, spec(sandbox, "sh", "-c", command))
    async for record in runtime.logs(container_id, follow=True):
        if record.content == b"ready":
            break
    began = time.monotonic()
    await runtime.stop(container_id, timeout=10)
    elapsed = time.monotonic() - began
    status = await runtime.status(container_id)
    assert (status.state, status.exit_code) == (ContainerState.EXITED, 0)
    assert elapsed < 5, f"SIGTERM was not handled promptly ({elapsed:.1f}s)"
    assert [r.content async for r in runtime.logs(container_id)] == [b"ready", b"got TERM"]


async def test_stop_escalates_to_sigkill_after_grace(runtime: RuncRuntime, sandbox: str,
                                                     spec: SpecFactory) -> None:
    # PID 1 of a pid namespace ignores SIGTERM unless it handles it: sleep does not
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    began = time.monotonic()
    await runtime.stop(container_id, timeout=0.5)
    elapsed = time.monotonic() - began
    status = await runtime.status(container_id)
    assert (status.exit_code, status.reason) == (128 + signal.SIGKILL, "Error")
    assert 0.5 <= elapsed < 5


async def test_memory_limit_oom_kills_with_137(runtime: RuncRuntime, sandbox: str,
                                               spec: SpecFactory) -> None:
    hog = 'BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }'
    status, _ = await run_to_exit(runtime, spec(
        sandbox, "awk", hog, resources=Resources(memory_limit=32 << 20)))
    assert (status.exit_code, status.reason, status.oom_killed) == (137, "OOMKilled", True)


async def test_cgroup_limits_are_applied(runtime: RuncRuntime, sandbox: str,
                                         spec: SpecFactory) -> None:
    resources = Resources.from_kubernetes(cpu_request_milli=250, cpu_limit_milli=500,
                                          memory_limit=64 << 20, pids_limit=50)
    container_id = await start(runtime, spec(sandbox, "sleep", "1000", resources=resources))
    path = runtime._record(container_id)["cgroupsPath"].strip("/")
    root = Path("/sys/fs/cgroup")
    assert (root / "cpu" / path / "cpu.shares").read_text().strip() == "256"
    assert (root / "cpu" / path / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (root / "cpu" / path / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert int((root / "memory" / path / "memory.limit_in_bytes").read_text()) == 64 << 20
    assert (root / "pids" / path / "pids.max").read_text().strip() == "50"
    await runtime.remove(container_id)
    assert cgroups.existing("/" + path) == []


async def test_logs_follow_until_exit_and_tail(runtime: RuncRuntime, sandbox: str,
                                               spec: SpecFactory) -> None:
    command = "for i in 1 2 3 4 5; do echo line $i; sleep 0.05; done"
    container_id = await start(runtime, spec(sandbox, "sh", "-c", command))
    followed = [r.content async for r in runtime.logs(container_id, follow=True)]
    assert followed == [f"line {i}".encode() for i in range(1, 6)]
    tail = [r.content async for r in runtime.logs(container_id, tail_lines=2)]
    assert tail == [b"line 4", b"line 5"]


async def test_log_rotation_keeps_every_line_in_order(tmp_path: Path, spec: SpecFactory) -> None:
    rt = RuncRuntime(tmp_path / "state", cgroup_parent="skiff-test-rotate", log_max_size=2048,
                     log_max_files=20)
    try:
        sandbox = await rt.run_sandbox(SandboxSpec(name="rot", namespace="default", uid="rot"))
        status, lines = await run_to_exit(rt, spec(sandbox, "sh", "-c", "seq 1 300"))
        assert status.exit_code == 0
        assert lines == [f"stdout {i}" for i in range(1, 301)]
        assert Path(f"{status.log_path}.1").exists()
        assert Path(status.log_path or "").stat().st_size <= 2048
    finally:
        for box in await rt.list_sandboxes():
            await rt.remove_sandbox(box.id)
        await rt.close()
        cgroups.remove("/skiff-test-rotate")


async def test_running_containers_are_adopted_by_a_new_runtime(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    before = await runtime.status(container_id)
    await runtime.close()          # the kubelet goes away; the container keeps running

    again = RuncRuntime(runtime.root, cgroup_parent=runtime.cgroup_parent)
    try:
        [sandbox_status] = await again.list_sandboxes()
        assert sandbox_status.id == sandbox and sandbox_status.name == "web"
        [adopted] = await again.list()
        assert adopted.id == container_id
        assert adopted.state == ContainerState.RUNNING and adopted.pid == before.pid
        # the shim still owns the container's stdout: output keeps reaching the log
        result = await again.exec_sync(container_id, ["sh", "-c", "echo after restart > /proc/1/fd/1"])
        assert result.exit_code == 0
        await again.stop(container_id, timeout=0.5)
        status = await again.status(container_id)
        assert status.state == ContainerState.EXITED and status.exit_code == 137
        assert [r.content async for r in again.logs(container_id)] == [b"after restart"]
    finally:
        await again.close()


async def test_nothing_is_left_after_removal(runtime: RuncRuntime, sandbox: str,
                                             spec: SpecFactory) -> None:
    running = await start(runtime, spec(sandbox, "sleep", "1000"))
    await run_to_exit(runtime, spec(sandbox, "true"))
    assert leftovers(runtime.root, runtime.runc_root, runtime.cgroup_parent)  # really there
    assert (await runtime.status(running)).state == ContainerState.RUNNING
    await runtime.remove_sandbox(sandbox)
    assert await runtime.list() == [] and await runtime.list_sandboxes() == []
    assert list((runtime.root / "containers").iterdir()) == []
    assert list((runtime.root / "sandboxes").iterdir()) == []
    # the namespace keeper waits for the next pod while the runtime is open; closing
    # the runtime with no sandbox left ends it
    assert [f for f in leftovers(runtime.root, runtime.runc_root, runtime.cgroup_parent)
            if "(in the keeper's namespace)" in f or not ("keeper" in f or "nskeeper" in f)] == []
    await runtime.close()
    assert leftovers(runtime.root, runtime.runc_root, runtime.cgroup_parent) == []


async def test_a_restarted_runtime_removes_pod_cgroups_no_sandbox_accounts_for(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    running = await start(runtime, spec(sandbox, "sleep", "1000"))
    live = cgroups.pod_path(runtime.cgroup_parent, runtime.sandboxes.pod_uid(sandbox))
    stale = cgroups.pod_path(runtime.cgroup_parent, "0c3f2a4e-left-by-a-crash")
    for hierarchy in cgroups.hierarchies():          # a pod cgroup with an empty container one
        (hierarchy / stale.strip("/") / "f00d").mkdir(parents=True)
    again = RuncRuntime(runtime.root, cgroup_parent=runtime.cgroup_parent)   # a restart
    try:
        assert cgroups.existing(stale) == []
        assert cgroups.existing(live) != []
        assert (await again.status(running)).state == ContainerState.RUNNING
    finally:
        await again.close()


async def test_a_container_that_outlives_sigkill_is_logged_while_stop_waits(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shimmed, "KILL_WARNING_SECONDS", 0.2)
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    deliver = runtime._stop_signal

    async def lost(_: str, __: int) -> bool:          # as if the process could not die yet
        return True

    monkeypatch.setattr(runtime, "_stop_signal", lost)
    warned = asyncio.Event()

    class Flag(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "has not exited" in record.getMessage() and container_id[:12] in record.getMessage():
                warned.set()

    flag = Flag()
    logging.getLogger(shimmed.__name__).addHandler(flag)
    try:
        stopping = asyncio.ensure_future(runtime.stop(container_id, 0))
        await asyncio.wait_for(warned.wait(), 10)
        assert not stopping.done()                     # still waiting for the exit
        await deliver(container_id, signal.SIGKILL)
        await asyncio.wait_for(stopping, 10)
    finally:
        logging.getLogger(shimmed.__name__).removeHandler(flag)
    assert (await runtime.status(container_id)).state == ContainerState.EXITED
