"""NetworkPolicy semantics, checked on the compiled rules (no root, no kernel):
which pods are isolated, and what :meth:`Compiled.permits` lets through — the same
data the nft rules are made of."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from skiff.api.selectors import SelectorError
from skiff.proxy.netpol.compiler import Compiled, compile_policies, merge_ranges, set_name
from skiff.proxy.netpol.inventory import namespace_labels, pod_info
from skiff.proxy.netpol.policy import EGRESS, INGRESS, IPBlock, parse_policy, policy_types

Obj = dict[str, Any]
NODE = "node-a"


def pod(name: str, ip: str | None, labels: dict[str, str] | None = None, *, ns: str = "default",
        node: str = NODE, ports: tuple[tuple[str, int, str], ...] = (), phase: str = "Running",
        host_network: bool = False, created: str = "2024-01-01T00:00:00Z") -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {},
                         "creationTimestamp": created},
            "spec": {"nodeName": node, "hostNetwork": host_network,
                     "containers": [{"name": "main", "ports": [
                         {"name": n, "containerPort": number, "protocol": proto}
                         for n, number, proto in ports]}]},
            "status": {"phase": phase, **({"podIP": ip, "podIPs": [{"ip": ip}]} if ip else {})}}


def policy(name: str, spec: Obj, ns: str = "default") -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def namespace(name: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "labels": labels}}


A, B, C, D = "10.244.0.2", "10.244.0.3", "10.244.0.4", "10.244.0.5"
REMOTE = "10.244.1.7"            # a pod of another node


def cluster() -> list[Obj]:
    """a, b (default ns, this node), c (team-b ns, this node), r (default ns, another node)."""
    return [pod("a", A, {"access": "true", "app": "client"}),
            pod("b", B, {"app": "db"}, ports=(("pg", 5432, "TCP"), ("http", 8080, "TCP"),
                                             ("dns", 53, "UDP"))),
            pod("c", C, {"access": "true"}, ns="team-b"),
            pod("r", REMOTE, {"app": "web"}, node="node-b", ports=(("http", 80, "TCP"),))]


def compile_(policies: list[Obj], pods: list[Obj] | None = None,
             namespaces: list[Obj] | None = None) -> Compiled:
    infos = [info for p in (cluster() if pods is None else pods) if (info := pod_info(p))]
    labels = {n["metadata"]["name"]: namespace_labels(n)
              for n in (namespaces if namespaces is not None
                        else [namespace("default"), namespace("team-b", team="b")])}
    return compile_policies([parse_policy(p) for p in policies], infos, labels, NODE)


# -- isolation ------------------------------------------------------------------------

def test_pods_no_policy_selects_are_not_isolated() -> None:
    compiled = compile_([policy("db-only", {"podSelector": {"matchLabels": {"app": "db"}}})])
    assert compiled.isolated(INGRESS, B)
    assert not compiled.isolated(INGRESS, A) and not compiled.isolated(EGRESS, B)
    assert compiled.permits(INGRESS, A, C, "tcp", 1) and compiled.permits(EGRESS, B, A, "tcp", 1)
    assert not compiled.permits(INGRESS, B, A, "tcp", 5432)


def test_policy_types_default_from_the_rules() -> None:
    assert policy_types({"ingress": [{}]}) == (INGRESS,)
    assert policy_types({}) == (INGRESS,)
    assert policy_types({"egress": [{}]}) == (INGRESS, EGRESS)
    assert policy_types({"egress": [], "policyTypes": ["Egress"]}) == (EGRESS,)
    # An egress rule without policyTypes isolates both ways (and allows no ingress).
    compiled = compile_([policy("p", {"podSelector": {}, "egress": [{}]})])
    assert compiled.isolated(INGRESS, A) and compiled.isolated(EGRESS, A)
    assert not compiled.permits(INGRESS, A, B, "tcp", 80)
    assert compiled.permits(EGRESS, A, B, "tcp", 80)


def test_policy_types_ingress_without_rules_is_default_deny_and_keeps_egress_open() -> None:
    compiled = compile_([policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})])
    assert compiled.isolated(INGRESS, A) and compiled.isolated(INGRESS, B)
    assert not compiled.isolated(INGRESS, C)           # another namespace
    assert not compiled.permits(INGRESS, B, A, "tcp", 5432)
    assert not compiled.permits(INGRESS, B, REMOTE, "udp", 53)
    assert compiled.permits(EGRESS, B, A, "tcp", 80)
    assert compiled.permits(INGRESS, B, B, "tcp", 5432)   # a pod can always reach itself


def test_egress_only_policy_leaves_ingress_open() -> None:
    compiled = compile_([policy("no-out", {"podSelector": {"matchLabels": {"app": "client"}},
                                           "policyTypes": ["Egress"]})])
    assert compiled.isolated(EGRESS, A) and not compiled.isolated(INGRESS, A)
    assert not compiled.permits(EGRESS, A, B, "tcp", 5432)
    assert compiled.permits(INGRESS, A, B, "tcp", 5432)


def test_empty_rule_allows_everything() -> None:
    compiled = compile_([policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}),
                         policy("all", {"podSelector": {"matchLabels": {"app": "db"}},
                                        "ingress": [{}]})])
    assert compiled.permits(INGRESS, B, C, "icmp")
    assert compiled.permits(INGRESS, B, "192.0.2.1", "udp", 9)
    assert not compiled.permits(INGRESS, A, C, "tcp", 80)     # still only the deny for a


def test_policies_are_a_union() -> None:
    compiled = compile_([
        policy("from-a", {"podSelector": {"matchLabels": {"app": "db"}},
                          "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}),
        policy("from-team-b", {"podSelector": {"matchLabels": {"app": "db"}},
                               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}],
                                            "ports": [{"port": 5432}]}]})])
    assert compiled.permits(INGRESS, B, A, "tcp", 1234)
    assert compiled.permits(INGRESS, B, C, "tcp", 5432)
    assert not compiled.permits(INGRESS, B, C, "tcp", 8080)
    assert not compiled.permits(INGRESS, B, REMOTE, "tcp", 5432)


# -- peers --------------------------------------------------------------------------------

def test_pod_selector_peer_is_limited_to_the_policy_namespace() -> None:
    access = {"podSelector": {"matchLabels": {"access": "true"}}}
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}},
                                      "ingress": [{"from": [access]}]})])
    assert compiled.permits(INGRESS, B, A, "tcp", 5432)
    assert not compiled.permits(INGRESS, B, C, "tcp", 5432)    # access=true, but in team-b
    assert not compiled.permits(INGRESS, B, REMOTE, "tcp", 5432)


def test_empty_pod_selector_peer_means_every_pod_of_the_namespace() -> None:
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}},
                                      "ingress": [{"from": [{"podSelector": {}}]}]})])
    assert compiled.permits(INGRESS, B, A, "tcp", 1)
    assert compiled.permits(INGRESS, B, REMOTE, "tcp", 1)      # same namespace, other node
    assert not compiled.permits(INGRESS, B, C, "tcp", 1)


def test_namespace_selector_peer() -> None:
    team_b = {"namespaceSelector": {"matchLabels": {"team": "b"}}}
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}},
                                      "ingress": [{"from": [team_b]}]})])
    assert compiled.permits(INGRESS, B, C, "tcp", 1)
    assert not compiled.permits(INGRESS, B, A, "tcp", 1)
    every = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}},
                                   "ingress": [{"from": [{"namespaceSelector": {}}]}]})])
    assert every.permits(INGRESS, B, C, "tcp", 1) and every.permits(INGRESS, B, A, "tcp", 1)
    assert not every.permits(INGRESS, B, "192.0.2.1", "tcp", 1)    # pods only, not any address


def test_namespace_selector_by_name_label_without_the_namespace_object() -> None:
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-b"}}}]}]})],
        namespaces=[])
    assert compiled.permits(INGRESS, B, C, "tcp", 1)
    assert not compiled.permits(INGRESS, B, A, "tcp", 1)


def test_pod_and_namespace_selector_in_one_peer_is_an_and_in_two_peers_an_or() -> None:
    pods = cluster() + [pod("e", D, {"app": "other"}, ns="team-b")]
    both = {"namespaceSelector": {"matchLabels": {"team": "b"}},
            "podSelector": {"matchLabels": {"access": "true"}}}
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}},
                                      "ingress": [{"from": [both]}]})], pods)
    assert compiled.permits(INGRESS, B, C, "tcp", 1)          # team-b and access=true
    assert not compiled.permits(INGRESS, B, D, "tcp", 1)      # team-b only
    assert not compiled.permits(INGRESS, B, A, "tcp", 1)      # access=true only
    apart = [{"namespaceSelector": both["namespaceSelector"]}, {"podSelector": both["podSelector"]}]
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}},
                                      "ingress": [{"from": apart}]})], pods)
    assert compiled.permits(INGRESS, B, C, "tcp", 1) and compiled.permits(INGRESS, B, D, "tcp", 1)
    assert compiled.permits(INGRESS, B, A, "tcp", 1)


def test_ip_block_with_except() -> None:
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"from": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.0.0/30", "10.244.1.0/24"]}}]}]})])
    assert compiled.permits(INGRESS, B, C, "tcp", 1)          # 10.244.0.4: outside the excepts
    assert not compiled.permits(INGRESS, B, A, "tcp", 1)      # 10.244.0.2 in 10.244.0.0/30
    assert not compiled.permits(INGRESS, B, REMOTE, "tcp", 1)
    assert compiled.permits(INGRESS, B, "10.244.200.1", "udp", 1)
    assert not compiled.permits(INGRESS, B, "10.245.0.1", "udp", 1)


def test_ip_block_networks_and_a_pod_peer_inside_an_except() -> None:
    block = IPBlock(ipaddress.IPv4Network("10.0.0.0/8"),
                    (ipaddress.IPv4Network("10.1.0.0/16"), ipaddress.IPv4Network("10.1.2.0/24"),
                     ipaddress.IPv4Network("10.0.0.0/8")))
    assert block.networks() == []
    block = IPBlock(ipaddress.IPv4Network("10.0.0.0/30"), (ipaddress.IPv4Network("10.0.0.1/32"),))
    assert sorted(map(str, block.networks())) == ["10.0.0.0/32", "10.0.0.2/31"]
    # Peers are OR'ed: a pod named by a selector is allowed although an ipBlock excepts it.
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"from": [{"ipBlock": {"cidr": "10.244.0.0/24", "except": ["10.244.0.2/32"]}},
                  {"podSelector": {"matchLabels": {"app": "client"}}}]}]})])
    assert compiled.permits(INGRESS, B, A, "tcp", 1)
    # The set holds blocks and the pods outside them, disjoint, in address order.
    pods = cluster() + [pod("e", D, {"app": "client"})]
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"app": "client"}}}, {"podSelector": {}},
                  {"ipBlock": {"cidr": "10.244.0.0/30"}}, {"ipBlock": {"cidr": "10.244.0.2/31"}}]}]})], pods)
    assert compiled.peer_sets["from-default/p/0"] == ("10.244.0.0/30", D, REMOTE)   # a, b inside


def test_ipv6_ip_block_matches_nothing() -> None:
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"from": [{"ipBlock": {"cidr": "::/0"}}]}]})])
    assert not compiled.permits(INGRESS, B, A, "tcp", 1)


def test_peers_are_pods_with_an_ip_that_are_running() -> None:
    pods = cluster() + [pod("pending", None, {"access": "true"}),
                        pod("done", D, {"access": "true"}, phase="Succeeded"),
                        pod("host", "10.0.0.9", {"access": "true"}, host_network=True)]
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]})], pods)
    (name,) = compiled.peer_sets
    assert compiled.peer_sets[name] == (A,)


# -- ports --------------------------------------------------------------------------------

def test_ports_protocols_numbers_ranges_and_protocol_only() -> None:
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"ports": [{"port": 5432}, {"protocol": "UDP", "port": 53},
                   {"protocol": "SCTP", "port": 9000, "endPort": 9010},
                   {"protocol": "TCP", "port": 7000, "endPort": 7100}, {"port": 7050}]},
        {"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"protocol": "UDP"}]}]})])
    assert compiled.permits(INGRESS, B, C, "tcp", 5432) and compiled.permits(INGRESS, B, C, "TCP", 7100)
    assert not compiled.permits(INGRESS, B, C, "udp", 5432)
    assert not compiled.permits(INGRESS, B, C, "tcp", 7101)
    assert compiled.permits(INGRESS, B, C, "udp", 53) and compiled.permits(INGRESS, B, C, "sctp", 9005)
    assert not compiled.permits(INGRESS, B, C, "sctp", 9011) and not compiled.permits(INGRESS, B, C, "icmp")
    assert compiled.permits(INGRESS, B, A, "udp", 40000) and not compiled.permits(INGRESS, B, C, "udp", 40000)
    first = compiled.pods[B].ingress[0].ports  # type: ignore[index]
    assert first is not None and [(p.protocol, p.ranges) for p in first] == [
        ("sctp", ((9000, 9010),)), ("tcp", ((5432, 5432), (7000, 7100))), ("udp", ((53, 53),))]


def test_named_ports_resolve_on_each_target_pod() -> None:
    pods = cluster() + [pod("b2", D, {"app": "db"}, ports=(("http", 9090, "TCP"),))]
    compiled = compile_([policy("p", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
        {"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}]},
        {"ports": [{"port": "missing"}]}]})], pods)
    assert compiled.permits(INGRESS, B, A, "tcp", 8080) and not compiled.permits(INGRESS, B, A, "tcp", 9090)
    assert compiled.permits(INGRESS, D, A, "tcp", 9090) and not compiled.permits(INGRESS, D, A, "tcp", 8080)
    assert compiled.permits(INGRESS, B, A, "udp", 53) and not compiled.permits(INGRESS, D, A, "udp", 53)
    assert not compiled.permits(INGRESS, B, A, "tcp", 53)     # "dns" is a UDP port
    assert len(compiled.pods[B].ingress or ()) == 1           # the "missing" rule allows nothing


def test_egress_rules_with_peers_ports_and_named_ports_of_the_destination() -> None:
    compiled = compile_([policy("out", {"podSelector": {"matchLabels": {"app": "client"}},
                                        "policyTypes": ["Egress"], "egress": [
        {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": "pg"}]},
        {"to": [{"ipBlock": {"cidr": "10.244.1.0/24"}}], "ports": [{"port": "http"}]},
        {"ports": [{"protocol": "UDP", "port": 53}]}]})])
    assert compiled.permits(EGRESS, A, B, "tcp", 5432)
    assert not compiled.permits(EGRESS, A, B, "tcp", 8080)            # b's http: not via rule 0
    assert compiled.permits(EGRESS, A, REMOTE, "tcp", 80)             # r's http, inside the block
    assert not compiled.permits(EGRESS, A, "10.244.1.8", "tcp", 80)   # no pod there has "http"
    assert compiled.permits(EGRESS, A, "192.0.2.53", "udp", 53)       # no peers: any address
    assert not compiled.permits(EGRESS, A, "192.0.2.53", "tcp", 53)


def test_egress_named_port_without_peers_means_every_pod_with_that_port() -> None:
    compiled = compile_([policy("out", {"podSelector": {"matchLabels": {"app": "client"}},
                                        "policyTypes": ["Egress"],
                                        "egress": [{"ports": [{"port": "http"}]}]})])
    assert compiled.permits(EGRESS, A, B, "tcp", 8080) and compiled.permits(EGRESS, A, REMOTE, "tcp", 80)
    assert not compiled.permits(EGRESS, A, REMOTE, "tcp", 8080)


def test_merge_ranges() -> None:
    assert merge_ranges([(80, 80), (70, 90), (91, 95), (100, 100), (1, 1)]) == ((1, 1), (70, 95), (100, 100))


# -- which pods are this node's ---------------------------------------------------------

def test_only_this_nodes_pods_get_rules_and_a_reused_ip_belongs_to_the_newest_pod() -> None:
    pods = cluster() + [pod("old", B, {"app": "db"}, created="2023-01-01T00:00:00Z"),
                        pod("new", B, {"app": "web"}, created="2025-01-01T00:00:00Z")]
    compiled = compile_([policy("deny", {"podSelector": {}})], pods)
    assert REMOTE not in compiled.pods
    assert compiled.pods[B].pod == "default/new"


def test_policy_parsing_refuses_what_the_api_server_would() -> None:
    with pytest.raises(ValueError):
        parse_policy(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}))
    with pytest.raises(ValueError):
        parse_policy(policy("p", {"podSelector": {}, "ingress": [{"from": [{}]}]}))
    with pytest.raises(SelectorError):
        parse_policy(policy("p", {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}))


def test_set_names_are_short_enough_for_nft() -> None:
    assert set_name("from", "default/web", 0) == "from-default/web/0"
    long = set_name("to", "n" * 63 + "/" + "p" * 253, 3, "/named")
    assert len(long) <= 200 and long.startswith("to-nnn")
    assert long != set_name("to", "n" * 63 + "/" + "p" * 253, 4, "/named")


def test_pod_info_ignores_what_policy_does_not_read() -> None:
    before = pod("b", B, {"app": "db"}, ports=(("http", 8080, "TCP"),))
    after = {**before, "metadata": {**before["metadata"], "resourceVersion": "99",
                                    "annotations": {"x": "y"}},
             "status": {**before["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
    assert pod_info(before) == pod_info(after)
    relabelled = {**before, "metadata": {**before["metadata"], "labels": {"app": "web"}}}
    assert pod_info(before) != pod_info(relabelled)
    assert pod_info(pod("b", B, phase="Failed")) is None and pod_info(pod("b", None)) is None
