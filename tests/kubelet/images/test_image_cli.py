"""``skiff image import|ls|rm`` against a data directory."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from busybox_image import LayerBuilder, OciImage, image_config, sha256, write_oci_archive

from skiff.cli.image import add_image_commands, human_size


def skiff(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="skiff")
    add_image_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_import_ls_rm(tmp_path: Path, busybox_archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert skiff("image", "import", str(busybox_archive), "--data-dir", data) == 0
    assert capsys.readouterr().out == "Loaded image: docker.io/library/busybox:test\n"
    assert skiff("image", "import", str(busybox_archive), "--name", "tools:1", "--data-dir", data) == 0
    capsys.readouterr()
    assert skiff("image", "ls", "--data-dir", data) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    rows = sorted(line.split() for line in lines[1:])
    assert [row[:2] for row in rows] == [["docker.io/library/busybox", "test"],
                                         ["docker.io/library/tools", "1"]]
    assert rows[0][2] == rows[1][2] and len(rows[0][2]) == 12 and rows[0][3].endswith("MB")
    assert skiff("image", "rm", "busybox:test", "--data-dir", data) == 0
    assert capsys.readouterr().out == "Deleted: busybox:test\n"
    assert skiff("image", "rm", "busybox:test", "--data-dir", data) == 1
    assert "not found" in capsys.readouterr().err
    assert skiff("image", "rm", "tools:1", "--data-dir", data) == 0
    capsys.readouterr()
    skiff("image", "ls", "--data-dir", data)
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_unnamed_oci_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = LayerBuilder().file("hello", "hi").bytes()
    config = image_config([sha256(layer)])
    write_oci_archive(tmp_path / "oci.tar", [OciImage([layer], config)])
    assert skiff("image", "import", str(tmp_path / "oci.tar"), "--data-dir", str(tmp_path)) == 0
    assert capsys.readouterr().out == f"Loaded image ID: {sha256(config)}\n"
    skiff("image", "ls", "--data-dir", str(tmp_path))
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["<none>", "<none>",
                                                                   sha256(config)[7:19]]
    assert skiff("image", "rm", sha256(config)[7:19], "--data-dir", str(tmp_path)) == 0


def test_import_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert skiff("image", "import", str(tmp_path / "missing.tar"), "--data-dir", str(tmp_path)) == 1
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "x.tar").write_text("not a tarball")
    assert skiff("image", "import", str(tmp_path / "x.tar"), "--data-dir", str(tmp_path)) == 1
    assert "not a tar archive" in capsys.readouterr().err


@pytest.mark.parametrize("size,text", [(999, "999B"), (2_129_920, "2.13MB"), (1_500_000_000, "1.5GB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text
