"""The proxy's pure parts: Services and slices -> ServicePorts -> nft programs ->
transactions. (The kernel accepts them: test_proxy_nft, test_proxy_sync.)"""

from __future__ import annotations

from typing import Any

import pytest

from skiff.proxy.rules import DROP, REJECT, Program, port_program, service_program
from skiff.proxy.serviceports import Endpoint, service_ports, usable
from skiff.proxy.table import TableSpec, full_text, transaction

Obj = dict[str, Any]
CIDR = "10.244.0.0/16"
SPEC = TableSpec(name="skiff-proxy-x", service_cidr="10.96.0.0/12")


def svc(kind: str = "ClusterIP", **spec: Any) -> Obj:
    ports = spec.pop("ports", [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080,
                                "nodePort": 30080}])
    return {"metadata": {"namespace": "ns", "name": "web"},
            "spec": {"type": kind, "clusterIP": "10.96.0.20", "ports": ports, **spec}}


def ep(ip: str, node: str = "a", **conditions: bool) -> Obj:
    return {"addresses": [ip], "nodeName": node, "conditions": conditions}


def slice_(*endpoints: Obj, ports: list[Obj] | None = None, family: str = "IPv4", name: str = "s1") -> Obj:
    return {"metadata": {"name": name}, "addressType": family,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def program(service: Obj, *slices: Obj, node: str = "a") -> Program:
    return service_program(service_ports(service, slices), node_name=node, cluster_cidr=CIDR)


def test_usable_prefers_ready_then_serving_terminating() -> None:
    ready = Endpoint("10.244.0.1", 80, "a", True, True, False)
    draining = Endpoint("10.244.0.2", 80, "a", False, True, True)
    starting = Endpoint("10.244.0.3", 80, "a", False, False, False)
    assert usable([ready, draining, starting]) == (ready,)
    assert usable([draining, starting]) == (draining,)
    assert usable([starting]) == ()


def test_unset_conditions_mean_ready_and_serving() -> None:
    (port,) = service_ports(svc(), [slice_(ep("10.244.0.1"), ep("10.244.0.2", ready=False))])
    first, second = port.endpoints
    assert (first.ready, first.serving, first.terminating) == (True, True, False)
    assert (second.ready, second.serving) == (False, False)


def test_endpoint_ports_come_from_the_slice_port_of_the_same_name_and_protocol() -> None:
    service = svc(ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                         {"name": "dns", "port": 53, "protocol": "UDP"}])
    slices = [slice_(ep("10.244.0.1"), ports=[{"name": "http", "port": 8080, "protocol": "TCP"},
                                              {"name": "dns", "port": 5353, "protocol": "TCP"}]),
              slice_(ep("10.244.0.2"), ep("10.244.0.1"), name="s2",
                     ports=[{"name": "http", "port": 9090, "protocol": "TCP"},
                            {"name": "dns", "port": 5353, "protocol": "UDP"}]),
              slice_(ep("fd00::1"), family="IPv6", name="s3",
                     ports=[{"name": "http", "port": 7070, "protocol": "TCP"}])]
    http, dns = service_ports(service, slices)
    assert [e.address for e in http.endpoints] == ["10.244.0.1:8080", "10.244.0.2:9090", "10.244.0.1:9090"]
    assert [e.address for e in dns.endpoints] == ["10.244.0.2:5353", "10.244.0.1:5353"]
    assert (http.id, dns.id) == ("ns/web/tcp/http", "ns/web/udp/dns")


def test_services_the_proxy_leaves_alone() -> None:
    assert service_ports(svc("ExternalName", externalName="example.com"), []) == []
    assert service_ports(svc(clusterIP="None"), []) == []
    other = svc()
    other["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "elsewhere"}
    assert service_ports(other, []) == []


def test_external_addresses() -> None:
    service = svc("LoadBalancer", externalIPs=["192.0.2.7", "fd00::7"])
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.8"}, {"ip": "192.0.2.9", "ipMode": "Proxy"},
                                                      {"hostname": "lb.example.com"}]}}
    (port,) = service_ports(service, [])
    assert port.external_ips == ("192.0.2.7", "192.0.2.8") and port.node_port == 30080
    (plain,) = service_ports(svc("ClusterIP"), [])
    assert plain.node_port is None and plain.external_ips == ()


