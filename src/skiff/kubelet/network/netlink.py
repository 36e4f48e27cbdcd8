"""Just enough rtnetlink to plug a pod in: veth pairs, bridge ports, addresses, routes.

A pod's plumbing is eight small kernel requests; running ``ip`` twice for them costs
two process starts (most of the time a pod's network takes).  These are the same
requests ``ip`` sends, made directly on a ``NETLINK_ROUTE`` socket::

    Netlink()                              a socket in the *calling thread's* network
      │                                    namespace (see .netns: work runs on threads
      │                                    that joined the right one)
      ├─ add_veth(name, peer, peer_netns_fd, mtu)     RTM_NEWLINK  kind veth
      ├─ set_link(name, master=, up=, hairpin=)       RTM_NEWLINK  (existing link)
      ├─ add_address(name, interface)                 RTM_NEWADDR
      ├─ add_default_route(name, gateway)             RTM_NEWROUTE table main
      └─ delete_link(name)                            RTM_DELLINK

Every request asks for an acknowledgement; a refusal raises :class:`NetlinkFailed`
with the kernel's errno (``EEXIST``, ``ENODEV``, ...).  Links are named, not
numbered: the kernel looks a link up by ``IFLA_IFNAME`` when no index is given.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from itertools import count

from .errors import NetworkError

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4                      # hairpin
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
IFF_UP = 0x1

_HEADER = struct.Struct("=IHHII")         # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")        # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")         # ifaddrmsg: family, prefix, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")      # rtmsg
_ATTR = struct.Struct("=HH")              # rtattr: length, type


class NetlinkFailed(NetworkError):
    """The kernel refused a request."""

    def __init__(self, what: str, code: int) -> None:
        self.errno = code
        super().__init__(f"{what}: {os.strerror(code)}")


def _attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _name(text: str) -> bytes:
    return text.encode() + b"\0"


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def _index(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise NetlinkFailed(f"link {name}", errno.ENODEV) from None


def _link(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


class Netlink:
    """A route netlink socket of the calling thread's network namespace."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._socket.bind((0, 0))
        self._sequence = count(1)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, what: str, kind: int, flags: int, body: bytes) -> None:
        sequence = next(self._sequence)
        message = _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags,
                               sequence, 0) + body
        self._socket.send(message)
        while True:
            data = self._socket.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, reply, _, replied_to, _ = _HEADER.unpack_from(data, offset)
                if reply == NLMSG_ERROR and replied_to == sequence:
                    code = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                    if code:
                        raise NetlinkFailed(what, code)
                    return
                offset += (length + 3) & ~3 if length else len(data)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mtu: int) -> None:
        """A veth pair: ``name`` here, ``peer`` in the namespace of ``peer_netns_fd``."""
        peer_info = _link() + _attr(IFLA_IFNAME, _name(peer)) + _attr(IFLA_MTU, _u32(mtu)) \
            + _attr(IFLA_NET_NS_FD, _u32(peer_netns_fd))
        info = _attr(IFLA_INFO_KIND, b"veth\0") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info))
        body = _link() + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_MTU, _u32(mtu)) \
            + _attr(IFLA_LINKINFO, info)
        self._request(f"add veth {name}", RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def set_link(self, name: str, *, master: str | None = None, up: bool = False,
                 hairpin: bool | None = None) -> None:
        """Attach ``name`` to a bridge, set its bridge port's hairpin mode, bring it up."""
        attrs = _attr(IFLA_IFNAME, _name(name))
        if master is not None:
            attrs += _attr(IFLA_MASTER, _u32(_index(master)))
        if hairpin is not None:
            attrs += _attr(IFLA_LINKINFO, _attr(IFLA_INFO_SLAVE_KIND, b"bridge\0") + _attr(
                IFLA_INFO_SLAVE_DATA, _attr(IFLA_BRPORT_MODE, bytes([int(hairpin)]))))
        flags = IFF_UP if up else 0
        self._request(f"set link {name}", RTM_NEWLINK, 0, _link(0, flags, flags) + attrs)

    def add_address(self, name: str, interface: ipaddress.IPv4Interface) -> None:
        address = interface.ip.packed
        body = _IFADDR.pack(socket.AF_INET, interface.network.prefixlen, 0, RT_SCOPE_UNIVERSE,
                            _index(name)) \
            + _attr(IFA_LOCAL, address) + _attr(IFA_ADDRESS, address)
        self._request(f"add address {interface} to {name}", RTM_NEWADDR,
                      NLM_F_CREATE | NLM_F_EXCL, body)

    def add_default_route(self, name: str, gateway: ipaddress.IPv4Address) -> None:
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0) \
            + _attr(RTA_GATEWAY, gateway.packed) + _attr(RTA_OIF, _u32(_index(name)))
        self._request(f"add default route via {gateway}", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)

    def delete_link(self, name: str) -> bool:
        """Delete a link (a veth takes its peer along); False if there was none."""
        try:
            self._request(f"delete link {name}", RTM_DELLINK, 0, _link() + _attr(IFLA_IFNAME, _name(name)))
        except NetlinkFailed as err:
            if err.errno == errno.ENODEV:
                return False
            raise
        return True
