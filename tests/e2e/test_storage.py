"""Persistent storage through the real kubectl: binding, provisioning, reclaiming, protection.

One private ``skiff up --runtime fake --nodes 2`` for the module (the storage controllers
run in every ``skiff up``; the default class ``standard`` is created at start).  Waiting
is done with ``kubectl wait`` (jsonpath conditions, ``--for=delete``), never with sleeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from e2e_support import REPO, SkiffProcess, new_base, table

WAIT = "--timeout=30s"


@pytest.fixture(scope="module")
def cluster() -> Iterator[SkiffProcess]:
    proc = SkiffProcess(new_base("storage"), nodes=2)
    try:
        proc.start()
        # The provisioner creates the default class once the controllers have started.
        proc.kubectl("wait", "--for=create", "storageclass/standard", WAIT)
        yield proc
    finally:
        proc.remove()


def apply(cluster: SkiffProcess, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest)


def wait_phase(cluster: SkiffProcess, what: str, phase: str) -> None:
    cluster.kubectl("wait", what, f"--for=jsonpath={{.status.phase}}={phase}", WAIT)


def claim(name: str, size: str = "1Gi", extra: str = "") -> str:
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: {size}}}}}
{extra}"""


def user(name: str, claim_name: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim_name}}}
"""


def static_volume(name: str, path: str, size: str, policy: str, labels: str = "{}") -> str:
    return f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}, labels: {labels}}}
spec:
  capacity: {{storage: {size}}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: {policy}
  storageClassName: manual
  hostPath: {{path: {path}}}
"""


def get(cluster: SkiffProcess, *args: str) -> Any:
    return cluster.get_json(*args)


def test_default_class_claim_and_pod_are_bound_on_the_pods_node(cluster: SkiffProcess) -> None:
    header, rows = table(cluster.kubectl("get", "storageclass").stdout)
    assert header[:4] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE"]
    assert ["standard (default)", "skiff.dev/local-path", "Delete", "WaitForFirstConsumer"] in [r[:4] for r in rows]
    apply(cluster, claim("web-data"))
    assert get(cluster, "pvc", "web-data")["spec"]["storageClassName"] == "standard"
    apply(cluster, user("web", "web-data"))
    wait_phase(cluster, "pvc/web-data", "Bound")
    cluster.kubectl("wait", "pod/web", "--for=condition=Ready", WAIT)
    pvc, pod = get(cluster, "pvc", "web-data"), get(cluster, "pod", "web")
    node = pod["spec"]["nodeName"]
    assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    pv = get(cluster, "pv", pvc["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["name"] == "web-data"
    [term] = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]
    directory = Path(pv["spec"]["hostPath"]["path"])
    assert directory.name == f"pvc-{pvc['metadata']['uid']}" and directory.is_dir()
    header, rows = table(cluster.kubectl("get", "pvc", "web-data").stdout)
    assert dict(zip(header, rows[0])) | {"AGE": ""} == {
        "NAME": "web-data", "STATUS": "Bound", "VOLUME": pv["metadata"]["name"], "CAPACITY": "1Gi",
        "ACCESS MODES": "RWO", "STORAGECLASS": "standard", "VOLUMEATTRIBUTESCLASS": "<unset>", "AGE": ""}
    # pvc-protection: the claim outlives its deletion while the pod uses it.
    cluster.kubectl("delete", "pvc", "web-data", "--wait=false")
    header, rows = table(cluster.kubectl("get", "pvc", "web-data").stdout)
    assert rows[0][header.index("STATUS")] == "Terminating"
    assert "Used By:       web" in cluster.kubectl("describe", "pvc", "web-data").stdout
    cluster.kubectl("delete", "pod", "web", "--grace-period=0", "--force")
    cluster.kubectl("wait", "pvc/web-data", "--for=delete", WAIT)
    cluster.kubectl("wait", f"pv/{pv['metadata']['name']}", "--for=delete", WAIT)   # Delete policy
    assert not directory.exists()


def test_statefulset_claims_one_bound_volume_per_ordinal(cluster: SkiffProcess) -> None:
    apply(cluster, """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - {name: db, image: busybox, volumeMounts: [{name: data, mountPath: /var/lib/db}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 2Gi}}}
""")
    cluster.kubectl("rollout", "status", "statefulset/db", WAIT)
    for ordinal in (0, 1):
        wait_phase(cluster, f"pvc/data-db-{ordinal}", "Bound")
        pvc = get(cluster, "pvc", f"data-db-{ordinal}")
        assert pvc["status"]["capacity"] == {"storage": "2Gi"}
        pv = get(cluster, "pv", pvc["spec"]["volumeName"])
        node = get(cluster, "pod", f"db-{ordinal}")["spec"]["nodeName"]
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [node]


def test_static_volume_by_selector_then_retain_leaves_it_released(cluster: SkiffProcess) -> None:
    base = cluster.base
    apply(cluster, static_volume("pv-gold", str(base / "gold"), "5Gi", "Retain", "{tier: gold}")
          + "---" + static_volume("pv-silver", str(base / "silver"), "1Gi", "Retain", "{tier: silver}"))
    wait_phase(cluster, "pv/pv-gold", "Available")
    apply(cluster, claim("picky", "1Gi", "  storageClassName: manual\n  selector: {matchLabels: {tier: gold}}"))
    wait_phase(cluster, "pvc/picky", "Bound")
    assert get(cluster, "pvc", "picky")["spec"]["volumeName"] == "pv-gold"
    header, rows = table(cluster.kubectl("get", "pv", "pv-gold").stdout)
    row = dict(zip(header, rows[0]))
    assert (row["STATUS"], row["CLAIM"], row["RECLAIM POLICY"]) == ("Bound", "default/picky", "Retain")
    cluster.kubectl("delete", "pvc", "picky")
    wait_phase(cluster, "pv/pv-gold", "Released")
    assert get(cluster, "pv", "pv-silver")["status"]["phase"] == "Available"


def test_the_storage_example_runs(cluster: SkiffProcess) -> None:
    cluster.kubectl("create", "namespace", "example")
    cluster.kubectl("apply", "-n", "example", "-f", str(REPO / "examples" / "storage.yaml"))
    cluster.kubectl("wait", "-n", "example", "pod/notes-writer", "--for=condition=Ready", WAIT)
    cluster.kubectl("wait", "-n", "example", "pvc/notes", "--for=jsonpath={.status.phase}=Bound", WAIT)
    events = cluster.kubectl("describe", "-n", "example", "pvc", "notes").stdout.split("Events:", 1)[1]
    for reason in ("ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"):
        assert reason in events
