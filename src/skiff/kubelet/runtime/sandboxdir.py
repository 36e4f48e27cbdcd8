"""A pod sandbox as a directory: what the runc and process runtimes' sandboxes share.

::

    sandboxes/<id>/
      sandbox.json      {"id", "spec": the SandboxSpec's fields, "createdAt": unix time,
                         "state": "ready" | "not-ready"}; only ever replaced whole
      hosts             the pod's /etc/hosts (the spec's, else ``default_hosts``)
      hostname          its /etc/hostname
      resolv.conf       its /etc/resolv.conf (the spec's, else the host's)
      …                 what the runtime adds (.sandbox: namespaces, /dev/shm)

:class:`SandboxDirectories` names, reads, lists and reports sandboxes and writes
the files above; .sandbox (runc) and .processpod (process) create and destroy them.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .interface import NotFound, SandboxSpec, SandboxState, SandboxStatus
from .statefiles import JsonCache, write_json


class SandboxDirectories:
    default_hosts: str                 # /etc/hosts when the kubelet gives none

    def __init__(self, root: Path) -> None:
        self.root = root
        self._loaded = JsonCache("sandbox")     # id -> sandbox.json
        root.mkdir(parents=True, exist_ok=True)

    def directory(self, sandbox_id: str) -> Path:
        if not sandbox_id or "/" in sandbox_id or sandbox_id.startswith("."):
            raise NotFound(f"sandbox {sandbox_id!r} not found")
        return self.root / sandbox_id

    def load(self, sandbox_id: str) -> dict[str, Any]:
        """sandbox.json."""
        return self._loaded.load(sandbox_id, self.directory(sandbox_id) / "sandbox.json")

    def write_files(self, directory: Path, spec: SandboxSpec, hostname: str,
                    **record: Any) -> None:
        """The pod's /etc files, then sandbox.json (ready, with ``record``'s fields): the
        sandbox exists from then on."""
        (directory / "hosts").write_text(spec.hosts_file or self.default_hosts)
        (directory / "hostname").write_text(hostname + "\n")
        resolv = spec.resolv_conf
        if not resolv:
            try:
                resolv = Path("/etc/resolv.conf").read_text()
            except OSError:
                resolv = ""
        (directory / "resolv.conf").write_text(resolv)
        write_json(directory / "sandbox.json", {
            "id": directory.name, "spec": dataclasses.asdict(spec), "createdAt": time.time(),
            "state": SandboxState.READY.value, **record})

    def mark_not_ready(self, sandbox_id: str) -> None:
        record = dict(self.load(sandbox_id), state=SandboxState.NOT_READY.value)
        write_json(self.directory(sandbox_id) / "sandbox.json", record)

    def netns_path(self, sandbox_id: str, spec: dict[str, Any]) -> Path | None:
        """The pod's network namespace (None: the host's network)."""
        return None

    def status(self, sandbox_id: str) -> SandboxStatus:
        record = self.load(sandbox_id)
        spec = record["spec"]
        return SandboxStatus(
            id=sandbox_id, name=spec["name"], namespace=spec["namespace"], uid=spec["uid"],
            state=SandboxState(record["state"]),
            created_at=datetime.fromtimestamp(record["createdAt"], timezone.utc),
            hostname=spec["hostname"] or spec["name"],
            netns_path=self.netns_path(sandbox_id, spec),
            labels=dict(spec["labels"]), annotations=dict(spec["annotations"]))

    def ids(self) -> list[str]:
        return sorted(d.name for d in self.root.iterdir()
                      if (d / "sandbox.json").exists() and not d.name.startswith("."))
