"""Pod networking for the kubelet: Kubernetes' model, as a bridge CNI plugin with
host-local IPAM would do it, driven by ``ip`` (iproute2) and ``nft``.

::

    node namespace                                   pod namespaces
    ┌──────────────────────────────────────┐        ┌──────────────────────┐
    │ skiff0 10.244.0.1/24 ── vethXXXX ────┼────────┤ eth0 10.244.0.7/24   │
    │   routes: cluster + service CIDRs    │        │ lo; default via .1   │
    │   table inet skiff-net-skiff0        │        └──────────────────────┘
    └──────────────────────────────────────┘

Modules, one concept each:

    node       NodeNetwork: setup/teardown of a node, add/remove pods (the API)
    podnet     PodNetwork, the on-disk pod records, veth plumbing of one pod
    bridge     the node bridge
    ipam       host-local address allocation persisted on disk
    safety     CIDR checks, catch-all routes and the egress guard (nothing leaves
               the machine)
    hostport   hostPort DNAT maps
    netns      namespaces as files; running work inside one on a throwaway thread
    errors     the exception tree

Why ``ip``/``nft`` subprocesses and not a netlink library: measured on the target
machine (2 cores), pyroute2 0.9 took ~0.25 s to import and 9–24 ms to plumb one pod
(≈29 ms to remove one). With iproute2, add_pod is one thread hop and two
``ip -batch`` runs: ~9 ms median (20–26 ms with the machine loaded), almost all of
it the two execs; remove_pod is ~30 ms, nearly all the kernel deleting the veth.
bench/podnetwork.py prints the figures.
"""

from .errors import (AddressesExhausted, CommandFailed, HostPortConflict, NetworkConflict,
                     NetworkError)
from .hostport import HostPort
from .node import NodeNetwork
from .podnet import PodNetwork

__all__ = ["AddressesExhausted", "CommandFailed", "HostPort", "HostPortConflict",
           "NetworkConflict", "NetworkError", "NodeNetwork", "PodNetwork"]
