"""The exceptions pod networking raises; the kubelet translates them once.

::

    NetworkError                 anything that went wrong setting up or tearing down
    ├── CommandFailed            an `ip` / `nft` command exited non-zero (argv, stderr kept)
    ├── NetworkConflict          the node's namespace already holds something in our way
    │                            (a route over a cluster CIDR, a foreign bridge of our name)
    ├── AddressesExhausted       the node's pod CIDR has no free address left
    └── HostPortConflict         two pods of the node claim the same hostPort
"""

from __future__ import annotations

from collections.abc import Sequence


class NetworkError(Exception):
    """Pod or node networking failed."""


class CommandFailed(NetworkError):
    """A networking command (``ip``, ``nft``) exited with an error."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{' '.join(self.argv)} exited {returncode}: {stderr.strip()}")


class NetworkConflict(NetworkError):
    """The node's network namespace holds an object that collides with the pod network."""


class AddressesExhausted(NetworkError):
    """Every address of the node's pod CIDR is allocated."""


class HostPortConflict(NetworkError):
    """A hostPort (protocol, host IP, port) is already taken by another pod of the node."""
