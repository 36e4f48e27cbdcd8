"""Configuration into containers on a real node: env, ConfigMap/Secret/downwardAPI/projected
volumes (updated in place), emptyDir, hostPath, subPath, persistentVolumeClaim."""

from __future__ import annotations

import asyncio
import base64

from kubelet_support import Node, container, pod, running, state, wait_event, wait_pod

from skiff.client.resources import CONFIGMAPS, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, SECRETS
from skiff.client.rest import ApiClient


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def run_in(node: Node, pod_obj: dict, name: str, *argv: str) -> str:
    assert node.kubelet is not None
    container_id = state(pod_obj, name)["containerID"].removeprefix("runc://")
    result = await node.kubelet.runtime.exec_sync(container_id, list(argv))
    assert result.exit_code == 0, result
    return result.stdout.decode()


async def objects(client: ApiClient) -> None:
    await client.create(CONFIGMAPS, {"metadata": {"name": "settings"},
                                     "data": {"color": "blue", "size": "XL"}},
                        namespace="default")
    await client.create(SECRETS, {"metadata": {"name": "creds"}, "data": {"password": b64("s3cret")}},
                        namespace="default")


async def test_env_from_config_maps_secrets_fields_and_expansion(node: Node) -> None:
    client = node.client
    await objects(client)
    env = [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
           {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
           {"name": "MEMORY", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                 "divisor": "1Mi"}}},
           {"name": "GREETING", "value": "$(COLOR) $(POD_NAME) $(MISSING) $$(COLOR)"}]
    main = container("main", "sleep 3600", env=env,
                     envFrom=[{"prefix": "CFG_", "configMapRef": {"name": "settings"}}],
                     resources={"limits": {"memory": "64Mi"}})
    main["command"] = ["sh", "-c", "echo \"$1\" > /tmp/args; sleep 3600"]
    main["args"] = ["sh", "$(GREETING) in $(POD_NAME)"]
    await client.create(PODS, pod("env", main), namespace="default")
    up = await wait_pod(client, "env", running())
    values = dict(line.split("=", 1) for line in (await run_in(node, up, "main", "env")).splitlines()
                  if "=" in line)
    assert values["COLOR"] == "blue" and values["PASSWORD"] == "s3cret"
    assert values["POD_NAME"] == "env" and values["POD_IP"] == up["status"]["podIP"]
    assert values["MEMORY"] == "64"
    assert values["GREETING"] == "blue env $(MISSING) $(COLOR)"
    assert values["CFG_color"] == "blue" and values["CFG_size"] == "XL"
    assert values["KUBERNETES_SERVICE_HOST"]        # the API server's service link
    assert (await run_in(node, up, "main", "cat", "/tmp/args")) == "blue env $(MISSING) $(COLOR) in env\n"


async def test_missing_config_map_is_a_config_error_until_it_exists(node: Node) -> None:
    client = node.client
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "x"}}}]
    await client.create(PODS, pod("later", container("main", "sleep 3600", env=env)), namespace="default")
    waiting = await wait_pod(client, "later", lambda p: state(p, "main").get("state", {}).get(
        "waiting", {}).get("reason") == "CreateContainerConfigError")
    assert state(waiting, "main")["state"]["waiting"]["message"] == 'configmap "later" not found'
    await client.create(CONFIGMAPS, {"metadata": {"name": "later"}, "data": {"x": "1"}}, namespace="default")
    await wait_pod(client, "later", running())


async def test_config_map_volume_is_updated_in_place(node: Node) -> None:
    client = node.client
    await objects(client)
    mounts = [{"name": "cfg", "mountPath": "/etc/cfg"},
              {"name": "picked", "mountPath": "/etc/picked"}]
    volumes = [{"name": "cfg", "configMap": {"name": "settings"}},
               {"name": "picked", "configMap": {"name": "settings", "defaultMode": 0o600,
                                                "items": [{"key": "size", "path": "nested/size.txt"}]}}]
    await client.create(PODS, pod("cm", container("main", "sleep 3600", volumeMounts=mounts), volumes=volumes),
                        namespace="default")
    up = await wait_pod(client, "cm", running())
    assert await run_in(node, up, "main", "cat", "/etc/cfg/color") == "blue"
    assert await run_in(node, up, "main", "cat", "/etc/picked/nested/size.txt") == "XL"
    assert (await run_in(node, up, "main", "stat", "-L", "-c", "%a", "/etc/picked/nested/size.txt")).strip() == "600"
    current = await client.get(CONFIGMAPS, "settings", namespace="default")
    current["data"]["color"] = "green"
    await client.update(CONFIGMAPS, current)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await run_in(node, up, "main", "cat", "/etc/cfg/color") != "green":
        assert loop.time() < deadline, "the ConfigMap change never reached the container"
        await asyncio.sleep(0.1)
    listing = await run_in(node, up, "main", "ls", "-a", "/etc/cfg")
    assert "..data" in listing.split()


