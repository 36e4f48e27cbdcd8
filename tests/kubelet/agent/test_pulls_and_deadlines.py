"""Image pulls as the kubelet does them (policy, pull secrets, ErrImagePull then
ImagePullBackOff, events) against a registry on loopback; activeDeadlineSeconds;
hostNetwork pods."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from busybox_image import write_busybox_archive
from kubelet_support import Node, container, pod, running, state, wait_event, wait_pod
from registry_support import start_registry

from skiff.client.resources import PODS, SECRETS


async def test_image_never_pulled_when_absent_with_policy_never(node: Node) -> None:
    client = node.client
    missing = dict(container("main", "true"), image="example.invalid/nothing:1")
    await client.create(PODS, pod("never", missing), namespace="default")
    waiting = await wait_pod(client, "never", lambda p: state(p, "main").get("state", {}).get(
        "waiting", {}).get("reason") == "ErrImageNeverPull")
    message = 'Container image "example.invalid/nothing:1" is not present with pull policy of Never'
    assert state(waiting, "main")["state"]["waiting"]["message"] == message
    assert waiting["status"]["phase"] == "Pending"
    await wait_event(client, "never", "ErrImageNeverPull", contains=message)


async def test_pull_with_a_pull_secret_then_back_off_without_one(node: Node, tmp_path: Path) -> None:
    client = node.client
    registry = start_registry(tmp_path / "registry", creds=("skiff", "pass"))
    try:
        archive = tmp_path / "busybox.tar"
        write_busybox_archive(archive, "busybox:test")
        registry.push(f"docker-archive:{archive}", "tools/busybox:pulled")
        image = f"{registry.host}/tools/busybox:pulled"
        auth = base64.b64encode(b"skiff:pass").decode()
        config = json.dumps({"auths": {registry.host: {"auth": auth}}}).encode()
        await client.create(SECRETS, {"metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
                                      "data": {".dockerconfigjson": base64.b64encode(config).decode()}},
                            namespace="default")
        with_secret = dict(container("main", "sleep 3600"), image=image, imagePullPolicy="Always")
        await client.create(PODS, pod("pulled", with_secret, imagePullSecrets=[{"name": "pull"}]),
                            namespace="default")
        up = await wait_pod(client, "pulled", running())
        assert state(up, "main")["image"] == image
        assert state(up, "main")["imageID"].startswith(f"{registry.host}/tools/busybox@sha256:")
        await wait_event(client, "pulled", "Pulling", contains=f'Pulling image "{image}"')
        pulled = await wait_event(client, "pulled", "Pulled")
        assert re.fullmatch(rf'Successfully pulled image "{re.escape(image)}" in [0-9.]+m?s '
                            r"\([0-9.]+m?s including waiting\)\. Image size: \d+ bytes\.", pulled["message"])

        without = dict(container("main", "sleep 3600"), image=image, imagePullPolicy="Always")
        await client.create(PODS, pod("refused", without), namespace="default")
        await wait_event(client, "refused", "Failed", contains=f'Failed to pull image "{image}"')
        backing_off = await wait_pod(client, "refused", lambda p: state(p, "main").get("state", {}).get(
            "waiting", {}).get("reason") == "ImagePullBackOff")
        assert state(backing_off, "main")["state"]["waiting"]["message"].startswith(
            f'Back-off pulling image "{image}": ErrImagePull: ')
        await wait_event(client, "refused", "BackOff", contains=f'Back-off pulling image "{image}"')
    finally:
        registry.stop()


async def test_active_deadline_fails_the_pod(node: Node) -> None:
    client = node.client
    main = container("main", "trap 'exit 143' TERM; sleep 3600 & wait")
    await client.create(PODS, pod("deadline", main, activeDeadlineSeconds=1), namespace="default")
    failed = await wait_pod(client, "deadline", lambda p: p["status"].get("phase") == "Failed")
    assert failed["status"]["reason"] == "DeadlineExceeded"
    assert failed["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    assert state(failed, "main")["state"]["terminated"]["exitCode"] == 143


async def test_host_network_pod_uses_the_node_address(node: Node) -> None:
    client = node.client
    await client.create(PODS, pod("hostnet", container("main", "sleep 3600"), hostNetwork=True),
                        namespace="default")
    up = await wait_pod(client, "hostnet", running())
    assert up["status"]["podIP"] == up["status"]["hostIP"] == "127.0.0.1"
