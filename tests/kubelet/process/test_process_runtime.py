"""The process runtime on its own (no kubelet): logs and rotation, start errors,
read-only mounts, users, attach, a second runtime adopting a running container,
and plain mode's search for the image's binaries."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from process_support import MARKER_ENV

from skiff.kubelet.images.store import ImageStore
from skiff.kubelet.runtime.interface import (ContainerConfigError, ContainerSpec, ContainerState,
                                             Mount, SandboxSpec, SecurityContext, StartFailed)
from skiff.kubelet.runtime.process import ProcessRuntime
from skiff.kubelet.runtime.rootless import plain_command

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Box:
    """A runtime, one sandbox, and busybox containers in it."""

    def __init__(self, root: Path, store: ImageStore, marker: str) -> None:
        self.root, self.store, self.marker = root, store, marker
        self.runtime = ProcessRuntime(root / "runtime", isolation="userns", log_max_size=400,
                                      log_max_files=3)
        self.sandbox = ""

    def spec(self, script: str, **fields: object) -> ContainerSpec:
        image = self.store.get("busybox:test")
        assert image is not None
        return ContainerSpec(sandbox_id=self.sandbox, name="c", image="busybox:test", image_id=image.id,
                             layers=tuple(self.store.layer_dirs(image)), command=("sh", "-c", script),
                             env=(("PATH", PATH), (MARKER_ENV, self.marker)), **fields)  # type: ignore[arg-type]

    async def run(self, script: str, **fields: object) -> str:
        container_id = await self.runtime.create(self.spec(script, **fields))
        await self.runtime.start(container_id)
        return container_id

    async def output(self, container_id: str) -> list[str]:
        await self.runtime.wait(container_id)
        return [r.content.decode() async for r in self.runtime.logs(container_id)]


@pytest.fixture
async def box(tmp_path: Path, image_store: ImageStore, marker: str) -> AsyncIterator[Box]:
    box = Box(tmp_path, image_store, marker)
    box.sandbox = await box.runtime.run_sandbox(SandboxSpec(name="pod", namespace="default", uid="u-1"))
    try:
        yield box
    finally:
        await box.runtime.remove_sandbox(box.sandbox)
        await box.runtime.close()
    assert os.listdir(tmp_path / "runtime" / "containers") == []


async def test_output_is_logged_and_rotated(box: Box) -> None:
    container_id = await box.run("i=0; while [ $i -lt 40 ]; do echo line-$i; i=$((i+1)); done")
    status = await box.runtime.wait(container_id)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 0, "Completed")
    log = Path(str(status.log_path))
    assert Path(f"{log}.1").exists() and Path(f"{log}.2").exists() and not Path(f"{log}.3").exists()
    lines = await box.output(container_id)
    assert lines[-1] == "line-39" and 5 < len(lines) < 40      # the oldest rotated away
    assert lines == [f"line-{n}" for n in range(40 - len(lines), 40)]
    tail = [r.content.decode() async for r in box.runtime.logs(container_id, tail_lines=2)]
    assert tail == ["line-38", "line-39"]


async def test_a_missing_command_is_a_start_error(box: Box) -> None:
    spec = box.spec("")
    container_id = await box.runtime.create(ContainerSpec(**{**spec.__dict__, "command": ("no-such-thing",)}))
    with pytest.raises(StartFailed, match='exec: "no-such-thing": executable file not found'):
        await box.runtime.start(container_id)
    status = await box.runtime.status(container_id)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 128, "StartError")


async def test_read_only_mounts_and_root(box: Box, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "file").write_text("content")
    container_id = await box.run(
        "exec 2>/dev/null; cat /v/file; echo; echo x > /v/new || echo volume-ro; "
        "echo x > /etc/new || echo root-ro; echo x > /tmp/t || echo tmp-ro",
        mounts=(Mount(host_path=volume, container_path="/v", read_only=True),),
        security=SecurityContext(read_only_root_filesystem=True))
    assert await box.output(container_id) == ["content", "volume-ro", "root-ro", "tmp-ro"]
    assert sorted(os.listdir(volume)) == ["file"]


async def test_the_container_user_is_mapped_onto_ours(box: Box, tmp_path: Path) -> None:
    volume = tmp_path / "shared"
    volume.mkdir()
    container_id = await box.run("id -u; id -g; touch /shared/made",
                                 mounts=(Mount(host_path=volume, container_path="/shared"),),
                                 security=SecurityContext(run_as_user=1000, run_as_group=3000))
    assert await box.output(container_id) == ["1000", "3000"]
    assert os.stat(volume / "made").st_uid == os.geteuid()         # on the host: the kubelet's user
    with pytest.raises(ContainerConfigError, match="runAsNonRoot and image will run as root"):
        await box.runtime.create(box.spec("true", security=SecurityContext(run_as_non_root=True)))


async def test_attach_feeds_stdin_and_reads_output(box: Box) -> None:
    container_id = await box.run("while read line; do echo got-$line; done; exit 7", stdin=True)
    session = await box.runtime.attach(container_id, stdin=True)
    try:
        await session.write(b"ping\n")
        async for _, data in session.output():
            assert data == b"got-ping\n"
            break
        await session.close_stdin()
        assert await asyncio.wait_for(session.wait(), 10) == 7
    finally:
        await session.close()


async def test_another_runtime_adopts_a_running_container(box: Box) -> None:
    container_id = await box.run("read line; echo $line; exit 3", stdin=True)
    other = ProcessRuntime(box.root / "runtime", isolation="userns")   # as after a kubelet restart
    try:
        assert [c.id for c in await other.list()] == [container_id]
        assert (await other.status(container_id)).state == ContainerState.RUNNING
        waiting = asyncio.ensure_future(other.wait(container_id))
        session = await other.attach(container_id, stdin=True)
        await session.write(b"bye\n")
        await session.close()
        status = await asyncio.wait_for(waiting, 10)
        assert (status.state, status.exit_code) == (ContainerState.EXITED, 3)
        assert [r.content async for r in other.logs(container_id)] == [b"bye"]
    finally:
        await other.close()


def test_plain_mode_runs_the_images_binaries(image_store: ImageStore) -> None:
    image = image_store.get("busybox:test")
    assert image is not None
    layer = str(image_store.layer_dirs(image)[-1])
    executable, path = plain_command(["sh", "-c", "true"], PATH, [layer])
    assert executable == f"{layer}/bin/sh" and os.path.realpath(executable).endswith("/bin/busybox")
    assert path.split(":")[:2] == [f"{layer}/usr/bin", f"{layer}/bin"]
    assert path.split(":")[2:] == PATH.split(":")          # then the host's, as a fallback
    assert plain_command(["/bin/sleep", "1"], PATH, [layer])[0] == f"{layer}/bin/sleep"
    assert plain_command(["not-in-the-image-or-host"], PATH, [layer])[0] is None


async def test_plain_mode_refuses_root(box: Box, tmp_path: Path) -> None:
    assert os.geteuid() == 0          # these tests run as root (the nobody ones use plain mode)
    plain = ProcessRuntime(tmp_path / "plain", isolation="plain")
    sandbox = await plain.run_sandbox(SandboxSpec(name="pod", namespace="default", uid="u-2"))
    spec = box.spec("true")
    with pytest.raises(ContainerConfigError, match="only for a non-root user"):
        await plain.create(ContainerSpec(**{**spec.__dict__, "sandbox_id": sandbox}))
    await plain.remove_sandbox(sandbox)
    await plain.close()


def test_under_uvloop_start_returns_and_nothing_of_ours_is_inherited(
        tmp_path: Path, image_store: ImageStore, marker: str) -> None:
    """``skiff up`` runs on uvloop, whose subprocesses keep extra copies of their stdio
    (and uvloop's own descriptors) open: the shim must not hand them to the container,
    or ``start`` waits for the end of the shim's stdout until the container exits."""
    import uvloop

    async def scenario() -> tuple[list[str], str]:
        box = Box(tmp_path, image_store, marker)
        box.sandbox = await box.runtime.run_sandbox(SandboxSpec(name="pod", namespace="default",
                                                                uid="u-3"))
        try:
            container_id = await box.runtime.create(box.spec("exec sleep 60"))
            await asyncio.wait_for(box.runtime.start(container_id), 10)
            status = await box.runtime.status(container_id)
            assert status.state == ContainerState.RUNNING and status.pid is not None
            container_fds = sorted(os.listdir(f"/proc/{status.pid}/fd"))
            listed = await box.runtime.exec_sync(container_id, ["ls", "/proc/self/fd"])
            await box.runtime.stop(container_id, 1.0)
            await box.runtime.remove(container_id)
            return container_fds, listed.stdout.decode()
        finally:
            await box.runtime.remove_sandbox(box.sandbox)
            await box.runtime.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        container_fds, exec_fds = runner.run(scenario())
    assert container_fds == ["0", "1", "2"]
    assert exec_fds.split() == ["0", "1", "2", "3"]        # 3: ls's own directory
