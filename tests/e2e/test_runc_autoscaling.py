"""kubectl top and the horizontal pod autoscaler, on real containers burning real CPU.

Runs on the session's runc cluster (conftest.py ``runc_node``), which scrapes the kubelet
every second and evaluates HPAs every second (``--metric-resolution 1s
--horizontal-pod-autoscaler-sync-period 1s``), so a test sees in seconds what a default
cluster shows within ~30 s.  CPU figures are read from the containers' cgroups: a busy
loop under a 200m CPU limit uses about 200m.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from e2e_support import LineReader, SkiffProcess, await_condition, table

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]
BUSY = "while :; do :; done"


@pytest.fixture
def node(runc_node: SkiffProcess) -> SkiffProcess:
    return runc_node


def container(name: str, script: str, cpu_request: str = "100m", cpu_limit: str = "200m") -> Obj:
    return {"name": name, "image": "busybox", "imagePullPolicy": "Never", "command": ["sh", "-c", script],
            "resources": {"requests": {"cpu": cpu_request}, "limits": {"cpu": cpu_limit}}}


def apply(node: SkiffProcess, *docs: Obj) -> None:
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def millicores(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def top(node: SkiffProcess, *args: str) -> list[list[str]] | None:
    """kubectl top's rows, or None while the metrics are not there yet."""
    result = node.kubectl("top", *args, check=False)
    if result.returncode != 0:
        assert "metrics not available yet" in result.stderr or "not found" in result.stderr, result.stderr
        return None
    return table(result.stdout)[1]


def test_kubectl_top_shows_what_nodes_and_containers_use(node: SkiffProcess) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "top-burner", "labels": {"app": "top-burner"}},
           "spec": {"terminationGracePeriodSeconds": 0,
                    "containers": [container("burn", BUSY), container("idle", "sleep 3600")]}}
    quiet = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "top-quiet", "labels": {"app": "top-quiet"}},
             "spec": {"terminationGracePeriodSeconds": 0, "containers": [container("idle", "sleep 3600")]}}
    apply(node, pod, quiet)
    try:
        node.kubectl("wait", "--for=condition=Ready", "pod/top-burner", "pod/top-quiet", "--timeout=60s")
        rows: list[list[str]] = []

        def measured() -> bool:
            nonlocal rows
            rows = top(node, "pod", "top-burner", "--containers") or []
            return len(rows) == 2

        await_condition(measured, "metrics of pod top-burner")
        usage = {row[1]: millicores(row[2]) for row in rows}       # POD NAME CPU(cores) MEMORY(bytes)
        assert 120 <= usage["burn"] <= 260, usage                   # held to its 200m limit
        assert usage["idle"] <= 20, usage

        await_condition(lambda: bool(top(node, "pod", "-l", "app=top-quiet")), "metrics of pod top-quiet")
        selected = top(node, "pod", "-l", "app=top-quiet") or []
        assert [row[0] for row in selected] == ["top-quiet"]

        await_condition(lambda: bool(top(node, "node")), "metrics of the node")
        [node_row] = top(node, "node") or []
        assert node_row[0] == "skiff-node-0"
        assert millicores(node_row[1]) >= 120                       # the burner at least
        assert node_row[2].endswith("%") and node_row[4].endswith("%")

        raw = json.loads(node.kubectl("get", "--raw",
                                      "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/top-burner").stdout)
        assert raw["kind"] == "PodMetrics" and raw["metadata"]["labels"] == {"app": "top-burner"}
        assert raw["window"].endswith("s") and raw["timestamp"].endswith("Z")
        assert sorted(c["name"] for c in raw["containers"]) == ["burn", "idle"]
    finally:
        node.kubectl("delete", "pod", "top-burner", "top-quiet", "--wait=false", check=False)


def test_an_hpa_scales_a_busy_deployment_up_and_an_idle_one_down(node: SkiffProcess) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hpa-burn"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hpa-burn"}},
                           "template": {"metadata": {"labels": {"app": "hpa-burn"}},
                                        "spec": {"terminationGracePeriodSeconds": 0,
                                                 "containers": [container("burn", BUSY)]}}}}
    apply(node, deployment)
    watch = LineReader(node.kubectl_popen("get", "deployment", "hpa-burn", "--watch", "--no-headers",
                                          "-o", "custom-columns=R:.spec.replicas"))
    try:
        node.kubectl("rollout", "status", "deployment/hpa-burn", "--timeout=60s")
        # one pod at ~200 % of its 100m request against a 50 % target wants 4; the maximum is 3
        node.kubectl("autoscale", "deployment", "hpa-burn", "--cpu-percent=50", "--min=1", "--max=3")
        watch.wait_for(lambda line: line.strip() == "3", timeout=60)
        node.kubectl("rollout", "status", "deployment/hpa-burn", "--timeout=60s")

        def limited() -> bool:
            hpa = node.get_json("hpa", "hpa-burn")
            conditions = {c["type"]: c for c in hpa["status"].get("conditions") or []}
            return conditions.get("ScalingLimited", {}).get("reason") == "TooManyReplicas"

        await_condition(limited, "ScalingLimited TooManyReplicas")
        header, rows = table(node.kubectl("get", "hpa", "hpa-burn").stdout)
        assert header[:3] == ["NAME", "REFERENCE", "TARGETS"]
        assert rows[0][1] == "Deployment/hpa-burn" and rows[0][2].endswith("/50%"), rows
        described = node.kubectl("describe", "hpa", "hpa-burn").stdout
        assert "SuccessfulRescale" in described and "New size: 3" in described

        # the pods go idle (a new template, so a rollout); scale-down waits out a 3 s window
        node.kubectl("patch", "hpa", "hpa-burn", "--type=merge", "-p",
                     json.dumps({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 3}}}}))
        idle = container("burn", "sleep 3600")
        node.kubectl("patch", "deployment", "hpa-burn", "--type=strategic", "-p",
                     json.dumps({"spec": {"template": {"spec": {"containers": [idle]}}}}))
        watch.wait_for(lambda line: line.strip() == "1", timeout=90)
        hpa = node.get_json("hpa", "hpa-burn")
        assert hpa["status"]["desiredReplicas"] == 1
        assert "All metrics below target" in node.kubectl("describe", "hpa", "hpa-burn").stdout
    finally:
        watch.stop()
        node.kubectl("delete", "hpa", "hpa-burn", "--wait=false", check=False)
        node.kubectl("delete", "deployment", "hpa-burn", "--wait=false", check=False)