def test_no_endpoints_rejects_every_address() -> None:
    service = svc("LoadBalancer", externalIPs=["192.0.2.7"])
    result = program(service, slice_(ep("10.244.0.1", ready=False)))
    assert result.chains == {} and result.service_ips == {} and result.nodeports == {}
    assert result.no_endpoint_ips == {"10.96.0.20 . tcp . 80": REJECT, "192.0.2.7 . tcp . 80": REJECT}
    assert result.no_endpoint_nodeports == {"tcp . 30080": REJECT}


def test_cluster_ip_picks_at_random_and_masquerades_outsiders() -> None:
    result = program(svc(), slice_(ep("10.244.0.1"), ep("10.244.0.2", node="b")))
    assert result.service_ips == {"10.96.0.20 . tcp . 80": "goto svc-ns/web/tcp/http"}
    assert result.chains == {"svc-ns/web/tcp/http": (
        "ip daddr 10.96.0.20 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
        "meta l4proto tcp dnat to numgen random mod 2 map { 0 : 10.244.0.1 . 8080, 1 : 10.244.0.2 . 8080 }")}
    assert result.local_ips == {"10.244.0.1"}                 # only this node's pods can hairpin
    single = program(svc(), slice_(ep("10.244.0.1")))
    assert single.chains["svc-ns/web/tcp/http"][-1] == "meta l4proto tcp dnat to 10.244.0.1:8080"


def test_node_port_with_cluster_policy_masquerades() -> None:
    result = program(svc("NodePort"), slice_(ep("10.244.0.1")))
    assert result.nodeports == {"tcp . 30080": "goto ext-ns/web/tcp/http"}
    assert result.chains["ext-ns/web/tcp/http"] == ("jump mark-for-masquerade", "goto svc-ns/web/tcp/http")


def test_external_policy_local() -> None:
    service = svc("NodePort", externalTrafficPolicy="Local")
    here = program(service, slice_(ep("10.244.0.1", node="a"), ep("10.244.0.2", node="b")))
    assert here.chains["ext-ns/web/tcp/http"] == (
        "ip saddr 10.244.0.0/16 goto svc-ns/web/tcp/http",
        "fib saddr type local jump mark-for-masquerade",
        "fib saddr type local goto svc-ns/web/tcp/http",
        "goto local-ns/web/tcp/http")
    assert here.chains["local-ns/web/tcp/http"][-1] == "meta l4proto tcp dnat to 10.244.0.1:8080"
    elsewhere = program(service, slice_(ep("10.244.0.2", node="b")))
    assert elsewhere.chains["ext-ns/web/tcp/http"][-1] == DROP
    assert "local-ns/web/tcp/http" not in elsewhere.chains


def test_internal_policy_local() -> None:
    service = svc(internalTrafficPolicy="Local")
    here = program(service, slice_(ep("10.244.0.1", node="a"), ep("10.244.0.2", node="b")))
    assert here.service_ips == {"10.96.0.20 . tcp . 80": "goto local-ns/web/tcp/http"}
    elsewhere = program(service, slice_(ep("10.244.0.2", node="b")))
    assert elsewhere.service_ips == {} and elsewhere.no_endpoint_ips == {"10.96.0.20 . tcp . 80": DROP}
    # Ready endpoints elsewhere, only a terminating one here: that one serves locally.
    draining = program(service, slice_(ep("10.244.0.2", node="b"),
                                       ep("10.244.0.1", node="a", ready=False, serving=True,
                                          terminating=True)))
    assert draining.chains["local-ns/web/tcp/http"][-1] == "meta l4proto tcp dnat to 10.244.0.1:8080"


