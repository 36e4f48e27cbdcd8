"""Host-local IP address management: one file per allocated address.

Like the CNI ``host-local`` plugin, the allocations of a node's pod CIDR live on
disk, so a kubelet restart neither forgets an address (double allocation) nor
keeps one nobody holds (leak)::

    <directory>/                 one directory per pod CIDR, e.g. ipam/10.244.0.0-24/
      10.244.0.7                 file content: the owner (the pod's UID)
      10.244.0.8
      last-reserved              where the round-robin search resumes

Creating the address file with ``O_EXCL`` *is* the reservation: two allocators
racing for one address cannot both win, even in different processes. Releasing
deletes the file, but only for its owner. Addresses are handed out round-robin
after the last one reserved, so a just-freed address is not immediately reused
(stale ARP and conntrack entries of its former pod have time to expire).

The subnet's network address, the gateway (its first address) and the
broadcast address are never handed out.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import AddressesExhausted

LAST_RESERVED = "last-reserved"


def directory_for(root: Path, subnet: ipaddress.IPv4Network) -> Path:
    """Where the allocations of ``subnet`` live under ``root``."""
    return root / f"{subnet.network_address}-{subnet.prefixlen}"


class HostLocalIPAM:
    """Allocates the addresses of one IPv4 subnet to owners, persistently."""

    def __init__(self, directory: Path, subnet: ipaddress.IPv4Network) -> None:
        if subnet.num_addresses < 4:
            raise ValueError(f"pod CIDR {subnet} is too small (need at least a /30)")
        self.directory = directory
        self.subnet = subnet
        self.gateway = subnet.network_address + 1

    def _candidates(self) -> Iterator[ipaddress.IPv4Address]:
        """Allocatable addresses, starting after the last reserved one."""
        first = int(self.subnet.network_address) + 2          # skip network and gateway
        last = int(self.subnet.broadcast_address) - 1         # skip broadcast
        start = first
        try:
            previous = ipaddress.IPv4Address((self.directory / LAST_RESERVED).read_text().strip())
            if first <= int(previous) < last:
                start = int(previous) + 1
        except (OSError, ValueError):
            pass
        for value in itertools.chain(range(start, last + 1), range(first, start)):
            yield ipaddress.IPv4Address(value)

    def allocate(self, owner: str) -> ipaddress.IPv4Address:
        """Reserve a free address for ``owner``; AddressesExhausted when none is left."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for address in self._candidates():
            path = self.directory / str(address)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
            try:
                os.write(fd, owner.encode())
            finally:
                os.close(fd)
            self._remember_last(address)
            return address
        raise AddressesExhausted(f"no free address left in pod CIDR {self.subnet}")

    def _remember_last(self, address: ipaddress.IPv4Address) -> None:
        # Only a hint for where to search next: a torn write reads as garbage and
        # the search then starts at the beginning, so no rename dance is needed.
        (self.directory / LAST_RESERVED).write_text(str(address))

    def owner_of(self, address: ipaddress.IPv4Address) -> str | None:
        try:
            return (self.directory / str(address)).read_text()
        except FileNotFoundError:
            return None

    def release(self, address: ipaddress.IPv4Address, owner: str) -> bool:
        """Free ``address`` if ``owner`` holds it; True when a file was removed."""
        if self.owner_of(address) != owner:
            return False
        try:
            os.unlink(self.directory / str(address))
        except FileNotFoundError:
            return False
        return True

    def allocations(self) -> dict[ipaddress.IPv4Address, str]:
        """Every held address and its owner."""
        held: dict[ipaddress.IPv4Address, str] = {}
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return held
        for name in names:
            try:
                address = ipaddress.IPv4Address(name)
            except ValueError:
                continue
            owner = self.owner_of(address)
            if owner is not None:
                held[address] = owner
        return held

    def release_all_of(self, owner: str) -> list[ipaddress.IPv4Address]:
        """Free whatever ``owner`` holds (cleanup after a crash mid-setup)."""
        freed = [address for address, held_by in self.allocations().items() if held_by == owner]
        for address in freed:
            self.release(address, owner)
        return freed

    def destroy(self) -> None:
        """Forget every allocation of this subnet (node teardown)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(self.directory / name)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.directory)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise
