"""Fixtures for the runc runtime tests: a busybox image, a runtime in a temp dir, a pod.

Everything a test creates is removed at teardown, also when it failed: containers
(runc delete --force), overlay and namespace mounts, the test's own cgroup parent,
temp dirs.  The runtime's cgroup parent is unique per test (``skiff-test-<hex>``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))

from busybox_image import write_busybox_archive  # noqa: E402
from runtime_support import SpecFactory  # noqa: E402

from skiff.kubelet.images.store import Image, ImageStore  # noqa: E402
from skiff.kubelet.runtime import cgroups  # noqa: E402
from skiff.kubelet.runtime.interface import ContainerSpec, SandboxSpec  # noqa: E402
from skiff.kubelet.runtime.mounts import mount_points_under, unmount  # noqa: E402
from skiff.kubelet.runtime.nskeeper import NamespaceKeeper  # noqa: E402
from skiff.kubelet.runtime.runc import RuncRuntime  # noqa: E402

if os.geteuid() != 0:
    raise RuntimeError("the runc runtime tests need root")


@pytest.fixture(scope="session")
def image_store(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    root = tmp_path_factory.mktemp("images")
    write_busybox_archive(root / "busybox.tar", "busybox:test")
    store = ImageStore(root / "store")
    store.import_archive(root / "busybox.tar")
    return store


@pytest.fixture(scope="session")
def busybox(image_store: ImageStore) -> Image:
    return image_store.resolve("busybox:test")


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[RuncRuntime]:
    parent = f"skiff-test-{secrets.token_hex(4)}"
    rt = RuncRuntime(tmp_path / "state", cgroup_parent=parent)
    try:
        yield rt
    finally:
        try:
            for sandbox in await rt.list_sandboxes():
                await rt.remove_sandbox(sandbox.id)
            for container in await rt.list():
                await rt.remove(container.id)
        finally:
            await rt.close()
            _force_cleanup(rt, parent)


def _force_cleanup(rt: RuncRuntime, parent: str) -> None:
    """Last resort, for tests that failed halfway: nothing may survive a test."""
    listing = subprocess.run(["runc", "--root", str(rt.runc_root), "list", "-q"],
                             capture_output=True, text=True)
    for container_id in listing.stdout.split():
        subprocess.run(["runc", "--root", str(rt.runc_root), "delete", "--force", container_id],
                       capture_output=True)
    NamespaceKeeper(rt.root).stop()
    for point in mount_points_under(rt.root):
        unmount(point, detach=True)
    cgroups.remove(f"/{parent}")


@pytest.fixture
async def sandbox(runtime: RuncRuntime) -> str:
    return await runtime.run_sandbox(SandboxSpec(name="web", namespace="default",
                                                 uid=secrets.token_hex(8)))


@pytest.fixture
def spec(busybox: Image, image_store: ImageStore) -> SpecFactory:
    """``spec(sandbox_id, *argv, **fields)``: a busybox container spec."""

    def make(sandbox_id: str, *command: str, **fields: Any) -> ContainerSpec:
        defaults: dict[str, Any] = {
            "sandbox_id": sandbox_id, "name": "c", "image": "busybox:test",
            "image_id": busybox.id, "layers": tuple(image_store.layer_dirs(busybox)),
            "command": command, "env": tuple(busybox.config.env_for([]))}
        defaults.update(fields)
        return ContainerSpec(**defaults)

    return make