def test_session_affinity_uses_endpoint_chains_and_sets() -> None:
    service = svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    result = program(service, slice_(ep("10.244.0.1"), ep("10.244.0.2")))
    first = "ns/web/tcp/http__10.244.0.1/8080"
    assert result.sets == {f"affinity-{first}", "affinity-ns/web/tcp/http__10.244.0.2/8080"}
    assert result.chains[f"ep-{first}"] == (f"update @affinity-{first} {{ ip saddr timeout 60s }}",
                                            "meta l4proto tcp dnat to 10.244.0.1:8080")
    rules = result.chains["svc-ns/web/tcp/http"]
    assert rules[1] == f"ip saddr @affinity-{first} goto ep-{first}"
    assert rules[-1].startswith("numgen random mod 2 vmap { 0 : goto ep-")
    default = service_ports(svc(sessionAffinity="ClientIP"), [])[0]
    assert default.affinity_timeout == 10800


def test_names_that_are_not_nft_identifiers_are_refused() -> None:
    service = svc()
    service["metadata"]["name"] = "Web Server"
    with pytest.raises(ValueError):
        port_program(service_ports(service, [slice_(ep("10.244.0.1"))])[0], node_name="a", cluster_cidr=CIDR)


def test_transaction_order_and_noop() -> None:
    before = program(svc(sessionAffinity="ClientIP"), slice_(ep("10.244.0.1"), ep("10.244.0.2")))
    after = program(svc(), slice_(ep("10.244.0.3")))
    assert transaction(SPEC, before, before).text == ""
    lines = transaction(SPEC, before, after, ["10.244.0.3"], ["10.244.0.1"]).text.splitlines()
    flush_svc = lines.index("flush chain ip skiff-proxy-x svc-ns/web/tcp/http")
    deletes = [i for i, line in enumerate(lines) if line.startswith("delete chain")]
    set_deletes = [i for i, line in enumerate(lines) if line.startswith("delete set")]
    assert len(deletes) == 2 and len(set_deletes) == 2
    # The endpoint chains go after the rules that jumped to them, their sets last.
    assert flush_svc < min(deletes) and max(deletes) < min(set_deletes) == len(lines) - 2
    assert "add element ip skiff-proxy-x hairpin { 10.244.0.3 . 10.244.0.3 }" in lines
    assert "delete element ip skiff-proxy-x hairpin { 10.244.0.1 . 10.244.0.1 }" in lines
    # A new chain exists before a map element or rule refers to it.
    grow = transaction(SPEC, Program(), program(svc("NodePort"), slice_(ep("10.244.0.1")))).text.splitlines()
    assert grow.index("add chain ip skiff-proxy-x ext-ns/web/tcp/http") < next(
        i for i, line in enumerate(grow) if "service-nodeports" in line)
    # A changed verdict: the element is deleted, then added again.
    gone = transaction(SPEC, after, program(svc(), slice_())).text.splitlines()
    assert gone.index("delete element ip skiff-proxy-x service-ips { 10.96.0.20 . tcp . 80 }") < gone.index(
        "add element ip skiff-proxy-x no-endpoint-services { 10.96.0.20 . tcp . 80 : goto reject-service }")


def test_full_text_replaces_only_its_own_table() -> None:
    text = full_text(SPEC, [program(svc(), slice_(ep("10.244.0.1")))], ["10.244.0.1"])
    first, second, third = text.splitlines()[:3]
    assert (first, second, third) == ("table ip skiff-proxy-x", "delete table ip skiff-proxy-x",
                                      "table ip skiff-proxy-x {")
    assert "fib daddr type local meta l4proto . th dport vmap @service-nodeports" in text
    limited = full_text(TableSpec(name="t", service_cidr="10.96.0.0/12", node_ips=("192.0.2.1",)), [], [])
    assert "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" in limited
    assert "elements = { 192.0.2.1 }" in limited
