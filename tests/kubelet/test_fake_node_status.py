"""Node, status and Lease objects a (fake) kubelet writes."""

from __future__ import annotations

import ipaddress

import pytest

from skiff.kubelet.node_status import (
    MAX_FAKE_NODES, NodeSpec, fake_node_ip, micro_timestamp, node_conditions, node_lease,
    node_object, pod_cidr_for, timestamp,
)

NOW = 1735689600.0  # 2025-01-01T00:00:00Z


def test_pod_cidrs_count_up_from_10_244_and_never_overlap() -> None:
    assert pod_cidr_for(0) == "10.244.0.0/24"
    assert pod_cidr_for(7) == "10.244.7.0/24"
    assert pod_cidr_for(255) == "10.244.255.0/24"
    assert pod_cidr_for(256) == "10.245.0.0/24"
    assert pod_cidr_for(3072) == "10.0.0.0/24"  # wrapped, still inside 10.0.0.0/8
    nets = [ipaddress.ip_network(pod_cidr_for(i)) for i in range(0, MAX_FAKE_NODES, 97)]
    services = ipaddress.ip_network("10.96.0.0/12")
    assert all(n.subnet_of(ipaddress.ip_network("10.0.0.0/8")) for n in nets)
    assert not any(n.overlaps(services) for n in nets)
    assert pod_cidr_for(MAX_FAKE_NODES - 1) == "10.95.255.0/24"  # the last one below 10.96.0.0/12
    assert len({pod_cidr_for(i) for i in range(5000)}) == 5000
    with pytest.raises(ValueError):
        pod_cidr_for(MAX_FAKE_NODES)


def test_fake_node_ips_are_loopback() -> None:
    ips = [ipaddress.ip_address(fake_node_ip(i)) for i in (0, 1, 4999, 70000)]
    assert str(ips[0]) == "127.128.0.1" and str(ips[1]) == "127.128.0.2"
    assert all(ip.is_loopback for ip in ips)
    assert len(set(ips)) == len(ips)


def test_timestamps() -> None:
    assert timestamp(NOW + 0.75) == "2025-01-01T00:00:00Z"
    assert micro_timestamp(NOW + 0.25) == "2025-01-01T00:00:00.250000Z"


def test_node_object_defaults() -> None:
    node = node_object(NodeSpec(name="skiff-node-3", index=3, labels={"zone": "a"},
                                taints=({"key": "k", "value": "v", "effect": "NoSchedule"},)), NOW)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "skiff-node-3"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    assert labels["zone"] == "a"
    assert node["spec"]["podCIDR"] == "10.244.3.0/24" and node["spec"]["podCIDRs"] == ["10.244.3.0/24"]
    assert node["spec"]["taints"] == [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    status = node["status"]
    assert status["capacity"]["cpu"] == "4" and status["capacity"]["memory"] == "8Gi"
    assert status["capacity"]["pods"] == "110" and status["capacity"]["ephemeral-storage"] == "100Gi"
    assert status["allocatable"] == status["capacity"]
    assert status["addresses"] == [{"type": "InternalIP", "address": "127.128.0.4"},
                                   {"type": "Hostname", "address": "skiff-node-3"}]
    info = status["nodeInfo"]
    assert (info["kubeletVersion"], info["containerRuntimeVersion"], info["architecture"],
            info["operatingSystem"]) == ("v1.32.4", "fake://0.1", "amd64", "linux")
    assert info["machineID"] and info["systemUUID"] and info["bootID"]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "KubeletReady"
    assert conditions["Ready"]["message"] == "kubelet is posting ready status"
    for type_, reason in (("MemoryPressure", "KubeletHasSufficientMemory"),
                          ("DiskPressure", "KubeletHasNoDiskPressure"),
                          ("PIDPressure", "KubeletHasSufficientPID")):
        assert (conditions[type_]["status"], conditions[type_]["reason"]) == ("False", reason)


def test_heartbeat_keeps_transition_time_until_status_flips() -> None:
    first = node_conditions(NOW)
    later = node_conditions(NOW + 60, previous=first)
    ready = {c["type"]: c for c in later}["Ready"]
    assert ready["lastHeartbeatTime"] == "2025-01-01T00:01:00Z"
    assert ready["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    not_ready = {c["type"]: c for c in node_conditions(NOW + 120, ready=False, previous=later)}["Ready"]
    assert not_ready["status"] == "False" and not_ready["lastTransitionTime"] == "2025-01-01T00:02:00Z"


def test_lease_is_owned_by_its_node() -> None:
    lease = node_lease("n1", "uid-1", NOW)
    assert lease["metadata"] == {"name": "n1", "namespace": "kube-node-lease", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-1"}]}
    assert lease["spec"] == {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                             "renewTime": "2025-01-01T00:00:00.000000Z"}
