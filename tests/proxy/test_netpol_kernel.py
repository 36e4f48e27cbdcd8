"""NetworkPolicy enforced by the kernel: real pods on a real bridge (in a namespace
standing for a node), real TCP connections, policies written to the real API
server and applied by the agent (see test_netpol_support for the lab)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from background_support import running
from skiff.client.resources import ENDPOINTSLICES, PODS, SERVICES
from skiff.proxy.netpol import EGRESS, INGRESS
from skiff.proxy.netpol.ruleset import EGRESS_COUNTER, INGRESS_COUNTER
from skiff.proxy.proxier import ServiceProxy
from test_netpol_ruleset import listing
from test_netpol_support import BLOCKED, BRIDGE, PolicyLab
from test_proxy_support import DEADLINE, assert_root, nft_json, tables

assert_root()

DB = {"matchLabels": {"app": "db"}}
DENY_DB = {"podSelector": DB, "policyTypes": ["Ingress"]}


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[PolicyLab]:
    async with PolicyLab(tmp_path) as policy_lab:
        yield policy_lab
    assert not policy_lab.node_ns.exists()


def lets_in(lab: PolicyLab, target: str, source: str, port: int = 8080) -> bool:
    """The agent has isolated ``target`` for ingress, and lets ``source`` in on ``port``."""
    return (lab.agent.compiled.isolated(INGRESS, lab.ip(target))
            and lab.agent.permits(INGRESS, lab.ip(target), lab.ip(source), "tcp", port))


def counter(lab: PolicyLab, name: str) -> int:
    listing = nft_json(lab.node_ns, "list", "counter", "inet", lab.agent.table, name)
    return int(next(entry["counter"] for entry in listing if "counter" in entry)["packets"])


async def test_default_deny_ingress_blocks_pods_but_not_the_node_nor_the_pods_own_connections(
        lab: PolicyLab) -> None:
    assert await lab.reaches("a", "b")
    await lab.apply("deny-db", DENY_DB)
    await lab.until(lambda: lab.agent.compiled.isolated(INGRESS, lab.ip("b")))
    assert not await lab.reaches("a", "b")
    assert not await lab.reaches("c", "b", 9090)
    assert counter(lab, INGRESS_COUNTER) == 2
    assert await lab.reaches(None, "b")               # the node (kubelet probes)
    assert await lab.reaches("b", "a")                # b's own connections, and their replies
    assert await lab.reaches("a", "c")                # c is not selected
    await lab.delete("deny-db")
    await lab.until(lambda: not lab.agent.compiled.isolated(INGRESS, lab.ip("b")))
    assert await lab.reaches("a", "b")


async def test_allow_by_label_and_named_port(lab: PolicyLab) -> None:
    await lab.apply("deny-db", DENY_DB)
    await lab.apply("db-from-access", {"podSelector": DB, "ingress": [{
        "from": [{"podSelector": {"matchLabels": {"access": "true"}}}],
        "ports": [{"port": "http"}]}]})              # b's container port 8080
    await lab.until(lambda: lets_in(lab, "b", "a"))
    assert await lab.reaches("a", "b", 8080)
    assert not await lab.reaches("a", "b", 9090)      # not the named port
    assert not await lab.reaches("c", "b", 8080)      # not labelled
    # Labelling c lets it in; a pod's labels are followed.
    await lab.client.patch(PODS, "c", {"metadata": {"labels": {"access": "true"}}}, namespace="default")
    await lab.until(lambda: lets_in(lab, "b", "c"))
    assert await lab.reaches("c", "b", 8080)


async def test_namespace_selector(lab: PolicyLab) -> None:
    await lab.apply("db-from-frontend", {"podSelector": DB, "ingress": [{
        "from": [{"namespaceSelector": {"matchLabels": {"team": "frontend"}}}]}]})
    await lab.until(lambda: lab.agent.compiled.isolated(INGRESS, lab.ip("b")))
    assert await lab.reaches("d", "b")
    assert await lab.reaches("d", "b", 9090)
    assert not await lab.reaches("a", "b")


async def test_ip_block_with_except(lab: PolicyLab) -> None:
    await lab.apply("db-from-block", {"podSelector": DB, "ingress": [{
        "from": [{"ipBlock": {"cidr": "10.244.0.0/24", "except": [f"{lab.ip('a')}/32"]}}]}]})
    await lab.until(lambda: lab.agent.compiled.isolated(INGRESS, lab.ip("b")))
    assert await lab.reaches("c", "b")
    assert await lab.reaches("d", "b")
    assert not await lab.reaches("a", "b")


async def test_egress_deny_blocks_new_connections_but_not_replies(lab: PolicyLab) -> None:
    await lab.apply("a-no-egress", {"podSelector": {"matchLabels": {"access": "true"}},
                                    "policyTypes": ["Egress"]})
    await lab.until(lambda: lab.agent.compiled.isolated(EGRESS, lab.ip("a")))
    assert not await lab.reaches("a", "b")
    assert counter(lab, EGRESS_COUNTER) == 1
    assert await lab.reaches("b", "a")                # a answers connections made to it
    assert await lab.reaches(None, "a")
    # Allow a → db pods only.
    await lab.apply("a-to-db", {"podSelector": {"matchLabels": {"access": "true"}},
                                "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": DB}]}]})
    await lab.until(lambda: lab.agent.permits(EGRESS, lab.ip("a"), lab.ip("b"), "tcp", 8080))
    assert await lab.reaches("a", "b")
    assert not await lab.reaches("a", "c")
    await lab.delete("a-no-egress")
    await lab.delete("a-to-db")
    await lab.until(lambda: not lab.agent.compiled.isolated(EGRESS, lab.ip("a")))
    assert await lab.reaches("a", "c")


async def test_service_traffic_is_checked_after_dnat(lab: PolicyLab) -> None:
    """The proxy translates the ClusterIP to b's address in prerouting; the policy (in
    forward) sees b's address and the client's own."""
    proxy = ServiceProxy(node_name="node-np", cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12",
                         node_netns=lab.node_ns, table="skiff-proxy-np")
    async with running(proxy.run(lab.client, delete_on_exit=True), proxy.started, "the proxy"):
        service = await lab.client.create(SERVICES, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}, namespace="default")
        await lab.client.create(ENDPOINTSLICES, {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "db-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [lab.ip("b")], "nodeName": "node-np",
                           "conditions": {"ready": True}}]}, namespace="default")
        cluster_ip = service["spec"]["clusterIP"]
        await asyncio.wait_for(proxy.wait_for(lambda: any(proxy.endpoints("default/db").values())), DEADLINE)
        assert await lab.connect("c", cluster_ip, 80) == lab.ip("c")
        await lab.apply("deny-db", DENY_DB)
        await lab.apply("db-from-access", {"podSelector": DB, "ingress": [{
            "from": [{"podSelector": {"matchLabels": {"access": "true"}}}], "ports": [{"port": 8080}]}]})
        await lab.until(lambda: lets_in(lab, "b", "a"))
        assert await lab.connect("a", cluster_ip, 80) == lab.ip("a")
        assert await lab.connect("c", cluster_ip, 80) == BLOCKED


async def test_restart_keeps_enforcing_and_stop_removes_the_table(lab: PolicyLab) -> None:
    table = f"inet skiff-netpol-{BRIDGE}"
    await lab.apply("deny-db", DENY_DB)
    await lab.apply("db-from-access", {"podSelector": DB, "ingress": [{
        "from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]})
    await lab.until(lambda: lets_in(lab, "b", "a"))
    first_rules = listing(lab.node_ns, lab.agent.table)
    # A crash: the agent goes away without cleaning up; its rules keep working.
    await lab.stop_agent()
    lab.agent = await lab.start_agent(delete_on_exit=False)
    await lab.stop_agent()
    assert table in tables(lab.node_ns)
    assert await lab.reaches("a", "b") and not await lab.reaches("c", "b")
    # The next agent takes the table over in one transaction, to the same content.
    await lab.start_agent()
    assert lab.agent.syncs[0].full
    assert listing(lab.node_ns, lab.agent.table) == first_rules
    assert await lab.reaches("a", "b") and not await lab.reaches("c", "b")
    # Stopping removes the table: nobody is isolated any more.
    await lab.stop_agent()
    assert table not in tables(lab.node_ns)
    assert await lab.reaches("c", "b")


async def test_syncs_are_incremental_and_coalesced(lab: PolicyLab) -> None:
    await lab.apply("deny-db", DENY_DB)
    await lab.apply("db-from-access", {"podSelector": DB, "ingress": [{
        "from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]})
    await lab.until(lambda: lets_in(lab, "b", "a"))
    # A pod gaining a label changes one set's elements, nothing else.
    await lab.client.patch(PODS, "c", {"metadata": {"labels": {"access": "true"}}}, namespace="default")
    await lab.until(lambda: lets_in(lab, "b", "c"))
    table, peers = f"inet {lab.agent.table}", "from-default/db-from-access/0"
    assert not lab.agent.syncs[-1].full
    assert lab.agent.last_transaction.splitlines() == [f"add element {table} {peers} {{ {lab.ip('c')} }}"]
    assert await lab.reaches("c", "b")
    # A burst of changes is applied together.
    lab.agent.coalesce = 0.5
    before = len(lab.agent.syncs)
    for port in range(1000, 1006):
        await lab.apply(f"port-{port}", {"podSelector": DB, "ingress": [{"ports": [{"port": port}]}]})
    await lab.until(lambda: all(lab.agent.permits(INGRESS, lab.ip("b"), lab.ip("d"), "tcp", port)
                                for port in range(1000, 1006)))
    assert len(lab.agent.syncs) - before <= 2
