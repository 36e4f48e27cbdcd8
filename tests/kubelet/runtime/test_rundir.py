"""The node's run directory: a tmpfs for the live pods' state (kubelet/rundir.py)."""

from __future__ import annotations

import os
from pathlib import Path

from skiff.kubelet.rundir import mount_run_dir, release_run_dir
from skiff.kubelet.runtime.mounts import mount_tmpfs


def file_system_of(path: Path) -> str:
    real = os.path.realpath(path)
    kinds = [line.split()[2] for line in Path("/proc/mounts").read_text().splitlines()
             if line.split()[1] == real]
    return kinds[-1] if kinds else "none"


def test_a_new_run_dir_is_a_private_tmpfs_that_a_restart_adopts(tmp_path: Path) -> None:
    run = tmp_path / "kubelet" / "run"
    try:
        assert mount_run_dir(run)
        assert file_system_of(run) == "tmpfs"
        assert oct(run.stat().st_mode & 0o777) == "0o700"
        (run / "runtime").mkdir()
        (run / "runtime" / "state.json").write_text("{}")

        assert mount_run_dir(run)           # a restarted node: the same tmpfs, files kept
        assert (run / "runtime" / "state.json").read_text() == "{}"
    finally:
        release_run_dir(run)
    assert file_system_of(run) == "none"
    assert not run.exists()


def test_a_run_dir_with_files_on_disk_stays_on_disk(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "runtime").mkdir(parents=True)
    (run / "runtime" / "old.json").write_text("{}")
    assert not mount_run_dir(run)           # mounting would hide them
    assert file_system_of(run) == "none"
    assert (run / "runtime" / "old.json").exists()
    release_run_dir(run)                    # not ours to remove: it is not empty
    assert (run / "runtime" / "old.json").exists()


def test_release_takes_whatever_is_still_mounted_below(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert mount_run_dir(run)
    inner = run / "sandboxes" / "x" / "shm"
    inner.mkdir(parents=True)
    mount_tmpfs(inner)
    release_run_dir(run)
    assert file_system_of(inner) == "none" and file_system_of(run) == "none"
    assert not run.exists()
