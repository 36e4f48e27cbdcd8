"""Network namespaces standing for a node, for the tests that need one (root only).

:func:`add_namespace` makes a named namespace (``/run/netns/skifft-<hex>``, unique, so
suites running at the same time on this machine never meet) with only loopback up: no
route out of the machine.  :func:`delete_namespace` removes it, if it is still there.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def add_namespace() -> Path:
    name = f"skifft-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=20)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True,
                   timeout=20)
    return NETNS_DIR / name


def delete_namespace(path: Path) -> None:
    if path.exists():
        subprocess.run(["ip", "netns", "del", path.name], capture_output=True, timeout=20)
