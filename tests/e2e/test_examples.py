"""Every manifest under examples/ stays something a user can apply as it is."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from e2e_support import SkiffProcess, table

REPO = Path(__file__).resolve().parents[2]


def _namespace_free_manifest(path: Path) -> bool:
    """Manifests applied into a test namespace (web-app.yaml brings its own: test_apply)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return all("kind" in d and d["kind"] not in ("KubeSchedulerConfiguration", "Namespace")
               and "namespace" not in d.get("metadata", {}) for d in docs)


MANIFESTS = sorted(p for p in (REPO / "examples").glob("*.yaml") if _namespace_free_manifest(p))

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_example_applies_with_server_validation(cluster: SkiffProcess, ns: str, manifest: Path) -> None:
    res = cluster.kubectl("apply", "--dry-run=server", "-n", ns, "-f", str(manifest))
    assert res.returncode == 0
    assert all(line.endswith("(server dry run)") for line in res.stdout.strip().splitlines())


def test_binpack_profile_packs_pods_onto_one_node(start_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = start_cluster("--scheduler-config", str(REPO / "examples" / "scheduler-binpack.yaml"),
                            nodes=3)
    cluster.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=6")
    cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    header, rows = table(cluster.kubectl("get", "pods", "-o", "wide").stdout)
    nodes = {row[header.index("NODE")] for row in rows}
    assert len(rows) == 6 and len(nodes) == 1


def test_node_config_example_gives_zoned_nodes_and_a_tainted_gpu_node(start_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = start_cluster("--node-config", str(REPO / "examples" / "nodes-gpu-zones.yaml"), nodes=4)
    deadline = time.monotonic() + 30
    while len(nodes := {n["metadata"]["name"]: n for n in cluster.get_json("nodes")["items"]}) < 4:
        assert time.monotonic() < deadline, f"only {sorted(nodes)} registered"
    assert sorted(nodes) == ["gpu-0", "skiff-node-0", "skiff-node-1", "skiff-node-2"]
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for name, n in nodes.items()
             if name.startswith("skiff-node")}
    assert zones == {"zone-a", "zone-b", "zone-c"}
    gpu = nodes["gpu-0"]
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "2"
    assert gpu["spec"]["taints"][0]["key"] == "nvidia.com/gpu"
