"""networking.k8s.io/v1 kinds: Ingress, IngressClass, NetworkPolicy."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.networking import INGRESSCLASSES, INGRESSES, NETWORKPOLICIES

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
META = {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-01T00:55:00Z"}


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def backend(name: str = "web", number: int = 80) -> dict[str, Any]:
    return {"service": {"name": name, "port": {"number": number}}}


def ingress(paths: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    if paths is None:
        paths = [{"path": "/", "pathType": "Prefix", "backend": backend()}]
    body: dict[str, Any] = {"rules": [{"host": "a.example.com", "http": {"paths": paths}}]}
    body.update(spec)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": dict(META), "spec": body}


def test_valid_ingress() -> None:
    assert INGRESSES.validate(ingress(), None) == []


@pytest.mark.parametrize("path, expected", [
    ({"path": "/", "backend": backend()},
     ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]),
    ({"path": "api", "pathType": "Prefix", "backend": backend()},
     ['spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path']),
    ({"path": "/a//b", "pathType": "Exact", "backend": backend()},
     ["spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"]),
    ({"path": "/x", "pathType": "Glob", "backend": backend()},
     ['spec.rules[0].http.paths[0].pathType: Unsupported value: "Glob": '
      'supported values: "Exact", "ImplementationSpecific", "Prefix"']),
    ({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {}}}},
     ["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"]),
    ({"path": "/", "pathType": "Prefix", "backend": {}},
     ['spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required']),
])
def test_ingress_path_validation(path: dict[str, Any], expected: list[str]) -> None:
    assert messages(INGRESSES.validate(ingress([path]), None)) == expected


def test_ingress_needs_rules_or_default_backend_and_dns_hosts() -> None:
    empty = ingress()
    empty["spec"] = {}
    assert messages(INGRESSES.validate(empty, None)) == [
        "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
    ip_host = ingress()
    ip_host["spec"]["rules"][0]["host"] = "10.0.0.1"
    assert messages(INGRESSES.validate(ip_host, None)) == [
        'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address']
    wildcard = ingress()
    wildcard["spec"]["rules"][0]["host"] = "*.example.com"
    assert INGRESSES.validate(wildcard, None) == []


def test_ingress_row() -> None:
    obj = ingress(ingressClassName="nginx", tls=[{"hosts": ["a.example.com"], "secretName": "tls"}])
    obj["spec"]["rules"] += [{"host": f"{c}.example.com"} for c in "bcd"]
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.5"}, {"hostname": "lb.example.com"}]}}
    assert [c.name for c in INGRESSES.columns] == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert INGRESSES.row(obj, NOW) == [
        "web", "nginx", "a.example.com,b.example.com,c.example.com + 1 more...", "10.0.0.5,lb.example.com",
        "80, 443", "5m"]
    plain = ingress()
    plain["spec"]["rules"][0].pop("host")
    assert INGRESSES.row(plain, NOW) == ["web", "<none>", "*", "", "80", "5m"]


def test_ingress_class() -> None:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
           "metadata": {"name": "nginx", "creationTimestamp": "2024-01-01T00:55:00Z"},
           "spec": {"controller": "k8s.io/ingress-nginx",
                    "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}
    INGRESSCLASSES.default(obj)
    assert obj["spec"]["parameters"]["scope"] == "Cluster"
    assert INGRESSCLASSES.validate(obj, None) == []
    assert INGRESSCLASSES.row(obj, NOW) == ["nginx", "k8s.io/ingress-nginx",
                                           "IngressParameters.k8s.example.com/p", "5m"]
    changed = {**obj, "spec": {**obj["spec"], "controller": "example.com/other"}}
    assert messages(INGRESSCLASSES.validate(changed, obj)) == [
        'spec.controller: Invalid value: "example.com/other": field is immutable']
    bad = {**obj, "spec": {"controller": "nginx"}}
    assert messages(INGRESSCLASSES.validate(bad, None)) == [
        'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")']


def policy(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": dict(META), "spec": spec}


@pytest.mark.parametrize("spec, types", [
    ({}, ["Ingress"]),
    ({"egress": [{"to": [{"podSelector": {}}]}]}, ["Ingress", "Egress"]),
    ({"policyTypes": ["Egress"]}, ["Egress"]),
])
def test_network_policy_types_default(spec: dict[str, Any], types: list[str]) -> None:
    obj = policy(**spec)
    NETWORKPOLICIES.default(obj)
    assert obj["spec"]["policyTypes"] == types
    assert obj["spec"]["podSelector"] == {}


def test_network_policy_ports_and_peers() -> None:
    obj = policy(ingress=[{"ports": [{"port": 80}], "from": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                                          "except": ["10.1.0.0/16"]}}]}])
    NETWORKPOLICIES.default(obj)
    assert obj["spec"]["ingress"][0]["ports"][0]["protocol"] == "TCP"
    assert NETWORKPOLICIES.validate(obj, None) == []
    bad = policy(ingress=[{"ports": [{"port": 70000, "protocol": "ICMP"}],
                           "from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]},
                                         "podSelector": {}}]}])
    assert messages(NETWORKPOLICIES.validate(bad, None)) == [
        'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
        "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        'spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a strict subset of `cidr`',
        "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer"]


def test_network_policy_row_and_generation() -> None:
    obj = policy(podSelector={"matchLabels": {"app": "api"}})
    NETWORKPOLICIES.prepare_create(obj)
    NETWORKPOLICIES.default(obj)
    assert obj["metadata"]["generation"] == 1
    assert NETWORKPOLICIES.row(obj, NOW) == ["web", "app=api", "5m"]
    assert NETWORKPOLICIES.row(policy(podSelector={}), NOW) == ["web", "<none>", "5m"]
    assert NETWORKPOLICIES.short_names == ("netpol",)
