"""The namespace keeper (kubelet/runtime/nskeeper.py): a pod's namespace files are
mounted in a mount namespace of the node's own, so the host's mount table -- which
every ``runc run`` reads and copies -- does not grow with the pods."""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path

from runtime_support import SpecFactory, leftovers, run_to_exit, start

from skiff.kubelet.runtime.interface import ContainerState, SandboxSpec
from skiff.kubelet.runtime.mounts import mount_points_under
from skiff.kubelet.runtime.runc import RuncRuntime


def _keeper_pid(runtime: RuncRuntime) -> int:
    return int(json.loads((runtime.root / "nskeeper.json").read_text())["pid"])


def _mounts_in(pid: int, below: Path) -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as mountinfo:
        return [line.split()[4] for line in mountinfo if line.split()[4].startswith(f"{below}/")]


def _ns(pid: int, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


async def test_pod_namespaces_are_mounted_in_the_keepers_namespace_only(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    other = await runtime.run_sandbox(SandboxSpec(name="db", namespace="default",
                                                  uid=secrets.token_hex(8), hostname="db-0"))
    keeper = _keeper_pid(runtime)
    on_host = [m for m in mount_points_under(runtime.root) if "/ns/" in m]
    assert on_host == []                                    # not one line per namespace here
    assert len([m for m in _mounts_in(keeper, runtime.root) if "/ns/" in m]) == 6   # but there
    assert [m for m in mount_points_under(runtime.root) if m.endswith("nskeeper.mnt")]  # one pin

    # containers of a pod join its namespaces through the keeper: both share them
    first = await start(runtime, spec(sandbox, "sleep", "1000"))
    second = await start(runtime, spec(sandbox, "sleep", "1000", name="d"))
    pids = [(await runtime.status(c)).pid for c in (first, second)]
    assert pids[0] and pids[1]
    for kind in ("net", "ipc", "uts"):
        assert _ns(pids[0], kind) == _ns(pids[1], kind) != _ns(os.getpid(), kind)
    status, lines = await run_to_exit(runtime, spec(other, "hostname", name="h"))
    assert status.exit_code == 0 and lines == ["stdout db-0"]


async def test_a_killed_keeper_is_replaced_and_the_pods_namespaces_survive(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    first = await start(runtime, spec(sandbox, "sleep", "1000"))
    net = _ns((await runtime.status(first)).pid, "net")
    keeper = _keeper_pid(runtime)
    os.kill(keeper, signal.SIGKILL)
    os.waitpid(keeper, 0)

    # the next sandbox brings a new keeper into the same (pinned) namespace ...
    await runtime.run_sandbox(SandboxSpec(name="next", namespace="default", uid=secrets.token_hex(8)))
    assert _keeper_pid(runtime) != keeper
    # ... where the first pod's namespaces still are: a restarted container joins them
    again = await start(runtime, spec(sandbox, "sleep", "1000", name="again"))
    assert _ns((await runtime.status(again)).pid, "net") == net
    netns = (await runtime.sandbox_status(sandbox)).netns_path
    assert netns is not None and os.stat(netns).st_ino == net


async def test_a_restarted_runtime_adopts_the_keeper_and_the_last_close_ends_it(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    running = await start(runtime, spec(sandbox, "sleep", "1000"))
    keeper = _keeper_pid(runtime)
    await runtime.close()                            # a node agent stopping with pods left
    assert (await runtime.status(running)).state == ContainerState.RUNNING
    assert Path(f"/proc/{keeper}").exists()          # the keeper stays, like the shims

    again = RuncRuntime(runtime.root, cgroup_parent=runtime.cgroup_parent)
    try:
        other = await again.run_sandbox(SandboxSpec(name="b", namespace="default",
                                                    uid=secrets.token_hex(8)))
        assert _keeper_pid(again) == keeper           # adopted, not a second one
        for sandbox_id in (sandbox, other):
            for container in await again.list(sandbox_id):
                await again.stop(container.id, timeout=0.5)
                await again.remove(container.id)
            await again.remove_sandbox(sandbox_id)
    finally:
        await again.close()                           # no sandbox left: the keeper ends
    assert not Path(f"/proc/{keeper}").exists() or _zombie(keeper)
    assert leftovers(runtime.root, runtime.runc_root, runtime.cgroup_parent) == []


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
