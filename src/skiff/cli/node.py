"""A real node inside ``skiff up --runtime runc``: what `skiff agent` will run on other machines.

    node network (bridge skiff0, pod CIDR 10.244.0.0/24, routes for the pod and
    │             service CIDRs, egress guard)           -- set up by the kubelet
    ├─ kubelet               pods as runc containers on this host
    ├─ kubelet server        logs / exec / attach / port-forward, on 127.0.0.1
    ├─ service proxy         nftables table skiff-proxy-<node>
    ├─ NetworkPolicy agent   nftables table skiff-netpol-<bridge>
    ├─ cluster DNS           on the bridge gateway :53, behind the kube-dns Service
    └─ API relay             on the bridge gateway :6443, behind default/kubernetes
                             (pods' in-cluster clients; see apirelay.py)

The node's InternalIP is 127.0.0.1: NodePorts answer on the host's loopback and the
API server reaches the kubelet there.  Pods resolve names through the ``kube-dns``
Service (10.96.0.10), whose Endpoints point at the DNS server on the gateway.

The state of the live pods (the runtime's, the pod network's) is kept in
data-dir/kubelet/run, a tmpfs (kubelet/rundir.py); the containers' writable layers
in data-dir/kubelet/layers.  Stopping (SIGINT/SIGTERM to ``skiff up``) removes
everything the node made: its containers and sandboxes, pod networks, the bridge and
routes, the proxy's table, then that tmpfs.  A crash or kill -9 leaves the containers
running instead (and the tmpfs mounted); the next start adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..client.factory import InformerFactory
from ..client.resources import Resource
from ..client.rest import ApiClient
from .apirelay import ENDPOINTS, publish, publish_api_endpoints, relay_api_server
from .nodecleanup import remove_every_pod

if TYPE_CHECKING:
    from ..kubelet.agent import Kubelet
    from ..kubelet.eviction import EvictionConfig
    from ..kubelet.runtime.interface import Runtime

log = logging.getLogger(__name__)

POD_CIDR = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
DNS_SERVICE_IP = "10.96.0.10"
NODE_IP = "127.0.0.1"
#: Seconds each container gets between SIGTERM and SIGKILL when the node shuts down.
STOP_GRACE = 3.0

SERVICES = Resource("", "v1", "services", kind="Service")


def runc_available() -> bool:
    """Real containers need root and Debian's runc."""
    import os
    import shutil

    return os.geteuid() == 0 and shutil.which("runc") is not None


async def run_runc_node(client: ApiClient, *, data_dir: Path, node_name: str,
                        started: asyncio.Event | None = None,
                        eviction: "EvictionConfig | None" = None) -> None:
    """Run one real node until cancelled, then take it down completely."""
    from ..kubelet.agent import Kubelet
    from ..kubelet.eviction import EvictionConfig
    from ..kubelet.images.store import ImageStore
    from ..kubelet.locator import RuntimeLocator
    from ..kubelet.rundir import mount_run_dir, release_run_dir
    from ..kubelet.runtime.runc import RuncRuntime
    from ..kubelet.server import KubeletServer
    from ..proxy.netpol import run_network_policy_agent

    run_dir = data_dir / "kubelet" / "run"        # the live pods' state, on a tmpfs
    await asyncio.to_thread(mount_run_dir, run_dir)
    runtime = RuncRuntime(run_dir / "runtime", layers=data_dir / "kubelet" / "layers")
    server = KubeletServer(runtime, RuntimeLocator(runtime))
    port = await server.start(NODE_IP, 0, None)
    kubelet = Kubelet(client, node_name=node_name, data_dir=data_dir / "kubelet",
                      pod_cidr=POD_CIDR, runtime=runtime, images=ImageStore(data_dir / "images"),
                      cluster_dns=[DNS_SERVICE_IP], node_ip=NODE_IP, kubelet_port=port,
                      eviction=eviction, run_dir=run_dir)
    informers = InformerFactory(client)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(kubelet.run(), name="kubelet")
            await kubelet.ready.wait()
            group.create_task(informers.run(), name="node-informers")
            group.create_task(_serve_network_services(client, kubelet, informers, node_name),
                              name="node-services")
            group.create_task(run_network_policy_agent(
                client, node_name=node_name, bridge_name=kubelet.network.bridge_name,
                informers=informers), name="network-policy")
            if started is not None:
                started.set()
    finally:
        informers.stop()
        await server.close()
        await _take_down(runtime, kubelet, node_name)
        await asyncio.to_thread(runtime.take_down)
        await asyncio.to_thread(release_run_dir, run_dir)


async def _serve_network_services(client: ApiClient, kubelet: Kubelet,
                                  informers: InformerFactory, node_name: str) -> None:
    from ..proxy.dns.server import run_dns
    from ..proxy.proxier import run_proxy

    gateway = str(kubelet.network.gateway.ip)
    dns = await run_dns(client, listen=(gateway, 53), informers=informers)
    relay = await relay_api_server(client, gateway)
    try:
        await _publish_dns_service(client, gateway)
        await publish_api_endpoints(client, gateway)
        await run_proxy(client, node_name=node_name, cluster_cidr=CLUSTER_CIDR,
                        service_cidr=SERVICE_CIDR, informers=informers, delete_on_exit=True)
    finally:
        relay.close()
        await dns.close()


async def _publish_dns_service(client: ApiClient, address: str) -> None:
    """The kube-system/kube-dns Service in front of the node's DNS server (idempotent)."""
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": "kube-system",
                            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
               "spec": {"clusterIP": DNS_SERVICE_IP, "ports": ports}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": "kube-dns", "namespace": "kube-system",
                              "labels": {"k8s-app": "kube-dns"}},
                 "subsets": [{"addresses": [{"ip": address}],
                              "ports": [{"name": p["name"], "port": 53, "protocol": p["protocol"]}
                                        for p in ports]}]}
    await publish(client, SERVICES, service)
    await publish(client, ENDPOINTS, endpoints)


async def _delete_proxy_rules(node_name: str, bridge_name: str) -> None:
    """The service proxy's and the policy agent's tables (each removes its own on a clean
    exit; after a crash of the node's start, nobody else would)."""
    from ..proxy.netpol import NetworkPolicyAgent
    from ..proxy.proxier import ServiceProxy

    proxy = ServiceProxy(node_name=node_name, cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR)
    try:
        with contextlib.suppress(Exception):
            await proxy.delete_rules()
    finally:
        proxy.nft.close()
    await NetworkPolicyAgent(node_name=node_name, bridge_name=bridge_name).delete_rules()


async def _take_down(rt: Runtime, kubelet: Kubelet, node_name: str) -> None:
    """Stop and remove every container, sandbox, pod volume and pod network; then the
    proxy's rules and the node network."""
    await remove_every_pod(rt, kubelet, STOP_GRACE)
    with contextlib.suppress(Exception):  # the proxy's rules, if it did not remove them itself
        await _delete_proxy_rules(node_name, kubelet.network.bridge_name)
    network = kubelet.network
    for pod in network.list_pods():
        with contextlib.suppress(Exception):
            await network.remove_pod(pod.pod_uid)
    try:
        await network.teardown()
    except Exception:
        log.exception("could not take down the node network")
    with contextlib.suppress(Exception):
        await rt.close()

