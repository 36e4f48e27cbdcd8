"""``skiff image``: the node's local image store from the command line.

    skiff image import FILE [--name REF] [--data-dir DIR]   docker save / OCI archive
    skiff image ls [--data-dir DIR]                          IMAGE  TAG  IMAGE ID  SIZE
    skiff image rm REF... [--data-dir DIR]                    a name, or an ID (all names)

The store is ``DIR/images`` (DIR defaults to ``.data``, as for ``skiff up``), the one
the node's kubelet uses, so an imported image runs with ``imagePullPolicy: Never``
or ``IfNotPresent`` without any registry.

:func:`add_image_commands` adds the ``image`` command to the ``skiff`` parser; the
parsed arguments carry ``handler`` (:func:`run_image_command`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..kubelet.images.reference import InvalidReference, parse_reference
from ..kubelet.images.store import Image, ImageStore, ImageStoreError


def add_image_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    image = subparsers.add_parser("image", help="manage the node's local images")
    image.set_defaults(handler=run_image_command)
    commands = image.add_subparsers(dest="image_command", required=True)

    def data_dir(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data-dir", type=Path, default=Path(".data"),
                            help="skiff's data directory; images live in DIR/images (default .data)")

    load = commands.add_parser("import", help="import a docker-archive or OCI archive tarball")
    load.add_argument("file", type=Path, help="the archive (docker save output, or an OCI layout tar)")
    load.add_argument("--name", help="the name to give the image (required for unnamed archives)")
    data_dir(load)
    listing = commands.add_parser("ls", help="list images")
    data_dir(listing)
    remove = commands.add_parser("rm", help="remove images by name or ID")
    remove.add_argument("refs", nargs="+", metavar="REF")
    data_dir(remove)


def run_image_command(args: argparse.Namespace) -> int:
    store = ImageStore(args.data_dir / "images")
    try:
        if args.image_command == "import":
            return _import(store, args.file, args.name)
        if args.image_command == "ls":
            return _list(store)
        return _remove(store, args.refs)
    except (ImageStoreError, InvalidReference, OSError) as err:
        print(f"skiff image {args.image_command}: {err}", file=sys.stderr)
        return 1


def _import(store: ImageStore, path: Path, name: str | None) -> int:
    if not path.is_file():
        raise ImageStoreError(f"{path}: no such file")
    for image in store.import_archive(path, name):
        for ref in image.names:
            print(f"Loaded image: {ref}")
        if not image.names:
            print(f"Loaded image ID: {image.id}")
    return 0


def _list(store: ImageStore) -> int:
    rows = [("IMAGE", "TAG", "IMAGE ID", "SIZE")]
    for image in store.list():
        for repository, tag in _repository_tags(image):
            rows.append((repository, tag, image.id.removeprefix("sha256:")[:12],
                         human_size(image.size)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "   " + row[3])
    return 0


def _repository_tags(image: Image) -> list[tuple[str, str]]:
    pairs = []
    for name in image.names:
        ref = parse_reference(name)
        pairs.append((ref.name, ref.tag or "<none>"))
    return pairs or [("<none>", "<none>")]


def _remove(store: ImageStore, refs: list[str]) -> int:
    status = 0
    for ref in refs:
        try:
            store.remove(ref)
        except ImageStoreError as err:
            print(f"skiff image rm: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"Deleted: {ref}")
    return status


def human_size(size: int) -> str:
    """Decimal units with three significant digits, as crictl and docker print them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"
