"""Simulated nodes against the real API server (in-process, sqlite, plain HTTP on loopback)."""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from fake_fleet_support import Fleet, wait_for
from skiff.client.resources import LEASES, NODES, PODS
from skiff.client.rest import ApiClient

Obj = dict[str, Any]


def pod(name: str, node: str, restart: str = "Always", **annotations: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"nodeName": node, "restartPolicy": restart,
                     "containers": [{"name": "app", "image": "nginx"}]}}


def phase_is(phase: str) -> Callable[[str, Obj], bool]:
    return lambda _type, obj: (obj.get("status") or {}).get("phase") == phase


async def test_node_registers_ready_with_a_lease(client: ApiClient) -> None:
    async with Fleet(client, 1):
        node = await client.get(NODES, "skiff-node-0")
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == "skiff-node-0"
        assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
        assert node["spec"]["podCIDR"] == "10.244.0.0/24"
        status = node["status"]
        ready = {c["type"]: c for c in status["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
        assert status["capacity"]["memory"] == "8Gi" and status["allocatable"]["pods"] == "110"
        assert status["nodeInfo"]["kubeletVersion"] == "v1.32.4"
        lease = await client.get(LEASES, "skiff-node-0", namespace="kube-node-lease")
        assert lease["spec"]["holderIdentity"] == "skiff-node-0"
        assert lease["spec"]["leaseDurationSeconds"] == 40
        assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


async def test_lease_is_renewed_every_interval(client: ApiClient) -> None:
    async with Fleet(client, 2) as f:
        leases = await client.list(LEASES, namespace="kube-node-lease")
        before = {l["metadata"]["name"]: l["spec"]["renewTime"] for l in leases.items}
        f.clock.advance(15.0)  # node 0 is due at +10 s, node 1 at +15 s (spread over the interval)
        for name in ("skiff-node-0", "skiff-node-1"):
            renewed = await wait_for(
                client, LEASES, name, "kube-node-lease",
                lambda _t, o, n=name: o["spec"]["renewTime"] != before[n], leases.resource_version)
            assert renewed["spec"]["renewTime"] > before[name]


async def test_pod_bound_to_the_node_starts_running_with_a_pod_ip(client: ApiClient) -> None:
    async with Fleet(client, 3):
        start = (await client.list(PODS, namespace="default")).resource_version
        await client.create(PODS, pod("web", "skiff-node-2"), namespace="default")
        running = await wait_for(client, PODS, "web", "default", phase_is("Running"), start)
        status = running["status"]
        assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("10.244.2.0/24")
        assert status["podIPs"] == [{"ip": status["podIP"]}]
        assert status["hostIP"] == "127.128.0.3"
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions == {"PodReadyToStartContainers": "True", "Initialized": "True",
                              "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"}
        app = status["containerStatuses"][0]
        assert app["ready"] and app["started"] and "running" in app["state"]
        assert app["containerID"] == f"fake://{running['metadata']['uid']}/app"
        assert status["startTime"]


async def test_job_style_pods_complete(client: ApiClient) -> None:
    async with Fleet(client, 1) as f:
        start = (await client.list(PODS, namespace="default")).resource_version
        await client.create(PODS, pod("ok", "skiff-node-0", "Never"), namespace="default")
        await client.create(PODS, pod("bad", "skiff-node-0", "OnFailure",
                                      **{"skiff.dev/fake-exit-code": "3"}), namespace="default")
        await client.create(PODS, pod("slow", "skiff-node-0", "Never",
                                      **{"skiff.dev/fake-run-seconds": "30"}), namespace="default")
        ok = await wait_for(client, PODS, "ok", "default", phase_is("Succeeded"), start)
        assert ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
        bad = await wait_for(client, PODS, "bad", "default", phase_is("Failed"), start)
        assert bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
        slow = await wait_for(client, PODS, "slow", "default", phase_is("Running"), start)
        f.clock.advance(30.0)
        done = await wait_for(client, PODS, "slow", "default", phase_is("Succeeded"),
                              slow["metadata"]["resourceVersion"])
        assert done["status"]["podIP"] == slow["status"]["podIP"]


async def test_deleted_pod_is_finalized(client: ApiClient) -> None:
    async with Fleet(client, 1):
        start = (await client.list(PODS, namespace="default")).resource_version
        await client.create(PODS, pod("doomed", "skiff-node-0"), namespace="default")
        running = await wait_for(client, PODS, "doomed", "default", phase_is("Running"), start)
        await client.delete(PODS, "doomed", namespace="default")  # graceful, as kubectl does
        await wait_for(client, PODS, "doomed", "default", lambda t, _o: t == "DELETED",
                       running["metadata"]["resourceVersion"])


async def test_pods_of_other_nodes_are_left_alone(client: ApiClient) -> None:
    async with Fleet(client, 2) as f:
        start = (await client.list(PODS, namespace="default")).resource_version
        await client.create(PODS, pod("elsewhere", "real-node"), namespace="default")
        await client.create(PODS, pod("unscheduled", ""), namespace="default")
        await client.create(PODS, pod("mine", "skiff-node-1"), namespace="default")
        await wait_for(client, PODS, "mine", "default", phase_is("Running"), start)
        for name in ("elsewhere", "unscheduled"):
            other = await client.get(PODS, name, namespace="default")
            assert (other.get("status") or {}).get("phase") in (None, "Pending")
        assert [a.pod_count for a in f.agents] == [0, 1]


async def test_deleted_node_registers_again(client: ApiClient) -> None:
    async with Fleet(client, 1) as f:
        await client.delete(NODES, "skiff-node-0")
        await f.agents[0].post_status()
        node = await client.get(NODES, "skiff-node-0")
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"


async def test_per_node_labels_taints_and_capacity(client: ApiClient) -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    specs = {"name_prefix": "edge", "capacity": {"cpu": "16", "memory": "64Gi", "pods": "250"},
             "labels_per_node": lambda i: {"topology.kubernetes.io/zone": f"zone-{i}"},
             "taints_per_node": [[taint], []]}
    async with Fleet(client, 2, specs=specs):
        first, second = (await client.get(NODES, "edge-0")), (await client.get(NODES, "edge-1"))
        assert first["metadata"]["labels"]["topology.kubernetes.io/zone"] == "zone-0"
        assert second["metadata"]["labels"]["topology.kubernetes.io/zone"] == "zone-1"
        assert first["spec"]["taints"] == [taint] and not second["spec"].get("taints")
        assert first["status"]["allocatable"] == {"cpu": "16", "memory": "64Gi", "pods": "250"}


async def test_restarted_agent_keeps_running_pods_and_their_ips(client: ApiClient) -> None:
    async with Fleet(client, 1):
        start = (await client.list(PODS, namespace="default")).resource_version
        await client.create(PODS, pod("old", "skiff-node-0"), namespace="default")
        old = await wait_for(client, PODS, "old", "default", phase_is("Running"), start)
    async with Fleet(client, 1) as again:  # a new process: nothing remembered but the API
        await client.create(PODS, pod("new", "skiff-node-0"), namespace="default")
        new = await wait_for(client, PODS, "new", "default", phase_is("Running"),
                             old["metadata"]["resourceVersion"])
        assert new["status"]["podIP"] != old["status"]["podIP"]
        still = await client.get(PODS, "old", namespace="default")
        assert still["status"]["podIP"] == old["status"]["podIP"]
        assert still["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]  # untouched
        assert again.agents[0].pod_count == 2
