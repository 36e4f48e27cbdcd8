"""The service proxy: Services' virtual IPs, NodePorts and load-balancer IPs on
every node, programmed with nftables as kube-proxy's nftables mode does, so the
kernel forwards the traffic; plus the cluster DNS (.dns) and a load-balancer
controller.

::

    API ──Services, EndpointSlices──▶ ServiceProxy (one per node) ──nft -f──▶ table ip skiff-proxy-<node>
      ▲                                                                        (the node's namespace)
      └── LoadBalancerController: status.loadBalancer.ingress = the nodes' addresses

Modules, one concept each:

    serviceports  a Service + its EndpointSlices → ServicePorts (which endpoints serve)
    rules         a ServicePort → nft chains, sets and map elements (a Program)
    table         the table's fixed skeleton, whole-table rewrite, incremental transaction
    nft           running transactions in the node's namespace (libnftables, or ``nft -f``)
    preflight     refuse to start unless the cluster and service CIDRs are routed locally
    proxier       ServiceProxy and run_proxy(): informers → dirty Services → transactions
    loadbalancer  the built-in load-balancer controller (like k3s's ServiceLB)
    userspace     the fallback without root or nftables: an asyncio relay per port
                  (NodePorts and load-balancer addresses only: no virtual IPs without root)
    dns           the cluster DNS
"""

from .loadbalancer import LoadBalancerController, run_load_balancer_controller
from .proxier import ServiceProxy, run_proxy
from .userspace import UserspaceProxy, run_userspace_proxy

__all__ = ["LoadBalancerController", "ServiceProxy", "UserspaceProxy", "run_load_balancer_controller",
           "run_proxy", "run_userspace_proxy"]
