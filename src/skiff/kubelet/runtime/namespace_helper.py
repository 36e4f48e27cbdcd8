"""Creates a pod's persistent namespaces; run by .namespaces as a script.

    python -I -S namespace_helper.py DIRECTORY HOSTNAME KIND...      (KIND: net ipc uts)

In a fresh process (stdlib only, cheap imports): ``unshare(2)`` the namespaces,
set the hostname in the new UTS namespace, bring ``lo`` up in the new network
namespace, and bind-mount ``/proc/self/ns/<kind>`` onto ``DIRECTORY/<kind>``.
Then exit: the bind mounts keep the namespaces alive.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_FLAGS = {"net": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000}
MS_BIND = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def main(directory: str, hostname: str, kinds: list[str]) -> None:
    """Runs in a fresh process: unshare, configure, bind-mount, exit."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = 0
    for kind in kinds:
        flags |= CLONE_FLAGS[kind]
        fd = os.open(os.path.join(directory, kind), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o444)
        os.close(fd)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    if "uts" in kinds and hostname:
        name = hostname.encode()
        if libc.sethostname(name, len(name)) != 0:
            raise OSError(ctypes.get_errno(), "sethostname")
    if "net" in kinds:
        bring_loopback_up()
    for kind in kinds:
        source = f"/proc/self/ns/{kind}".encode()
        target = os.path.join(directory, kind).encode()
        if libc.mount(source, target, None, ctypes.c_ulong(MS_BIND), None) != 0:
            raise OSError(ctypes.get_errno(), f"bind mount of the {kind} namespace")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
