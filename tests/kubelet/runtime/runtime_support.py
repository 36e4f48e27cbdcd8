"""Helpers shared by the runc runtime tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from skiff.kubelet.runtime import cgroups
from skiff.kubelet.runtime.interface import ContainerSpec, ContainerStatus
from skiff.kubelet.runtime.mounts import mount_points_under
from skiff.kubelet.runtime.nskeeper import leftovers as keeper_leftovers
from skiff.kubelet.runtime.runc import RuncRuntime

SpecFactory = Callable[..., ContainerSpec]   # spec(sandbox_id, *argv, **fields)


def leftovers(root: Path, runc_root: Path, cgroup_parent: str) -> list[str]:
    """Anything a runtime left behind: mounts (also in its namespace keeper's mount
    namespace, and the keeper itself), runc containers, cgroups."""
    found = [f"mount {m}" for m in mount_points_under(root)] + keeper_leftovers(root)
    listing = subprocess.run(["runc", "--root", str(runc_root), "list", "-q"],
                             capture_output=True, text=True)
    found += [f"runc container {c}" for c in listing.stdout.split()]
    found += [f"cgroup {d}" for top in cgroups.existing(cgroup_parent)
              for d in top.iterdir() if d.is_dir()]
    return found


async def run_to_exit(runtime: RuncRuntime, spec: ContainerSpec) -> tuple[ContainerStatus, list[str]]:
    """Create, start and wait for a container; its status and log lines ("stream text")."""
    container_id = await runtime.create(spec)
    await runtime.start(container_id)
    status = await runtime.wait(container_id)
    lines = [f"{r.stream} {r.content.decode()}" async for r in runtime.logs(container_id)]
    return status, lines


async def start(runtime: RuncRuntime, spec: ContainerSpec) -> str:
    container_id = await runtime.create(spec)
    await runtime.start(container_id)
    return container_id
