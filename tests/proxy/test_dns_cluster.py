"""The DNS with the EndpointSlice controller and simulated nodes: names for real pods."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from dnslib import RCODE

from apiserver_support import ApiServer
from background_support import running
from skiff.client.resources import PODS, SERVICES
from skiff.controllers.endpointslice import EndpointSliceController
from skiff.controllers.manager import run_controllers
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs
from skiff.proxy.dns import run_dns
from test_dns_support import FakeUpstream, query, rdata, wait_answer

Obj = dict[str, Any]


def stateful_pod(name: str, node: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": node, "hostname": name, "subdomain": "web",
                     "containers": [{"name": "c", "image": "nginx:1.27",
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}


async def test_statefulset_style_pods_resolve_by_hostname(tmp_path: Path) -> None:
    async with ApiServer(tmp_path) as api, FakeUpstream() as upstream:
        client = api.client
        agents = [FakeNodeAgent(client, spec) for spec in fake_node_specs(1)]
        fleet = FakeNodeFleet(client, agents)
        started = asyncio.Event()
        async with running(fleet.run(), fleet.registered, "the fake nodes"), running(run_controllers(
                client, started=started, known=[("endpointslice", EndpointSliceController)]), started,
                "the EndpointSlice controller"):
            async with await run_dns(client, upstream=[("127.0.0.1", upstream.port)]) as dns:
                await client.create(SERVICES, {
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"clusterIP": "None", "selector": {"app": "web"},
                             "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
                await client.create(SERVICES, {
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "front", "namespace": "default"},
                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
                node = agents[0].name
                for i in range(2):
                    await client.create(PODS, stateful_pod(f"web-{i}", node))
                name = "web.default.svc.cluster.local"
                both = await wait_answer(dns, name, lambda r: len(r.rr) == 2)
                pods = {p["metadata"]["name"]: p["status"]["podIP"]
                        for p in (await client.list(PODS, namespace="default")).items}
                assert rdata(both) == sorted(pods.values())
                web0 = await query(dns.port, f"web-0.{name}")
                assert rdata(web0) == [pods["web-0"]]
                srv = await query(dns.port, f"_http._tcp.{name}", "SRV")
                assert sorted((r.rdata.port, str(r.rdata.target)) for r in srv.rr) == [
                    (8080, f"web-0.{name}."), (8080, f"web-1.{name}.")]
                # The ClusterIP Service resolves to the IP the API server allocated.
                front = await client.get(SERVICES, "front", namespace="default")
                reply = await wait_answer(dns, "front.default.svc.cluster.local",
                                          lambda r: bool(r.rr))
                assert rdata(reply) == [front["spec"]["clusterIP"]]
                # A deleted pod leaves the answers.
                await client.delete(PODS, "web-1", namespace="default", grace_period_seconds=0)
                await wait_answer(dns, f"web-1.{name}",
                                  lambda r: r.header.rcode == RCODE.NXDOMAIN)
                assert rdata(await query(dns.port, name)) == [pods["web-0"]]
        assert upstream.queries == []


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_an_unanswering_upstream_gives_servfail(tmp_path: Path) -> None:
    async with ApiServer(tmp_path) as api:
        dead = ("127.0.0.1", closed_udp_port())
        async with await run_dns(api.client, upstream=[dead], forward_timeout=0.2) as dns:
            reply = await query(dns.port, "example.org")
            assert reply.header.rcode == RCODE.SERVFAIL
            # Cluster names do not depend on the upstream.
            soa = await query(dns.port, "cluster.local", "SOA")
            assert soa.header.rcode == RCODE.NOERROR and soa.rr
        async with await run_dns(api.client, upstream=[]) as dns:
            assert (await query(dns.port, "example.org")).header.rcode == RCODE.SERVFAIL
