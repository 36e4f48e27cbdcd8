"""ResourceQuota and LimitRange through the real kubectl on the shared fake-runtime cluster."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from e2e_support import SkiffProcess

REPO = Path(__file__).resolve().parents[2]


def pod_manifest(name: str, cpu: str = "300m") -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "3600"],
                                 "resources": {"requests": {"cpu": cpu}}}]}})


def wait_for_used(cluster: SkiffProcess, ns: str, quota: str, resource: str, value: str) -> None:
    cluster.kubectl("wait", "-n", ns, f"resourcequota/{quota}", "--timeout=30s",
                    f"--for=jsonpath={{.status.used.{resource.replace('.', chr(92) + '.')}}}={value}")


def described_usage(cluster: SkiffProcess, ns: str, quota: str) -> dict[str, tuple[str, str]]:
    """``kubectl describe quota``'s table: resource -> (used, hard)."""
    out = cluster.kubectl("describe", "quota", quota, "-n", ns).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"Resource\s+Used\s+Hard", line))
    rows = {}
    for line in lines[start + 2:]:
        parts = line.split()
        if len(parts) == 3:
            rows[parts[0]] = (parts[1], parts[2])
    return rows


def test_the_third_pod_is_forbidden_and_describe_shows_usage(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "quota", "q", "-n", ns, "--hard=pods=2,requests.cpu=1").stdout
    assert out.strip() == "resourcequota/q created"
    wait_for_used(cluster, ns, "q", "pods", "0")  # the controller has calculated it
    for name in ("p1", "p2"):
        cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_manifest(name))
    third = cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_manifest("p3"), check=False)
    assert third.returncode == 1
    assert third.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "p3" is forbidden: '
        "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2")
    assert described_usage(cluster, ns, "q") == {"pods": ("2", "2"), "requests.cpu": ("600m", "1")}
    header, *rows = cluster.kubectl("get", "quota", "-n", ns).stdout.strip().splitlines()
    assert header.split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert rows[0].split()[2:] == ["pods:", "2/2,", "requests.cpu:", "600m/1"]

    cluster.kubectl("delete", "pod", "p1", "-n", ns, "--wait=true", "--timeout=60s")
    wait_for_used(cluster, ns, "q", "pods", "1")  # given back by the controller
    cluster.kubectl("create", "-n", ns, "-f", "-", input=pod_manifest("p3"))
    no_cpu = cluster.kubectl("run", "bare", "-n", ns, "--image=busybox", check=False)
    assert no_cpu.returncode == 1
    assert no_cpu.stderr.strip() == (
        'Error from server (Forbidden): pods "bare" is forbidden: failed quota: q: '
        "must specify requests.cpu for: bare")


def test_limit_range_defaults_appear_in_the_pod(cluster: SkiffProcess, ns: str) -> None:
    limits = json.dumps({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults"},
                         "spec": {"limits": [{"type": "Container",
                                              "defaultRequest": {"cpu": "100m", "memory": "64Mi"},
                                              "default": {"cpu": "200m", "memory": "128Mi"},
                                              "max": {"cpu": "1"}}]}})
    cluster.kubectl("create", "-n", ns, "-f", "-", input=limits)
    cluster.kubectl("run", "app", "-n", ns, "--image=busybox")
    pod = cluster.get_json("pod", "app", "-n", ns)
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container app; "
        "cpu, memory limit for container app")
    big = cluster.kubectl("run", "big", "-n", ns, "--image=busybox", "--overrides",
                          json.dumps({"spec": {"containers": [{"name": "big", "image": "busybox",
                                                               "resources": {"limits": {"cpu": "2"}}}]}}),
                          check=False)
    assert big.returncode == 1
    assert big.stderr.strip() == ('Error from server (Forbidden): pods "big" is forbidden: '
                                  "maximum cpu usage per Container is 1, but limit is 2")


def test_concurrent_creates_admit_exactly_the_quota(cluster: SkiffProcess, ns: str,
                                                    tmp_path: Path) -> None:
    cluster.kubectl("create", "quota", "four", "-n", ns, "--hard=pods=4")
    wait_for_used(cluster, ns, "four", "pods", "0")
    procs = []
    for i in range(10):
        manifest = tmp_path / f"p{i}.json"
        manifest.write_text(pod_manifest(f"p{i}", cpu="10m"))
        procs.append(cluster.kubectl_popen("create", "-n", ns, "-f", str(manifest)))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append((proc.returncode, err))
    assert sorted(code for code, _ in results) == [0] * 4 + [1] * 6
    assert all("exceeded quota: four, requested: pods=1, used: pods=4, limited: pods=4" in err
               for code, err in results if code)
    assert len(cluster.get_json("pods", "-n", ns)["items"]) == 4
    assert described_usage(cluster, ns, "four") == {"pods": ("4", "4")}


def test_the_example_namespace_gets_its_defaults_and_budget(cluster: SkiffProcess) -> None:
    example = REPO / "examples" / "quota-and-limits.yaml"
    cluster.kubectl("apply", "-f", str(example))
    try:
        cluster.kubectl("rollout", "status", "-n", "quota-demo", "deployment/web", "--timeout=60s")
        pods = cluster.get_json("pods", "-n", "quota-demo", "-l", "app=web")["items"]
        assert len(pods) == 2
        assert pods[0]["spec"]["containers"][0]["resources"] == {
            "requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}}
        wait_for_used(cluster, "quota-demo", "compute", "requests.cpu", "200m")
        assert described_usage(cluster, "quota-demo", "compute") == {
            "limits.cpu": ("500m", "2"), "limits.memory": ("256Mi", "1Gi"), "pods": ("2", "5"),
            "requests.cpu": ("200m", "1"), "requests.memory": ("128Mi", "512Mi")}
        assert described_usage(cluster, "quota-demo", "objects")["count/deployments.apps"] == ("1", "3")
    finally:
        subprocess.run(cluster.kubectl_argv("delete", "namespace", "quota-demo", "--wait=false"),
                       env=cluster.kubectl_env(), capture_output=True, timeout=60)
