"""How the runc runtime starts things cheaply: shims forked by one launcher, pod
namespaces made on a throwaway thread (no process per sandbox or per shim)."""

from __future__ import annotations

import json
import os
import select
import signal
from pathlib import Path

from runtime_support import SpecFactory, start

from skiff.kubelet.runtime.interface import ContainerState, SandboxSpec
from skiff.kubelet.runtime.namespaces import create_namespaces, remove_namespaces
from skiff.kubelet.runtime.runc import RuncRuntime


def _started(runtime: RuncRuntime, container_id: str) -> dict[str, int]:
    doc: dict[str, int] = json.loads((runtime.containers / container_id / "started.json").read_text())
    return doc


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_one_launcher_forks_every_shim_and_outlives_nothing(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    first = await start(runtime, spec(sandbox, "sleep", "1000"))
    second = await start(runtime, spec(sandbox, "sleep", "1000", name="d"))
    shims = [_started(runtime, c)["shimPid"] for c in (first, second)]
    assert [Path(f"/proc/{pid}/comm").read_text().strip() for pid in shims] == ["skiff-shim"] * 2
    launcher = _parent(shims[0])
    assert _parent(shims[1]) == launcher and _parent(launcher) == os.getpid()
    assert os.getsid(shims[0]) == shims[0]              # each shim leads its own session

    watch = os.pidfd_open(launcher)
    try:
        await runtime.close()     # the kubelet goes away: the launcher ends, the containers stay
        assert select.select([watch], [], [], 10)[0] == [watch]      # readable: it exited
    finally:
        os.close(watch)
    assert all(_alive(pid) for pid in shims)
    assert [(await runtime.status(c)).state for c in (first, second)] == [ContainerState.RUNNING] * 2


async def test_a_dead_launcher_is_replaced(runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    first = await start(runtime, spec(sandbox, "sleep", "1000"))
    launcher = _parent(_started(runtime, first)["shimPid"])
    os.kill(launcher, signal.SIGKILL)
    os.waitpid(launcher, 0)
    second = await start(runtime, spec(sandbox, "sleep", "1000", name="d"))
    assert _parent(_started(runtime, second)["shimPid"]) not in (launcher, 1)
    assert (await runtime.status(second)).state == ContainerState.RUNNING
    assert (await runtime.status(first)).state == ContainerState.RUNNING


async def test_a_reused_shim_pid_is_not_taken_for_the_shim(runtime: RuncRuntime, sandbox: str,
                                                          spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    path = runtime.containers / container_id / "started.json"
    started = json.loads(path.read_text())

    async def state_after_a_restart(recorded: dict[str, int]) -> tuple[ContainerState, str]:
        path.write_text(json.dumps(recorded))
        again = RuncRuntime(runtime.root, cgroup_parent=runtime.cgroup_parent)
        try:
            status = await again.status(container_id)
        finally:
            await again.close()
        return status.state, status.reason

    # the same pid, but another process start: not the shim
    assert await state_after_a_restart(dict(started, shimStartTime=started["shimStartTime"] + 1)) \
        == (ContainerState.EXITED, "Unknown")
    assert await state_after_a_restart(started) == (ContainerState.RUNNING, "")


def _namespace(path: str) -> int:
    return os.stat(path).st_ino


async def test_pod_namespaces_are_made_without_moving_the_caller(tmp_path: Path) -> None:
    mine = {kind: _namespace(f"/proc/thread-self/ns/{kind}") for kind in ("net", "ipc", "uts")}
    made = await create_namespaces(tmp_path / "ns", ["net", "ipc", "uts"], "pod-host")
    try:
        assert {kind: _namespace(f"/proc/thread-self/ns/{kind}") for kind in mine} == mine
        inodes = {kind: _namespace(str(path)) for kind, path in made.items()}
        assert all(inodes[kind] != mine[kind] for kind in mine)
        other = await create_namespaces(tmp_path / "other", ["net"], "")
        assert _namespace(str(other["net"])) not in (inodes["net"], mine["net"])
        remove_namespaces(tmp_path / "other")
    finally:
        remove_namespaces(tmp_path / "ns")
    assert list((tmp_path / "ns").iterdir()) == []


async def test_a_sandbox_s_hostname_and_loopback(runtime: RuncRuntime, spec: SpecFactory) -> None:
    sandbox = await runtime.run_sandbox(SandboxSpec(name="web", namespace="default", uid="u1",
                                                    hostname="the-pod"))
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    result = await runtime.exec_sync(container_id, ["sh", "-c", "hostname; cat /sys/class/net/lo/operstate"])
    assert result.stdout.decode().split() == ["the-pod", "unknown"]   # lo is up ("unknown" for lo)
    assert os.uname().nodename != "the-pod"
