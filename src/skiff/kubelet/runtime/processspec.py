"""What the process runtime's shim runs: ``process.json``, built from a ContainerSpec.

One function, :func:`launch_spec`, prepares a container's directory and returns the
document (.processshim and ``rootless.py exec`` read it)::

    common   mode, argv, layers (top-most first), env, cwd, noNewPrivs, oomScoreAdj
    userns   uid/gid inside (resolved from the image's /etc/passwd as runc would) and
             ours outside, hostname, namespaces (pid/uts/ipc unless hostPID/
             hostNetwork/hostIPC), rootfs/upper/work/empty (the overlay), mounts
             (volumes + /etc/hosts, /etc/hostname, /etc/resolv.conf; parents first),
             readOnlyRoot; cwd is a path inside the container
    plain    executable (argv[0] found in the layers, else on the host, else None),
             PATH rewritten into the layers (.rootless.plain_command), the original PATH
             as ``path``; cwd = ``root/<workingDir>``, where ``root/<mountPath>`` are
             symlinks to the mounts' sources, and $SKIFF_CONTAINER_ROOT names ``root``

The environment ends up in the file (mode 0600), as runc's config.json holds it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .interface import ContainerSpec
from .processpod import SandboxFiles
from .rootless import plain_command
from .users import resolve_user, verify_run_as_non_root

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Plain mode only: the container's directory, for commands that need absolute paths.
ROOT_ENV = "SKIFF_CONTAINER_ROOT"


def launch_spec(spec: ContainerSpec, files: SandboxFiles, mode: str, directory: Path) -> dict[str, Any]:
    """``process.json`` for ``spec`` in ``mode`` (``userns`` or ``plain``); creates the
    directories it names under ``directory``.  ContainerConfigError for a user the
    spec or image does not allow."""
    verify_run_as_non_root(spec.security, spec.image_user)
    layers = [str(p) for p in reversed(spec.layers)]
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    process: dict[str, Any] = {
        "mode": mode, "argv": list(spec.command), "layers": layers,
        "noNewPrivs": not spec.security.allow_privilege_escalation,
        "oomScoreAdj": spec.resources.oom_score_adj}
    mounts = _mounts(spec, files)
    if mode == "userns":
        user = resolve_user(_passwd_layer(layers, directory), spec.security, spec.image_user)
        for sub in ("rootfs", "upper", "work", "empty"):
            (directory / sub).mkdir()
        process.update(
            env=env, cwd=spec.working_dir or "/", uid=user.uid, gid=user.gid,
            hostUid=os.geteuid(), hostGid=os.getegid(), hostname=files.hostname,
            namespaces=[kind for kind, host in (("pid", files.host_pid), ("uts", files.host_network),
                                                ("ipc", files.host_ipc)) if not host],
            rootfs=str(directory / "rootfs"), upper=str(directory / "upper"),
            work=str(directory / "work"), empty=str(directory / "empty"), mounts=mounts,
            readOnlyRoot=spec.security.read_only_root_filesystem)
        return process
    root = directory / "root"
    root.mkdir()
    for item in mounts:
        _link(root, item["target"], item["source"])
    cwd = root / (spec.working_dir or "/").lstrip("/")
    cwd.mkdir(parents=True, exist_ok=True)
    executable, search = plain_command(list(spec.command), env["PATH"], layers)
    process.update(env=dict(env, PATH=search, **{ROOT_ENV: str(root)}), cwd=str(cwd),
                   path=env["PATH"], executable=executable)
    return process


def _mounts(spec: ContainerSpec, files: SandboxFiles) -> list[dict[str, Any]]:
    """Volumes and the pod's /etc files, parents before children."""
    items = [{"source": str(m.host_path), "target": m.container_path, "readOnly": m.read_only}
             for m in spec.mounts]
    taken = {m.container_path.rstrip("/") for m in spec.mounts}
    defaults = (("/etc/hosts", Path("/etc/hosts") if files.host_network else files.hosts),
                ("/etc/hostname", files.hostname_file), ("/etc/resolv.conf", files.resolv_conf))
    items += [{"source": str(source), "target": target, "readOnly": False}
              for target, source in defaults if target not in taken]
    return sorted(items, key=lambda m: len([p for p in m["target"].split("/") if p]))


def _link(root: Path, target: str, source: str) -> None:
    """Plain mode: ``root/<target>`` -> ``source`` (a mount the process cannot have)."""
    parts = [p for p in target.split("/") if p and p not in (".", "..")]
    if not parts:
        return
    link = root.joinpath(*parts)
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink() and not link.exists():
        link.symlink_to(source)


def _passwd_layer(layers: list[str], fallback: Path) -> Path:
    """The top-most layer holding /etc/passwd (where the image's users are read)."""
    for layer in layers:
        if os.path.lexists(os.path.join(layer, "etc", "passwd")):
            return Path(layer)
    return Path(layers[0]) if layers else fallback
