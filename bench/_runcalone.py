"""The floor under pod startup on this machine: the same burst with runc alone.

``RuncAlone(base).burst(n, slots)`` starts ``n`` busybox ``sleep`` containers with
``runc run --detach``, ``slots`` at a time, first come first served (as the node
agent's start slots do), and returns each one's time from the burst's start to its
``runc run`` returning.  No API server, no scheduler, no kubelet: what is left when
all of Kubernetes' own work is taken away.

The containers get what a pod's container gets from runc: their own pid, ipc, uts,
mount and network namespaces (a pod's sandbox makes the last three once per pod; here
runc makes them), a cgroup in every hierarchy, /proc, /dev, /sys and the cgroup tree
mounted, runc's default masked and read-only paths.  Not included: the overlay root
file system, the pod network (veth, bridge, address), volumes, the shim.

Everything lives under ``base``: runc's state (``--root``), the bundles, and a cgroup
parent named after ``base`` and its parent; ``cleanup()`` deletes every container and
removes the cgroups, also after a failure.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

from skiff.kubelet.runtime import cgroups

BUSYBOX = Path("/bin/busybox")


class RuncAlone:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "runc-root"
        self.bundle = base / "bundle"
        self.cgroup_parent = f"/{base.parent.name}-{base.name}"
        self.started: list[str] = []
        self._make_bundle()

    def _make_bundle(self) -> None:
        rootfs = self.bundle / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        subprocess.run(["runc", "spec", "--bundle", str(self.bundle)], check=True, capture_output=True)
        config_path = self.bundle / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["terminal"] = False
        config["process"]["args"] = ["/bin/busybox", "sleep", "36000"]
        config["root"]["readonly"] = False
        config["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]
        config_path.write_text(json.dumps(config))
        self.root.mkdir()

    async def _run(self, container_id: str, config_dir: Path) -> None:
        # runc hands its own stdio to the container, so no pipe here: a pipe's end kept
        # by the container would never reach EOF.
        errors = config_dir / "runc.stderr"
        with open(errors, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                "runc", "--root", str(self.root), "run", "--detach", "--bundle", str(config_dir),
                container_id, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        if await proc.wait() != 0:
            raise RuntimeError(f"runc run {container_id}: {errors.read_text(errors='replace').strip()}")

    def _bundle_for(self, container_id: str) -> Path:
        """A bundle per container (its cgroup path differs), sharing the root file system."""
        directory = self.base / "bundles" / container_id
        directory.mkdir(parents=True)
        config = json.loads((self.bundle / "config.json").read_text())
        config["root"]["path"] = str(self.bundle / "rootfs")
        config["linux"]["cgroupsPath"] = f"{self.cgroup_parent}/{container_id}"
        (directory / "config.json").write_text(json.dumps(config))
        return directory

    async def burst(self, count: int, slots: int, label: str) -> list[float]:
        """Start ``count`` containers, ``slots`` at a time: seconds from the burst's start
        to each one running, sorted.  The containers keep running until ``stop_all``."""
        ids = [f"{label}-{i}" for i in range(count)]
        bundles = {cid: self._bundle_for(cid) for cid in ids}
        gate = asyncio.Semaphore(slots)
        done: list[float] = []

        async def one(container_id: str) -> None:
            async with gate:
                self.started.append(container_id)
                await self._run(container_id, bundles[container_id])
            done.append(time.monotonic() - began)

        began = time.monotonic()
        await asyncio.gather(*(one(cid) for cid in ids))
        return sorted(done)

    def stop_all(self) -> None:
        """Delete (``--force``: SIGKILL first) every container started so far."""
        for container_id in self.started:
            deadline = time.monotonic() + 10
            while subprocess.run(["runc", "--root", str(self.root), "delete", "--force", container_id],
                                 capture_output=True, check=False).returncode != 0:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)           # the container's init is still exiting
        self.started.clear()
        shutil.rmtree(self.base / "bundles", ignore_errors=True)

    def cleanup(self) -> None:
        self.stop_all()
        cgroups.remove(self.cgroup_parent)
        shutil.rmtree(self.base, ignore_errors=True)
