"""Unpacking layers: overlayfs whiteouts, and hostile archives that must be refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
from pathlib import Path

import pytest
from busybox_image import LayerBuilder

from skiff.kubelet.images.layer import LayerError, UnsafeLayer, extract_layer
from skiff.kubelet.runtime.mounts import mount_overlay, unmount


def unpack(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    extract_layer(io.BytesIO(data), dest)


def test_digests_of_plain_and_gzip_layers(tmp_path: Path) -> None:
    plain = LayerBuilder().file("hello.txt", "hi\n").bytes()
    compressed = gzip.compress(plain)
    info = extract_layer(io.BytesIO(compressed), tmp_path)
    assert info.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert info.blob_digest == "sha256:" + hashlib.sha256(compressed).hexdigest()
    assert (info.size, info.blob_size) == (len(plain), len(compressed))
    assert info.media_type.endswith("tar+gzip")
    assert (tmp_path / "hello.txt").read_text() == "hi\n"


def test_metadata_is_kept(tmp_path: Path) -> None:
    layer = (LayerBuilder().dir("bin", 0o755).file("bin/su", "x", mode=0o4755, uid=1000, gid=10)
             .symlink("bin/sh", "busybox").dir("home/app", 0o750, uid=1000, gid=1000)
             .hardlink("bin/su2", "bin/su").file("/abs/file", "inside").bytes())
    unpack(layer, tmp_path)
    su = os.stat(tmp_path / "bin/su")
    assert (stat.S_IMODE(su.st_mode), su.st_uid, su.st_gid) == (0o4755, 1000, 10)
    assert os.readlink(tmp_path / "bin/sh") == "busybox"
    assert os.stat(tmp_path / "bin/su2").st_ino == su.st_ino
    home = os.stat(tmp_path / "home/app")
    assert (stat.S_IMODE(home.st_mode), home.st_uid) == (0o750, 1000)
    assert (tmp_path / "abs/file").read_text() == "inside"   # absolute names stay inside


def test_whiteouts_become_overlayfs_whiteouts(tmp_path: Path) -> None:
    unpack(LayerBuilder().file("etc/.wh.gone", "").file("dir/.wh..wh..opq", "")
           .file("dir/new", "n").file(".wh..wh.plnk/x", "aufs").bytes(), tmp_path)
    gone = os.lstat(tmp_path / "etc/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(tmp_path / "dir", "trusted.overlay.opaque") == b"y"
    assert not (tmp_path / "etc/.wh.gone").exists() and not (tmp_path / "dir/.wh..wh..opq").exists()


def test_whiteouts_hide_lower_layers_through_overlayfs(tmp_path: Path) -> None:
    base = (LayerBuilder().file("etc/a", "a").file("etc/b", "b").file("dir/x", "x")
            .file("dir/sub/y", "y").bytes())
    top = LayerBuilder().file("etc/.wh.a", "").file("dir/.wh..wh..opq", "").file("dir/new", "n").bytes()
    unpack(base, tmp_path / "base")
    unpack(top, tmp_path / "top")
    view = tmp_path / "view"
    view.mkdir()
    mount_overlay(view, [tmp_path / "top", tmp_path / "base"], read_only=True)
    try:
        assert sorted(os.listdir(view / "etc")) == ["b"]
        assert sorted(os.listdir(view / "dir")) == ["new"]
    finally:
        unmount(view)


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./../evil", "a/b/../../../evil"])
def test_parent_directory_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeLayer, match="escapes"):
        unpack(LayerBuilder().file(name, "pwned").bytes(), tmp_path / "dest")
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("target", ["/", "../outside", "/tmp"])
def test_writing_through_a_symlink_is_refused(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside").mkdir()
    layer = LayerBuilder().symlink("link", target).file("link/pwned", "pwned").bytes()
    with pytest.raises(UnsafeLayer, match="symlink"):
        unpack(layer, tmp_path / "dest")
    assert not (tmp_path / "outside/pwned").exists() and not Path("/pwned").exists()


@pytest.mark.parametrize("target,message", [
    ("../../etc/passwd", "escapes"), ("/etc/passwd", "not in this layer"),
    ("link/passwd", "symlink")])
def test_hard_links_out_of_the_layer_are_refused(tmp_path: Path, target: str, message: str) -> None:
    layer = LayerBuilder().symlink("link", "/etc").hardlink("stolen", target).bytes()
    with pytest.raises(UnsafeLayer, match=message):
        unpack(layer, tmp_path / "dest")


def test_overlay_xattrs_from_the_archive_are_dropped(tmp_path: Path) -> None:
    builder = LayerBuilder()
    info = builder._info("sneaky", b"5", 0o755)
    info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                        "SCHILY.xattr.user.note": "kept"}
    builder.tar.addfile(info)
    unpack(builder.bytes(), tmp_path)
    assert os.listxattr(tmp_path / "sneaky") == ["user.note"]


def test_garbage_is_a_layer_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError):
        unpack(b"\x1f\x8b not really gzip", tmp_path)
