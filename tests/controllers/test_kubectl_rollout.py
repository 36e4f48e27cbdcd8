"""The real kubectl's rollout commands against the in-process cluster (plain HTTP)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller_cluster import UNPULLABLE_IMAGE, Cluster
from skiff.client.resources import DEPLOYMENTS, PODS, REPLICASETS

Obj = dict[str, Any]

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  progressDeadlineSeconds: %(deadline)d
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "nginx:1.26"}]}
"""


class Kubectl:
    def __init__(self, cluster: Cluster, tmp_path: Path) -> None:
        self.kubeconfig = tmp_path / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": cluster.url}}],
            "users": [{"name": "test", "user": {}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test",
                                                      "namespace": "default"}}]}))
        self.env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(self.kubeconfig)}
        self.cache = tmp_path / "kcache"

    async def __call__(self, *args: str, stdin: str | None = None, check: bool = True,
                      timeout: float = 30) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            "kubectl", f"--cache-dir={self.cache}", *args, env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None),
                                              timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        rc = proc.returncode or 0
        if check and rc != 0:
            raise AssertionError(f"kubectl {' '.join(args)} -> {rc}\n{out.decode()}\n{err.decode()}")
        return rc, out.decode(), err.decode()


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    return Kubectl(cluster, tmp_path)


async def test_rollout_status_history_undo_restart(cluster: Cluster, kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", "-", stdin=MANIFEST % {"deadline": 600})
    _, out, _ = await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert 'deployment "web" successfully rolled out' in out

    await kubectl("set", "image", "deployment/web", "c=nginx:1.27")
    _, out, _ = await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert 'deployment "web" successfully rolled out' in out

    _, out, _ = await kubectl("rollout", "history", "deployment/web")
    revisions = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
    assert revisions == ["1", "2"]
    _, out, _ = await kubectl("rollout", "history", "deployment/web", "--revision=1")
    assert "nginx:1.26" in out

    _, out, _ = await kubectl("rollout", "undo", "deployment/web")
    assert "rolled back" in out
    await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    d = await cluster.client.get(DEPLOYMENTS, "web", namespace="default")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    _, out, _ = await kubectl("rollout", "history", "deployment/web")
    assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["2", "3"]

    _, out, _ = await kubectl("rollout", "restart", "deployment/web")
    assert "restarted" in out
    await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    sets = (await cluster.client.list(REPLICASETS, namespace="default")).items
    assert len(sets) == 3
    newest = max(sets, key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))
    assert "kubectl.kubernetes.io/restartedAt" in newest["spec"]["template"]["metadata"]["annotations"]
    assert newest["status"]["availableReplicas"] == 3


async def test_rollout_status_reports_the_progress_deadline(cluster: Cluster, kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", "-", stdin=MANIFEST % {"deadline": 2})
    await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    await kubectl("set", "image", "deployment/web", f"c={UNPULLABLE_IMAGE}")
    rc, out, err = await kubectl("rollout", "status", "deployment/web", "--timeout=20s",
                                 check=False)
    assert rc != 0
    assert 'deployment "web" exceeded its progress deadline' in err
    pods = (await cluster.client.list(PODS, namespace="default")).items
    serving = [p for p in pods if p["status"].get("phase") == "Running"
               and p["spec"]["containers"][0]["image"] == "nginx:1.26"]
    assert len(serving) == 3
    await kubectl("rollout", "undo", "deployment/web")
    _, out, _ = await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert "successfully rolled out" in out


async def test_rollout_pause_and_resume(cluster: Cluster, kubectl: Kubectl) -> None:
    await kubectl("apply", "-f", "-", stdin=MANIFEST % {"deadline": 600})
    await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    _, out, _ = await kubectl("rollout", "pause", "deployment/web")
    assert "paused" in out
    await kubectl("set", "image", "deployment/web", "c=nginx:1.27")
    deploys = await cluster.observe(DEPLOYMENTS)
    await deploys.wait_for(lambda items: items[0]["spec"]["template"]["spec"]["containers"][0][
        "image"] == "nginx:1.27" and items[0]["status"].get("observedGeneration") ==
        items[0]["metadata"]["generation"], what="paused change observed")
    sets = (await cluster.client.list(REPLICASETS, namespace="default")).items
    assert len(sets) == 1
    await kubectl("rollout", "resume", "deployment/web")
    _, out, _ = await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert "successfully rolled out" in out
    sets = (await cluster.client.list(REPLICASETS, namespace="default")).items
    assert len(sets) == 2
