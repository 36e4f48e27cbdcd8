"""unmount_all_at: what a container's or sandbox's removal relies on instead of a
mount-table scan (kubelet/runtime/mounts.py)."""

from __future__ import annotations

from pathlib import Path

from skiff.kubelet.runtime.mounts import mount_points_under, mount_tmpfs, unmount_all_at


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
