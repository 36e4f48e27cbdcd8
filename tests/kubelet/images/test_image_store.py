"""The local image store: importing archives, names, shared layers, removal."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
from busybox_image import (LayerBuilder, OciImage, busybox_layer, image_config, sha256,
                           write_docker_archive, write_oci_archive)

from skiff.kubelet.images.config import ImageConfig
from skiff.kubelet.images.store import ImageStore, ImageStoreError
from skiff.kubelet.runtime.mounts import mount_overlay, unmount


def layer_dirs(store: ImageStore) -> list[str]:
    return sorted(d for d in os.listdir(store.layers) if d != "by-blob")


def test_import_docker_archive(store: ImageStore, busybox_archive: Path) -> None:
    [image] = store.import_archive(busybox_archive)
    assert image.names == ("docker.io/library/busybox:test",)
    assert image.config.cmd == ("sh",) and image.config.architecture == "amd64"
    [layer] = store.layer_dirs(image)
    assert (layer / "bin/busybox").stat().st_size > 1_000_000
    assert os.readlink(layer / "bin/sh") == "busybox"
    assert store.get("busybox:test") == image
    assert store.get(image.id) == image and store.get(image.id[7:19]) == image
    assert store.get("busybox") is None          # :latest was never imported
    again = store.import_archive(busybox_archive, name="registry.local/tools/busybox:1")
    assert again[0].id == image.id
    assert store.resolve(image.id).names == ("docker.io/library/busybox:test",
                                             "registry.local/tools/busybox:1")
    assert len(layer_dirs(store)) == 1


def test_import_oci_archive(store: ImageStore, tmp_path: Path) -> None:
    layer = busybox_layer()
    config = image_config([sha256(layer)], entrypoint=["/bin/sh", "-c"], cmd=["echo hi"])
    archive = tmp_path / "oci.tar"
    [manifest_digest] = write_oci_archive(archive, [OciImage([layer], config)],
                                          ref_name="example.org/app:2.0")
    [image] = store.import_archive(archive)
    assert image.names == ("example.org/app:2.0",)
    assert image.manifest_digest == manifest_digest
    assert image.config.entrypoint == ("/bin/sh", "-c")
    assert store.get(f"example.org/app@{manifest_digest}") == image


def test_oci_archive_with_a_bare_tag_needs_a_name(store: ImageStore, tmp_path: Path) -> None:
    layer = LayerBuilder().file("a", "a").bytes()
    archive = tmp_path / "oci.tar"
    write_oci_archive(archive, [OciImage([layer], image_config([sha256(layer)]))], ref_name="latest")
    [unnamed] = store.import_archive(archive)
    assert unnamed.names == ()
    [named] = store.import_archive(archive, name="mine/app:v1")
    assert named.names == ("docker.io/mine/app:v1",)


def test_multi_platform_index_imports_linux_amd64_only(store: ImageStore, tmp_path: Path) -> None:
    layer = LayerBuilder().file("a", "a").bytes()
    arm = OciImage([layer], image_config([sha256(layer)], architecture="arm64", cmd=["arm"]),
                   {"os": "linux", "architecture": "arm64"})
    amd = OciImage([layer], image_config([sha256(layer)], cmd=["amd"]),
                   {"os": "linux", "architecture": "amd64"})
    archive = tmp_path / "multi.tar"
    write_oci_archive(archive, [arm, amd], ref_name="multi:1", nested_index=True)
    [image] = store.import_archive(archive)
    assert (image.config.architecture, image.config.cmd) == ("amd64", ("amd",))
    with pytest.raises(ImageStoreError, match="no linux/amd64 image"):
        write_oci_archive(archive, [arm], ref_name="multi:1", nested_index=True)
        store.import_archive(archive)


def test_layers_are_shared_and_removed_with_the_last_image(store: ImageStore, tmp_path: Path) -> None:
    base = LayerBuilder().file("etc/os-release", "base").bytes()
    extra = LayerBuilder().file("app/run", "app").bytes()
    write_docker_archive(tmp_path / "a.tar", [base], tags=["a:1"])
    write_docker_archive(tmp_path / "b.tar", [base, extra], tags=["b:1"])
    [a] = store.import_archive(tmp_path / "a.tar")
    [b] = store.import_archive(tmp_path / "b.tar")
    assert store.layer_dirs(a)[0] == store.layer_dirs(b)[0]
    assert len(layer_dirs(store)) == 2
    store.remove("a:1")
    assert store.get("a:1") is None and len(layer_dirs(store)) == 2
    store.remove(b.id)
    assert store.list() == [] and layer_dirs(store) == []
    assert os.listdir(store.blobs) == [] and os.listdir(store.by_blob) == []


def test_layers_in_use_by_a_mount_survive_removal(store: ImageStore, busybox_archive: Path,
                                                  tmp_path: Path) -> None:
    [image] = store.import_archive(busybox_archive)
    rootfs, upper, work = tmp_path / "rootfs", tmp_path / "upper", tmp_path / "work"
    for directory in (rootfs, upper, work):
        directory.mkdir()
    mount_overlay(rootfs, store.layer_dirs(image), upper, work)
    try:
        store.remove("busybox:test")
        assert store.list() == []
        assert (rootfs / "bin/busybox").exists() and len(layer_dirs(store)) == 1
    finally:
        unmount(rootfs)
    store.prune()
    assert layer_dirs(store) == []


def test_an_overlay_elsewhere_naming_a_layer_alike_does_not_keep_it(
        store: ImageStore, busybox_archive: Path, tmp_path: Path) -> None:
    # Overlays name their layers relative to a directory given as their source; another
    # node's overlay of the same image prints the same relative names from another one.
    [image] = store.import_archive(busybox_archive)
    layer = Path(store.layer_dirs(image)[0])
    elsewhere = tmp_path / "elsewhere"
    lookalike = elsewhere / layer.relative_to(os.path.commonpath([layer, tmp_path]))
    rootfs, upper, work = elsewhere / "rootfs", elsewhere / "upper", elsewhere / "work"
    for directory in (lookalike, rootfs, upper, work):
        directory.mkdir(parents=True)
    mount_overlay(rootfs, [lookalike], upper, work)
    try:
        store.remove("busybox:test")
        assert layer_dirs(store) == []             # not in use: removed
    finally:
        unmount(rootfs)


def test_a_layer_that_does_not_match_its_diff_id_is_refused(store: ImageStore, tmp_path: Path) -> None:
    layer = LayerBuilder().file("a", "a").bytes()
    config = image_config(["sha256:" + "0" * 64])
    write_docker_archive(tmp_path / "bad.tar", [layer], tags=["bad:1"], config=config)
    with pytest.raises(ImageStoreError, match="diffID mismatch"):
        store.import_archive(tmp_path / "bad.tar")
    assert store.list() == [] and layer_dirs(store) == []


def test_an_unsafe_layer_is_refused_as_a_whole(store: ImageStore, tmp_path: Path) -> None:
    layer = LayerBuilder().file("ok", "fine").file("../../escaped", "x").bytes()
    write_docker_archive(tmp_path / "evil.tar", [layer], tags=["evil:1"])
    with pytest.raises(ImageStoreError, match="escapes"):
        store.import_archive(tmp_path / "evil.tar")
    assert layer_dirs(store) == [] and not (tmp_path / "escaped").exists()


def test_files_that_are_not_image_archives(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageStoreError, match="not a tar archive"):
        store.import_archive(tmp_path / "notes.txt")
    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    with pytest.raises(ImageStoreError, match="neither manifest.json"):
        store.import_archive(tmp_path / "empty.tar")
    with pytest.raises(ImageStoreError, match="not found"):
        store.remove("busybox:test")


def test_store_survives_reopening(store: ImageStore, busybox_archive: Path) -> None:
    [image] = store.import_archive(busybox_archive)
    assert ImageStore(store.root).resolve("busybox:test") == image
    assert json.loads((store.root / "index.json").read_text())["refs"] == {
        "docker.io/library/busybox:test": image.id}


@pytest.mark.parametrize("command,args,argv", [
    (None, None, ["/entry", "default"]),
    (["run"], None, ["run"]),
    (None, ["x", "y"], ["/entry", "x", "y"]),
    (["run"], ["x"], ["run", "x"]),
])
def test_command_and_args_combine_with_the_image(command: list[str] | None, args: list[str] | None,
                                                 argv: list[str]) -> None:
    config = ImageConfig(entrypoint=("/entry",), cmd=("default",))
    assert config.command_for(command, args) == argv


def test_environment_merges_image_then_container() -> None:
    config = ImageConfig(env=("PATH=/bin", "LANG=C"))
    assert config.env_for([("LANG", "en_US.UTF-8"), ("APP", "1")]) == [
        ("PATH", "/bin"), ("LANG", "en_US.UTF-8"), ("APP", "1")]
