"""Services and Endpoints: defaults, validation, update carry-over and table cells."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.core import services
from skiff.api.kinds.core.services import ENDPOINTS, SERVICES

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
Obj = dict[str, Any]


def svc(**spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T11:55:00Z"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def defaulted(obj: Obj) -> Obj:
    SERVICES.prepare_create(obj)
    SERVICES.default(obj)
    return obj


def errors(obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in SERVICES.validate(obj, old)]


def test_cluster_ip_defaults() -> None:
    spec = defaulted(svc())["spec"]
    assert spec == {"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                    "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                    "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}
    assert defaulted(svc())["status"] == {"loadBalancer": {}}


def test_external_service_defaults() -> None:
    spec = defaulted(svc(type="LoadBalancer", sessionAffinity="ClientIP"))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    named_target = defaulted(svc(ports=[{"port": 80, "targetPort": "http"}]))["spec"]["ports"][0]
    assert named_target["targetPort"] == "http"
    external_name = defaulted(svc(type="ExternalName", externalName="db.example.com"))["spec"]
    assert "ipFamilies" not in external_name and "internalTrafficPolicy" not in external_name
    headless = defaulted({"metadata": {"name": "h", "namespace": "d"}, "spec": {"clusterIP": "None"}})["spec"]
    assert (headless["clusterIPs"], headless["ipFamilyPolicy"]) == (["None"], "RequireDualStack")


def test_valid_services() -> None:
    assert errors(defaulted(svc())) == []
    assert errors(defaulted(svc(type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080},
                                                        {"name": "https", "port": 443}]))) == []
    assert errors(defaulted({"metadata": {"name": "h", "namespace": "d"}, "spec": {"clusterIP": "None"}})) == []


VALIDATION_CASES = [
    ("no ports", svc(ports=[]), ["spec.ports: Required value"]),
    ("port out of range", svc(ports=[{"port": 0}]),
     ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
      "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("bad protocol", svc(ports=[{"port": 80, "protocol": "HTTP"}]),
     ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("unnamed multi ports", svc(ports=[{"port": 80}, {"port": 443}]),
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    ("bad type", svc(type="Internal"),
     ['spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", '
      '"LoadBalancer", "NodePort"']),
    ("node port on cluster ip", svc(ports=[{"port": 80, "nodePort": 30000}]),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("bad selector", svc(selector={"app": "-x"}),
     ['spec.selector: Invalid value: "-x": a valid label must be an empty string or consist of alphanumeric '
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
      "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ("external name missing", svc(type="ExternalName"), ["spec.externalName: Required value"]),
    ("duplicate port", svc(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
     ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
      'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}']),
]


@pytest.mark.parametrize("case, obj, expected", VALIDATION_CASES, ids=[c[0] for c in VALIDATION_CASES])
def test_validation(case: str, obj: Obj, expected: list[str]) -> None:
    assert errors(defaulted(obj)) == expected


def test_service_names_are_dns1035_labels() -> None:
    obj = defaulted(svc())
    obj["metadata"]["name"] = "1web"
    (msg,) = errors(obj)
    assert msg.startswith('metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case')


def test_update_keeps_allocations() -> None:
    old = defaulted(svc(type="NodePort"))
    old["spec"].update({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]})
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = svc(type="NodePort")  # a client re-sending its manifest without the allocated values
    SERVICES.prepare_update(new, old)
    SERVICES.default(new)
    assert new["spec"]["clusterIP"] == "10.96.0.10" and new["spec"]["ports"][0]["nodePort"] == 30080
    assert errors(new, old) == []
    moved = copy.deepcopy(old)
    moved["spec"].update({"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"]})
    assert errors(moved, old) == ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']


def test_rows() -> None:
    obj = defaulted(svc())
    obj["spec"].update({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]})
    assert services.service_row(obj, NOW) == ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "5m",
                                              "app=web"]
    lb = defaulted(svc(type="LoadBalancer", ports=[{"name": "a", "port": 80, "nodePort": 30080},
                                                   {"name": "b", "port": 53, "protocol": "UDP", "nodePort": 30053}]))
    assert services.service_row(lb, NOW)[2:5] == ["<none>", "<pending>", "80:30080/TCP,53:30053/UDP"]
    lb["status"]["loadBalancer"]["ingress"] = [{"ip": "192.0.2.10"}, {"hostname": "lb.example.com"}]
    assert services.service_row(lb, NOW)[3] == "192.0.2.10,lb.example.com"
    ext = defaulted(svc(type="ExternalName", externalName="db.example.com", ports=[], selector=None))
    assert services.service_row(ext, NOW)[1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]
    with_external = defaulted(svc(externalIPs=["192.0.2.1", "192.0.2.2"]))
    assert services.service_row(with_external, NOW)[3] == "192.0.2.1,192.0.2.2"
    assert [c.name for c in SERVICES.columns] == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age",
                                                  "Selector"]


def test_service_discovery_facts() -> None:
    assert (SERVICES.short_names, SERVICES.categories) == (("svc",), ("all",))
    assert {s.name: s.kind for s in SERVICES.subresources} == {"proxy": "ServiceProxyOptions", "status": "Service"}


def endpoints(*subsets: Obj) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "subsets": list(subsets)}


@pytest.mark.parametrize("obj, cell", [
    (endpoints(), "<none>"),
    (endpoints({"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}), "10.0.0.1:80"),
    (endpoints({"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}), "10.0.0.1,10.0.0.2"),
    (endpoints({"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)], "ports": [{"port": 80}]}),
     "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."),
    (endpoints({"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}), "[fd00::1]:80"),
    (endpoints({"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}), ""),
])
def test_endpoints_cell(obj: Obj, cell: str) -> None:
    assert services.endpoints_row(obj, NOW) == ["web", cell, "60m"]


def test_endpoints_defaults_and_validation() -> None:
    obj = endpoints({"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]})
    ENDPOINTS.default(obj)
    assert obj["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert ENDPOINTS.validate(obj, None) == []
    bad = endpoints({"addresses": [{"ip": "nope"}], "ports": [{"port": 80, "protocol": "TCP"}]})
    assert [f"{c.field}: {c.message}" for c in ENDPOINTS.validate(bad, None)] == [
        'subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or '
        '2001:db8::ffff)']
