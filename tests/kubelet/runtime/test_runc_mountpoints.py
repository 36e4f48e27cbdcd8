"""Mount-point layers with real runc: a container's mount points come from a shared,
read-only layer, not from its writable layer; the image's directories keep their
owner and mode; layers no container uses are removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from runtime_support import SpecFactory, run_to_exit, start

from skiff.kubelet.runtime import mountpoints
from skiff.kubelet.runtime.interface import Mount
from skiff.kubelet.runtime.mountpoints import _create, mount_points
from skiff.kubelet.runtime.runc import RuncRuntime


def volumes(tmp_path: Path) -> tuple[Mount, ...]:
    (tmp_path / "cache").mkdir(exist_ok=True)
    (tmp_path / "cache" / "hit").write_text("cached\n")
    (tmp_path / "app.conf").write_text("level=debug\n")
    return (Mount(host_path=tmp_path / "cache", container_path="/tmp/cache"),
            Mount(host_path=tmp_path / "app.conf", container_path="/etc/app.conf", read_only=True))


async def test_mount_points_stay_out_of_the_writable_layer(tmp_path: Path, runtime: RuncRuntime,
                                                           sandbox: str, spec: SpecFactory) -> None:
    status, lines = await run_to_exit(runtime, spec(
        sandbox, "sh", "-c", "stat -c '%a %U' /tmp; cat /tmp/cache/hit /etc/app.conf; pwd; "
                             "test -f /etc/hosts && test -f /etc/resolv.conf && echo etc files",
        working_dir="/srv/app", mounts=volumes(tmp_path)))
    assert status.exit_code == 0, lines
    # the image's /tmp (1777) is what the container sees, though /tmp/cache was made in it
    assert lines == ["stdout 1777 root", "stdout cached", "stdout level=debug", "stdout /srv/app",
                     "stdout etc files"]
    container_id = (await runtime.list())[0].id
    assert os.listdir(runtime.writable_layer(container_id)) == []


async def test_the_container_still_writes_its_own_layer(tmp_path: Path, runtime: RuncRuntime,
                                                        sandbox: str, spec: SpecFactory) -> None:
    first = await start(runtime, spec(sandbox, "sh", "-c", "echo mine > /srv/app/note; echo written; sleep 1000",
                                      working_dir="/srv/app", mounts=volumes(tmp_path)))
    async for record in runtime.logs(first, follow=True):
        if record.content == b"written":
            break
    status, lines = await run_to_exit(runtime, spec(
        sandbox, "sh", "-c", "ls -A /srv/app; echo end", working_dir="/srv/app", mounts=volumes(tmp_path)))
    assert lines == ["stdout end"]          # the first one's file is in its own layer only
    layer = runtime.writable_layer(first)
    assert (layer / "srv" / "app" / "note").read_text() == "mine\n"


async def test_containers_with_the_same_mount_points_share_a_layer(tmp_path: Path, runtime: RuncRuntime,
                                                                   sandbox: str, spec: SpecFactory) -> None:
    for _ in range(3):
        await start(runtime, spec(sandbox, "sleep", "1000", mounts=volumes(tmp_path)))
    layers = runtime.layers / "mountpoints"
    assert len(os.listdir(layers)) == 1
    await start(runtime, spec(sandbox, "sleep", "1000", working_dir="/srv/other"))
    assert len(os.listdir(layers)) == 2


async def test_unused_layers_are_removed_once_there_are_many(tmp_path: Path, runtime: RuncRuntime,
                                                             sandbox: str, spec: SpecFactory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mountpoints, "KEEP", 2)
    layers = runtime.layers / "mountpoints"
    kept = await start(runtime, spec(sandbox, "sleep", "1000", working_dir="/srv/kept"))
    for name in ("one", "two"):
        gone = await start(runtime, spec(sandbox, "sleep", "1000", working_dir=f"/srv/{name}"))
        await runtime.stop(gone, timeout=0)
        await runtime.remove(gone)
        assert len(os.listdir(layers)) == 2     # the layer of the one removed before went
    newest = await start(runtime, spec(sandbox, "sleep", "1000", working_dir="/srv/new"))
    in_use = {runtime._record(c)["mountpointLayer"] for c in (kept, newest)}
    assert set(os.listdir(layers)) == in_use


# -- which mount points, and how they are made (no containers) --------------------------


def test_paths_inside_other_mounts_are_left_to_runc(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "sock").mkdir()
    oci = [{"destination": "/proc", "type": "proc", "source": "proc"},
           {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
           {"destination": "/dev/shm", "type": "bind", "source": str(tmp_path / "sock")},
           {"destination": "/etc/hosts", "type": "bind", "source": str(tmp_path / "file")},
           {"destination": "/data/", "type": "bind", "source": str(tmp_path / "sock")},
           {"destination": "/data/sub", "type": "bind", "source": str(tmp_path / "sock")},
           {"destination": "/gone", "type": "bind", "source": str(tmp_path / "missing")},
           {"destination": "/device", "type": "bind", "source": "/dev/null"}]
    assert mount_points(oci, "/dev/work") == [
        ("/proc", "dir"), ("/dev", "dir"), ("/etc/hosts", "file"), ("/data", "dir"),
        ("/device", "file")]
    assert mount_points(oci, "/srv") == mount_points(oci, "/dev/work") + [("/srv", "dir")]
    assert mount_points(oci, "/") == mount_points(oci, "")


def test_points_follow_the_images_symbolic_links_and_keep_what_exists(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("../run")
    (root / "etc").mkdir()
    (root / "etc" / "hosts").write_text("image's own\n")
    _create(str(root), "/var/run/secrets/token", "dir")
    _create(str(root), "/etc/hosts", "file")
    _create(str(root), "/etc/../../etc/hostname", "file")
    assert (root / "run" / "secrets" / "token").is_dir()
    assert (root / "var" / "run").is_symlink()
    assert (root / "etc" / "hosts").read_text() == "image's own\n"
    assert (root / "etc" / "hostname").read_text() == ""
    assert not (tmp_path / "etc").exists()


async def test_an_image_without_layers_gets_no_mountpoint_layer(runtime: RuncRuntime, sandbox: str,
                                                                spec: SpecFactory) -> None:
    container_id = await runtime.create(spec(sandbox, "/bin/true", layers=()))
    assert "mountpointLayer" not in runtime._record(container_id)
    assert os.listdir(runtime.layers / "mountpoints") == []
