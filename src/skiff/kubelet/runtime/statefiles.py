"""The runtimes' state files: small JSON documents, replaced whole, read often.

``container.json``, ``sandbox.json``, ``started.json``, ``exit.json`` (see .shimmed,
.sandbox, .processpod) are written like this::

    write_json(path, doc)     doc -> path.tmp, then rename over path: a reader sees the
                              old document or the new one, never half of one
    read_json(path)           the document; None while it does not exist (yet)

Documents that are written once or only ever replaced are read through a
:class:`JsonCache`: a replace puts a new inode at the path, so a document is
parsed again exactly when its file was replaced (one stat per read otherwise).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .interface import NotFound


def read_json(path: Path | str) -> dict[str, Any] | None:
    """A JSON file's object; None if the file is missing or not (yet) complete."""
    try:
        with open(path, "rb") as source:
            doc: dict[str, Any] = json.loads(source.read())
        return doc
    except (FileNotFoundError, ValueError):
        return None


def write_json(path: Path, doc: dict[str, Any], *, private: bool = False) -> None:
    """Replace ``path`` atomically; ``private``: readable by its owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(doc))
    os.replace(tmp, path)


class JsonCache:
    """Parsed documents by key (a container's or sandbox's ID), kept while the file at
    their path is the same inode."""

    def __init__(self, kind: str) -> None:
        self.kind = kind               # "container", "sandbox": for NotFound's message
        self._docs: dict[str, tuple[int, dict[str, Any]]] = {}     # key -> (inode, document)

    def load(self, key: str, path: Path) -> dict[str, Any]:
        """The document at ``path``; NotFound (and the key forgotten) if there is none."""
        try:
            inode = os.stat(path).st_ino
            cached = self._docs.get(key)
            if cached is not None and cached[0] == inode:
                return cached[1]
            doc: dict[str, Any] = json.loads(path.read_bytes())
        except FileNotFoundError:
            self._docs.pop(key, None)
            raise NotFound(f"{self.kind} {key!r} not found") from None
        self._docs[key] = (inode, doc)
        return doc

    def forget(self, key: str) -> None:
        self._docs.pop(key, None)