async def test_secret_volume_lives_on_tmpfs(node: Node) -> None:
    client = node.client
    await objects(client)
    mounts = [{"name": "secret", "mountPath": "/etc/secret"}]
    volumes = [{"name": "secret", "secret": {"secretName": "creds"}}]
    await client.create(PODS, pod("sec", container("main", "sleep 3600", volumeMounts=mounts), volumes=volumes),
                        namespace="default")
    up = await wait_pod(client, "sec", running())
    assert await run_in(node, up, "main", "cat", "/etc/secret/password") == "s3cret"
    mounts_text = await run_in(node, up, "main", "cat", "/proc/mounts")
    line = next(l for l in mounts_text.splitlines() if " /etc/secret " in l)
    assert line.split()[2] == "tmpfs" and " ro," in f" {line.split()[3]},"
    assert node.kubelet is not None
    on_host = node.kubelet.config.pods_dir / up["metadata"]["uid"] / "volumes" / "kubernetes.io~secret" / "secret"
    assert any(l.split()[1] == str(on_host) and l.split()[2] == "tmpfs"
               for l in open("/proc/self/mounts").read().splitlines())


async def test_empty_dir_is_shared_and_memory_medium_is_tmpfs(node: Node) -> None:
    client = node.client
    mounts = [{"name": "shared", "mountPath": "/shared"}, {"name": "ram", "mountPath": "/ram"}]
    writer = container("writer", "echo from-writer > /shared/note; sleep 3600", volumeMounts=mounts)
    reader = container("reader", "sleep 3600", volumeMounts=mounts)
    volumes = [{"name": "shared", "emptyDir": {}},
               {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]
    await client.create(PODS, pod("share", writer, reader, volumes=volumes), namespace="default")
    up = await wait_pod(client, "share", running())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while "from-writer" not in await run_in(node, up, "reader", "sh", "-c", "cat /shared/note || true"):
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    mount = next(l for l in (await run_in(node, up, "reader", "cat", "/proc/mounts")).splitlines()
                 if " /ram " in l)
    assert mount.split()[2] == "tmpfs" and "size=8192k" in mount


async def test_downward_api_projected_host_path_sub_path_and_claims(node: Node) -> None:
    client = node.client
    await objects(client)
    data = node.root / "pv-data"
    data.mkdir(parents=True)
    (data / "hello").write_text("from the volume\n")
    await client.create(PERSISTENTVOLUMES, {"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": str(data)}, "claimRef": {"namespace": "default", "name": "claim"}}})
    claim = await client.create(PERSISTENTVOLUMECLAIMS, {"metadata": {"name": "claim"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
        "volumeName": "pv1"}}, namespace="default")
    claim["status"] = {"phase": "Bound"}
    await client.update(PERSISTENTVOLUMECLAIMS, claim, subresource="status")
    mounts = [{"name": "info", "mountPath": "/info"},
              {"name": "all", "mountPath": "/all"},
              {"name": "host", "mountPath": "/host", "readOnly": True},
              {"name": "cfg", "mountPath": "/color.txt", "subPath": "color"},
              {"name": "claim", "mountPath": "/data"}]
    volumes = [
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "all", "projected": {"sources": [
            {"configMap": {"name": "settings", "items": [{"key": "size", "path": "size"}]}},
            {"secret": {"name": "creds"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            {"serviceAccountToken": {"path": "token"}}]}},
        {"name": "host", "hostPath": {"path": str(node.root / "hostdir"), "type": "DirectoryOrCreate"}},
        {"name": "cfg", "configMap": {"name": "settings"}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "claim"}}]
    spec = pod("mix", container("main", "sleep 3600", volumeMounts=mounts), volumes=volumes)
    spec["metadata"]["labels"] = {"app": "mix", "tier": "web"}
    await client.create(PODS, spec, namespace="default")
    up = await wait_pod(client, "mix", running())
    assert await run_in(node, up, "main", "cat", "/info/labels") == 'app="mix"\ntier="web"'
    assert await run_in(node, up, "main", "cat", "/info/name") == "mix"
    assert await run_in(node, up, "main", "cat", "/all/size") == "XL"
    assert await run_in(node, up, "main", "cat", "/all/password") == "s3cret"
    assert await run_in(node, up, "main", "cat", "/all/ns") == "default"
    assert await run_in(node, up, "main", "cat", "/color.txt") == "blue"
    assert await run_in(node, up, "main", "cat", "/data/hello") == "from the volume\n"
    assert (node.root / "hostdir").is_dir()
    assert node.kubelet is not None
    container_id = state(up, "main")["containerID"].removeprefix("runc://")
    refused = await node.kubelet.runtime.exec_sync(container_id, ["touch", "/host/x"])
    assert refused.exit_code != 0 and b"Read-only" in refused.stderr


async def test_host_path_type_mismatch_is_a_failed_mount(node: Node) -> None:
    client = node.client
    (node.root / "afile").parent.mkdir(parents=True, exist_ok=True)
    (node.root / "afile").write_text("x")
    volumes = [{"name": "h", "hostPath": {"path": str(node.root / "afile"), "type": "Directory"}}]
    main = container("main", "sleep 3600", volumeMounts=[{"name": "h", "mountPath": "/h"}])
    await client.create(PODS, pod("badmount", main, volumes=volumes), namespace="default")
    event = await wait_event(client, "badmount", "FailedMount")
    assert event["message"] == (f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: '
                                f"{node.root / 'afile'} is not a directory")
    waiting = await wait_pod(client, "badmount", lambda p: bool(state(p, "main")))
    assert state(waiting, "main")["state"]["waiting"]["reason"] == "ContainerCreating"
