"""Which uid/gid a container runs as, from its securityContext and its image.

Resolution, as the kubelet and containerd do it::

    runAsUser set      uid = runAsUser; gid = that uid's passwd entry, else 0
    image User ""      uid 0, gid 0
    image User "name"  looked up in the image's /etc/passwd (error if absent)
    image User "u:g"   u and g each numeric or looked up (/etc/passwd, /etc/group)
    runAsGroup set     replaces gid
    extra groups       /etc/group memberships of the user's name + supplementalGroups

``runAsNonRoot`` is checked before anything runs: uid 0 is refused, and so is an
image user given by name (it cannot be verified without trusting the image).

The image's files are read *inside* its root: symlinks are resolved against the
rootfs (an ``/etc/passwd -> /host/file`` link cannot reach the host).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from . import rootless
from .interface import ContainerConfigError, SecurityContext

MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    name: str = ""


def resolve_in_root(root: Path, path: str) -> Path:
    """``path`` as the container would see it, confined to ``root`` (like chroot)."""
    try:
        return Path(rootless.resolve_in_root(str(root), path))
    except rootless.SetupError as err:  # too many symlinks
        raise ContainerConfigError(f"{err} in the image") from None


def read_in_root(root: Path, path: str) -> str:
    """Contents of a small regular file of the image ("" when it is missing)."""
    real = resolve_in_root(root, path)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return ""
        return handle.read(MAX_FILE_BYTES).decode("utf-8", "replace")


def _entries(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines()
            if line and not line.startswith("#") and line.count(":") >= 2]


def verify_run_as_non_root(security: SecurityContext, image_user: str) -> None:
    """The kubelet's runAsNonRoot check (raises ContainerConfigError)."""
    if not security.run_as_non_root:
        return
    if security.run_as_user is not None:
        if security.run_as_user == 0:
            raise ContainerConfigError("container's runAsUser breaks non-root policy")
        return
    user = image_user.split(":", 1)[0]
    if not user:
        raise ContainerConfigError("container has runAsNonRoot and image will run as root")
    if not user.isdigit():
        raise ContainerConfigError(f"container has runAsNonRoot and image has non-numeric user "
                                   f"({user}), cannot verify user is non-root")
    if int(user) == 0:
        raise ContainerConfigError("container has runAsNonRoot and image will run as root")


def resolve_user(rootfs: Path, security: SecurityContext, image_user: str) -> User:
    verify_run_as_non_root(security, image_user)
    passwd = _entries(read_in_root(rootfs, "/etc/passwd"))
    groups = _entries(read_in_root(rootfs, "/etc/group"))
    name = ""
    if security.run_as_user is not None:
        uid = security.run_as_user
        entry = next((e for e in passwd if e[2] == str(uid)), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
        name = entry[0] if entry else ""
    else:
        user_part, _, group_part = image_user.partition(":")
        uid, gid = 0, 0
        if user_part:
            if user_part.isdigit():
                uid = int(user_part)
                entry = next((e for e in passwd if e[2] == user_part), None)
            else:
                entry = next((e for e in passwd if e[0] == user_part), None)
                if entry is None or not entry[2].isdigit():
                    raise ContainerConfigError(f"unable to find user {user_part}: no matching "
                                               "entries in passwd file")
                uid = int(entry[2])
            if entry is not None:
                name = entry[0]
                gid = int(entry[3]) if entry[3].isdigit() else 0
        if group_part:
            if group_part.isdigit():
                gid = int(group_part)
            else:
                group = next((g for g in groups if g[0] == group_part), None)
                if group is None or not group[2].isdigit():
                    raise ContainerConfigError(f"unable to find group {group_part}: no matching "
                                               "entries in group file")
                gid = int(group[2])
    if security.run_as_group is not None:
        gid = security.run_as_group
    extra: list[int] = []
    if name:
        for group in groups:
            members = group[3].split(",") if len(group) > 3 else []
            if name in members and group[2].isdigit() and int(group[2]) != gid:
                extra.append(int(group[2]))
    for supplemental in security.supplemental_groups:
        if supplemental not in extra and supplemental != gid:
            extra.append(supplemental)
    return User(uid=uid, gid=gid, additional_gids=tuple(extra), name=name)
