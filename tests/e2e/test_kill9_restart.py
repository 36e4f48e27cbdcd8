"""Durability: what the API server acknowledged survives a crash (SIGKILL) and a restart.

A writer thread creates ConfigMaps through the official client and records every
create the server acknowledged (201).  The whole `skiff up` process group is killed
with SIGKILL mid-stream, restarted on the same data dir, and every acknowledged object
must be there with the same uid and data.  Writes in flight at the kill may or may not
have landed; they are not checked.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client

from e2e_support import SkiffProcess

BEFORE_KILL = 60  # acknowledged creates to wait for before the kill


class Writer(threading.Thread):
    def __init__(self, cluster: SkiffProcess, namespace: str) -> None:
        super().__init__(daemon=True, name="e2e-writer")
        self.cluster = cluster
        self.namespace = namespace
        self.acked: dict[str, tuple[str, dict[str, str]]] = {}  # name -> (uid, data)
        self.enough = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        with self.cluster.api_client() as api:
            core = client.CoreV1Api(api)
            i = 0
            while True:
                name = f"durable-{i:05d}"
                data = {"i": str(i), "payload": f"{i:05d}-" + "x" * (i % 97)}
                try:
                    created = core.create_namespaced_config_map(
                        self.namespace,
                        client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data),
                        _request_timeout=10)
                except Exception as exc:  # the kill: connection refused/reset
                    self.error = exc
                    self.enough.set()
                    return
                self.acked[name] = (created.metadata.uid, data)
                if len(self.acked) >= BEFORE_KILL:
                    self.enough.set()
                i += 1


def _all_configmaps(cluster: SkiffProcess, namespace: str) -> dict[str, Any]:
    with cluster.api_client() as api:
        items = client.CoreV1Api(api).list_namespaced_config_map(namespace).items
    return {cm.metadata.name: cm for cm in items}


def test_acknowledged_writes_survive_sigkill(start_cluster: Any) -> None:
    cluster = start_cluster()
    cluster.kubectl("create", "namespace", "durable")
    writer = Writer(cluster, "durable")
    writer.start()
    assert writer.enough.wait(timeout=60), "the writer made no progress"
    assert writer.error is None, f"writes failed before the kill: {writer.error!r}"

    cluster.kill()  # SIGKILL the process group while the writer is still writing
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert writer.error is not None, "the writer should have seen the server die"
    acked = dict(writer.acked)
    assert len(acked) >= BEFORE_KILL

    cluster.start()
    stored = _all_configmaps(cluster, "durable")
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged objects lost, e.g. {missing[:5]}"
    for name, (uid, data) in acked.items():
        assert stored[name].metadata.uid == uid, name
        assert stored[name].data == data, name

    # The restarted server keeps working: reads, writes and the revision move on.
    out = cluster.kubectl("create", "configmap", "after-restart", "-n", "durable",
                          "--from-literal=k=v").stdout.strip()
    assert out == "configmap/after-restart created"
    rv_after = int(cluster.get_json("configmap", "after-restart", "-n", "durable")
                   ["metadata"]["resourceVersion"])
    assert rv_after > max(int(cm.metadata.resource_version) for cm in stored.values())


def test_clean_restart_keeps_every_kind_of_object(start_cluster: Any) -> None:
    cluster = start_cluster()
    cluster.kubectl("create", "namespace", "keep")
    cluster.kubectl("create", "deployment", "web", "-n", "keep", "--image=busybox", "--replicas=2")
    cluster.kubectl("create", "secret", "generic", "s", "-n", "keep", "--from-literal=p=q")
    before = {kind: cluster.get_json(kind, name, "-n", "keep")
              for kind, name in (("deployment", "web"), ("secret", "s"), ("namespace", "keep"))}

    cluster.restart()  # SIGTERM, then the same data dir
    for kind, name in (("deployment", "web"), ("secret", "s"), ("namespace", "keep")):
        after = cluster.get_json(kind, name, "-n", "keep")
        assert after["metadata"]["uid"] == before[kind]["metadata"]["uid"]
        assert after["metadata"]["creationTimestamp"] == before[kind]["metadata"]["creationTimestamp"]
        assert after.get("spec") == before[kind].get("spec")
        assert after.get("data") == before[kind].get("data")
