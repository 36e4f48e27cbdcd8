"""kubelet/runtime/mounts.py: unmount_all_at (what a container's or sandbox's removal
relies on instead of a mount-table scan) and overlay mounts with short options."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from skiff.kubelet.runtime.mounts import (mount_overlay, mount_points_under, mount_tmpfs, unmount,
                                          unmount_all_at)


def test_stacked_mounts_and_what_is_below_them_all_go(tmp_path: Path) -> None:
    target = tmp_path / "rootfs"
    target.mkdir()
    try:
        mount_tmpfs(target, size="1m")
        mount_tmpfs(target, size="1m")                  # a second mount on the same point
        (target / "volume").mkdir()
        mount_tmpfs(target / "volume", size="1m")       # and one below the top mount
        (target / "volume" / "data").write_text("kept in the tmpfs, not on disk")
        assert len(mount_points_under(target)) == 3

        unmount_all_at(target)

        assert mount_points_under(target) == []
        assert list(target.iterdir()) == []            # the plain directory again
    finally:
        for point in mount_points_under(tmp_path):     # whatever a failure left
            unmount_all_at(point)


def test_a_plain_directory_or_a_missing_path_is_left_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file").write_text("x")
    unmount_all_at(tmp_path / "plain")
    unmount_all_at(tmp_path / "missing")
    assert (tmp_path / "plain" / "file").read_text() == "x"


def _overlay_options(target: Path) -> str:
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            if fields[4] == str(target) and " - overlay " in line:
                return line.split(" - ")[1].split()[2]
    raise AssertionError(f"no overlay mounted on {target}")


def test_an_overlay_names_its_layers_relative_to_their_common_parent(tmp_path: Path) -> None:
    layers = tmp_path / "data" / "layers"
    for name in ("base", "top", "c1/upper", "c1/work", "c2/upper", "c2/work"):
        (layers / name).mkdir(parents=True)
    (layers / "base" / "from-base").write_text("base")
    (layers / "top" / "from-top").write_text("top")
    roots = [tmp_path / "rootfs1", tmp_path / "rootfs2"]
    for root in roots:
        root.mkdir()
    cwd = os.getcwd()

    def mount_container(n: int) -> None:
        mount_overlay(roots[n - 1], [layers / "top", layers / "base"],
                      layers / f"c{n}" / "upper", layers / f"c{n}" / "work")

    try:
        mount_container(1)                              # from the main thread
        with ThreadPoolExecutor(1) as pool:             # and from a worker, as the runtime does
            pool.submit(mount_container, 2).result()
            assert pool.submit(os.getcwd).result() == cwd
        assert os.getcwd() == cwd                       # nobody's working directory moved

        for n, root in enumerate(roots, 1):
            assert f",lowerdir=top:base,upperdir=c{n}/upper,workdir=c{n}/work," in _overlay_options(root)
            assert (root / "from-base").read_text() == "base"
            assert (root / "from-top").read_text() == "top"
            (root / "written").write_text(f"by container {n}")
            assert (layers / f"c{n}" / "upper" / "written").read_text() == f"by container {n}"
        assert not (layers / "top" / "written").exists()
        assert threading.current_thread() is threading.main_thread()
    finally:
        for root in roots:
            unmount(root)
