"""Per-pod parent directories carry ext4's "top of directory hierarchy" flag (chattr +T),
so pods' directories spread over block groups; file systems without it are left alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from skiff.kubelet.runtime.diskdirs import FS_TOPDIR_FL, inode_flags, spread_subdirectories
from skiff.kubelet.runtime.mounts import mount, unmount
from skiff.kubelet.runtime.runc import RuncRuntime

EXT4_MAGIC = 0xEF53


def on_ext4(path: Path) -> bool:
    output = subprocess.run(["stat", "-f", "-c", "%t", str(path)], capture_output=True, text=True,
                            check=True).stdout
    return int(output.strip(), 16) == EXT4_MAGIC


def lsattr_flags(path: Path) -> str:
    """The flags column of ``lsattr -d`` (e2fsprogs), read independently of our ioctl."""
    result = subprocess.run(["lsattr", "-d", str(path)], capture_output=True, text=True)
    return result.stdout.split()[0] if result.returncode == 0 else ""


def test_a_directory_on_ext4_gets_the_flag_once(tmp_path: Path) -> None:
    target = tmp_path / "data" / "pods"
    marked = spread_subdirectories(target)
    assert target.is_dir()
    if on_ext4(tmp_path):
        assert marked and "T" in lsattr_flags(target)
        before = inode_flags(target)
        assert spread_subdirectories(target) and inode_flags(target) == before   # idempotent
    else:
        assert not marked


def test_a_tmpfs_is_left_alone(tmp_path: Path) -> None:
    mount("tmpfs", tmp_path, "tmpfs", 0, "size=1m")
    try:
        assert spread_subdirectories(tmp_path / "logs") is False
        assert (tmp_path / "logs").is_dir()
    finally:
        unmount(tmp_path, detach=True)


async def test_the_runc_runtime_spreads_its_writable_layers(tmp_path: Path) -> None:
    runtime = RuncRuntime(tmp_path / "run", layers=tmp_path / "layers")
    try:
        flags = inode_flags(runtime.layers)
        if on_ext4(tmp_path):
            assert flags is not None and flags & FS_TOPDIR_FL
        else:
            assert flags is None or not flags & FS_TOPDIR_FL
    finally:
        await runtime.close()
