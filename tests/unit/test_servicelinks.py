"""Service-link environment variables, named exactly as the kubelet names them."""

from __future__ import annotations

from typing import Any

from skiff.kubelet.servicelinks import env_name, service_env

Obj = dict[str, Any]


def svc(name: str, ip: str, ports: list[Obj], namespace: str = "default") -> Obj:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": ip, "ports": ports}}


KUBERNETES = svc("kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])


def as_dict(env: list[dict[str, str]]) -> dict[str, str]:
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)), "duplicate variable names"
    return {e["name"]: e["value"] for e in env}


def test_one_service_with_named_ports_in_kubelet_order() -> None:
    redis = svc("redis-primary", "10.0.0.11", [
        {"name": "redis", "port": 6379, "protocol": "TCP"},
        {"name": "metrics-udp", "port": 9121, "protocol": "UDP"}], namespace="app")
    env = service_env([redis], "app")
    assert env == [
        {"name": "REDIS_PRIMARY_SERVICE_HOST", "value": "10.0.0.11"},
        {"name": "REDIS_PRIMARY_SERVICE_PORT", "value": "6379"},
        {"name": "REDIS_PRIMARY_SERVICE_PORT_REDIS", "value": "6379"},
        {"name": "REDIS_PRIMARY_SERVICE_PORT_METRICS_UDP", "value": "9121"},
        {"name": "REDIS_PRIMARY_PORT", "value": "tcp://10.0.0.11:6379"},
        {"name": "REDIS_PRIMARY_PORT_6379_TCP", "value": "tcp://10.0.0.11:6379"},
        {"name": "REDIS_PRIMARY_PORT_6379_TCP_PROTO", "value": "tcp"},
        {"name": "REDIS_PRIMARY_PORT_6379_TCP_PORT", "value": "6379"},
        {"name": "REDIS_PRIMARY_PORT_6379_TCP_ADDR", "value": "10.0.0.11"},
        {"name": "REDIS_PRIMARY_PORT_9121_UDP", "value": "udp://10.0.0.11:9121"},
        {"name": "REDIS_PRIMARY_PORT_9121_UDP_PROTO", "value": "udp"},
        {"name": "REDIS_PRIMARY_PORT_9121_UDP_PORT", "value": "9121"},
        {"name": "REDIS_PRIMARY_PORT_9121_UDP_ADDR", "value": "10.0.0.11"},
    ]


def test_unnamed_single_port_and_default_protocol() -> None:
    env = as_dict(service_env([svc("web", "10.0.0.5", [{"port": 80}])], "default"))
    assert env == {
        "WEB_SERVICE_HOST": "10.0.0.5", "WEB_SERVICE_PORT": "80",
        "WEB_PORT": "tcp://10.0.0.5:80", "WEB_PORT_80_TCP": "tcp://10.0.0.5:80",
        "WEB_PORT_80_TCP_PROTO": "tcp", "WEB_PORT_80_TCP_PORT": "80",
        "WEB_PORT_80_TCP_ADDR": "10.0.0.5"}


def test_kubernetes_service_always_there_others_only_with_links() -> None:
    mine = svc("api", "10.0.0.7", [{"port": 8080}], namespace="team")
    other_ns = svc("elsewhere", "10.0.0.8", [{"port": 1}], namespace="other")
    with_links = as_dict(service_env([KUBERNETES, mine, other_ns], "team"))
    assert with_links["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert with_links["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert with_links["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    assert with_links["API_SERVICE_HOST"] == "10.0.0.7"
    assert not any(k.startswith("ELSEWHERE") for k in with_links)
    without = as_dict(service_env([KUBERNETES, mine, other_ns], "team",
                                  enable_service_links=False))
    assert {k.split("_")[0] for k in without} == {"KUBERNETES"}
    # In the default namespace too, the API server's Service stays without links.
    web = svc("web", "10.0.0.5", [{"port": 80}])
    assert {k.split("_")[0] for k in as_dict(
        service_env([web, KUBERNETES], "default", False))} == {"KUBERNETES"}


def test_headless_and_external_name_services_are_skipped() -> None:
    headless = svc("db", "None", [{"port": 5432}])
    external = {"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.org"}}
    assert service_env([headless, external], "default") == []


def test_namespace_service_named_kubernetes_wins() -> None:
    own = svc("kubernetes", "10.0.0.99", [{"port": 80}], namespace="team")
    for order in ([KUBERNETES, own], [own, KUBERNETES]):
        env = as_dict(service_env(order, "team"))
        assert env["KUBERNETES_SERVICE_HOST"] == "10.0.0.99"


def test_ipv6_cluster_ip_is_bracketed_in_urls() -> None:
    env = as_dict(service_env([svc("v6", "fd00::10", [{"port": 80}])], "default"))
    assert env["V6_PORT"] == "tcp://[fd00::10]:80"
    assert env["V6_PORT_80_TCP_ADDR"] == "fd00::10"


def test_names() -> None:
    assert env_name("my-svc-2") == "MY_SVC_2"
    assert env_name("a") == "A"
