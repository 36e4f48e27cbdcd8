"""What an image says about how to run it, and how Kubernetes combines that with a pod.

An image config (the JSON blob a manifest points at) carries defaults under
``config``: ``Entrypoint``, ``Cmd``, ``Env``, ``WorkingDir``, ``User``,
``StopSignal``, ``ExposedPorts``, ``Labels``.  A container's ``command`` and
``args`` override them as Kubernetes documents it::

    command   args    runs
    -------   -----   --------------------------
    unset     unset   Entrypoint + Cmd
    set       unset   command                  (the image's Cmd is ignored too)
    unset     set     Entrypoint + args
    set       set     command + args

Environment: the image's ``Env`` first, then the container's ``env``, a later
name replacing an earlier one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class InvalidImageConfig(ValueError):
    """The config blob is not an image config."""


@dataclass(frozen=True)
class ImageConfig:
    architecture: str = "amd64"
    os: str = "linux"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()          # "NAME=value" strings, in order
    working_dir: str = ""
    user: str = ""                     # "uid", "uid:gid", "name", "name:group", or ""
    stop_signal: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    diff_ids: tuple[str, ...] = ()     # rootfs.diff_ids: the layers, bottom first

    @classmethod
    def parse(cls, data: bytes) -> "ImageConfig":
        try:
            doc = json.loads(data)
        except ValueError as err:
            raise InvalidImageConfig(f"image config is not JSON: {err}") from err
        if not isinstance(doc, dict):
            raise InvalidImageConfig("image config is not a JSON object")
        cfg = doc.get("config") or {}
        rootfs = doc.get("rootfs") or {}
        if not isinstance(cfg, dict) or not isinstance(rootfs, dict):
            raise InvalidImageConfig("image config has malformed config/rootfs sections")
        diff_ids = _strings(rootfs.get("diff_ids"), "rootfs.diff_ids")
        return cls(
            architecture=str(doc.get("architecture") or "amd64"),
            os=str(doc.get("os") or "linux"),
            entrypoint=_strings(cfg.get("Entrypoint"), "Entrypoint"),
            cmd=_strings(cfg.get("Cmd"), "Cmd"),
            env=_strings(cfg.get("Env"), "Env"),
            working_dir=str(cfg.get("WorkingDir") or ""),
            user=str(cfg.get("User") or ""),
            stop_signal=str(cfg.get("StopSignal") or ""),
            exposed_ports=tuple(sorted((cfg.get("ExposedPorts") or {}).keys())),
            labels={str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()},
            diff_ids=diff_ids,
        )

    def command_for(self, command: list[str] | None, args: list[str] | None) -> list[str]:
        """The argv a container runs, from its ``command``/``args`` and this image."""
        if command:
            return list(command) + list(args or [])
        return list(self.entrypoint) + (list(args) if args else list(self.cmd))

    def env_for(self, container_env: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The image's environment overlaid with the container's, in order."""
        merged: dict[str, str] = {}
        for item in self.env:
            name, _, value = item.partition("=")
            merged[name] = value
        for name, value in container_env:
            merged.pop(name, None)
            merged[name] = value
        return list(merged.items())


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidImageConfig(f"image config {what} must be a list of strings")
    return tuple(value)
