"""NetworkPolicy enforcement for a node: who may talk to the node's pods, and to whom
they may talk, programmed with nftables next to the service proxy.

::

    API ──NetworkPolicies, Pods, Namespaces──▶ NetworkPolicyAgent (one per node)
                                                  │ .compiler (pure) → .ruleset
                                                  ▼ nft -f, one transaction per sync
                         table inet skiff-netpol-<bridge>   (the node's namespace)
                           hook forward: replies accepted; then the sender's egress
                           rules and the receiver's ingress rules, by pod IP

What is enforced, as in Kubernetes: a pod selected by no policy of a direction is
not isolated for it; a selected pod receives (sends) only what the union of the
rules of the policies selecting it allows — podSelector / namespaceSelector /
both / ipBlock with except, TCP / UDP / SCTP ports, named ports, port ranges.
Replies of allowed connections always flow. The node's own traffic to and from its
pods (kubelet probes, the DNS server on the gateway) never passes the forward hook
and is never filtered; a pod may always reach itself. Policies see pod IPs after
the proxy's DNAT (prerouting comes before forward). docs/network-policy.md has the
details and the limits.

Modules, one concept each:

    policy     a NetworkPolicy object read into values (Kubernetes' field semantics)
    inventory  what policy reads of Pods and Namespaces
    compiler   policies + pods + namespaces → per-pod allow rules and peer sets (pure)
    ruleset    those as nft objects: the whole table, or the difference of two versions
    agent      informers → coalesced syncs → transactions; run_network_policy_agent()
"""

from .agent import NetworkPolicyAgent, run_network_policy_agent
from .compiler import Compiled, compile_policies
from .policy import EGRESS, INGRESS, parse_policy

__all__ = ["Compiled", "EGRESS", "INGRESS", "NetworkPolicyAgent", "compile_policies", "parse_policy",
           "run_network_policy_agent"]
