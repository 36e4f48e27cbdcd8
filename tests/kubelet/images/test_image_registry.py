"""Pulling from a real registry on loopback: anonymous, basic auth, bearer tokens, errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from busybox_image import OciImage, busybox_layer, image_config, sha256, write_oci_archive
from registry_support import LocalRegistry, free_port, start_registry

from skiff.kubelet.images.auth import Credentials, credentials_for, parse_challenge
from skiff.kubelet.images.registry import (DigestMismatch, ImageNotFoundInRegistry,
                                           InvalidImageName, RegistryClient,
                                           RegistryUnavailable, Unauthorized)
from skiff.kubelet.images.store import ImageStore

ROBOT = ("robot", "s3cret")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path) -> Iterator[LocalRegistry]:
    root = tmp_path_factory.mktemp("registry")
    local = start_registry(root / "anonymous")
    try:
        local.push(f"docker-archive:{busybox_archive}", "busybox:test")
        layer = busybox_layer()
        images = [OciImage([layer], image_config([sha256(layer)], architecture="arm64", cmd=["arm"]),
                           {"os": "linux", "architecture": "arm64"}),
                  OciImage([layer], image_config([sha256(layer)], cmd=["amd"]),
                           {"os": "linux", "architecture": "amd64"})]
        write_oci_archive(root / "multi.tar", images, ref_name="multi", nested_index=True)
        local.push(f"oci-archive:{root / 'multi.tar'}:multi", "tools/multi:v1", all_platforms=True)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory,
                  busybox_archive: Path) -> Iterator[LocalRegistry]:
    local = start_registry(tmp_path_factory.mktemp("registry") / "basic", creds=ROBOT)
    try:
        local.push(f"docker-archive:{busybox_archive}", "private/busybox:test")
        yield local
    finally:
        local.stop()


@pytest.fixture
async def client(store: ImageStore) -> AsyncIterator[RegistryClient]:
    puller = RegistryClient(store)
    try:
        yield puller
    finally:
        await puller.close()


async def test_anonymous_pull(client: RegistryClient, registry: LocalRegistry,
                              store: ImageStore) -> None:
    image = await client.pull(f"{registry.host}/busybox:test")
    assert image.names == (f"{registry.host}/busybox:test",)
    [repo_digest] = image.repo_digests
    assert repo_digest.startswith(f"{registry.host}/busybox@sha256:")
    [layer] = store.layer_dirs(image)
    assert (layer / "bin/busybox").exists()
    assert store.get(repo_digest) == image
    # a second pull finds everything present and changes nothing
    assert (await client.pull(f"{registry.host}/busybox:test")).id == image.id


async def test_pull_by_digest(client: RegistryClient, registry: LocalRegistry, tmp_path: Path) -> None:
    first = await client.pull(f"{registry.host}/busybox:test")
    other = RegistryClient(ImageStore(tmp_path / "other"))
    try:
        by_digest = await other.pull(first.repo_digests[0])
    finally:
        await other.close()
    assert by_digest.id == first.id and by_digest.names == ()
    assert by_digest.repo_digests == first.repo_digests


async def test_multi_platform_index_resolves_to_linux_amd64(client: RegistryClient,
                                                            registry: LocalRegistry) -> None:
    image = await client.pull(f"{registry.host}/tools/multi:v1")
    assert (image.config.architecture, image.config.cmd) == ("amd64", ("amd",))


@pytest.mark.parametrize("name", ["nosuch:latest", "busybox:no-such-tag"])
async def test_missing_images_are_reported_as_not_found(client: RegistryClient,
                                                        registry: LocalRegistry, name: str) -> None:
    with pytest.raises(ImageNotFoundInRegistry) as caught:
        await client.pull(f"{registry.host}/{name}")
    assert str(caught.value) == (f'failed to resolve reference "{registry.host}/{name}": '
                                 f"{registry.host}/{name}: not found")


async def test_unreachable_registry_and_invalid_names(client: RegistryClient) -> None:
    with pytest.raises(RegistryUnavailable):
        await client.pull(f"127.0.0.1:{free_port()}/busybox:test")
    with pytest.raises(InvalidImageName):
        await client.pull("Not A Reference")


async def test_basic_auth(client: RegistryClient, auth_registry: LocalRegistry) -> None:
    name = f"{auth_registry.host}/private/busybox:test"
    with pytest.raises(Unauthorized, match="pull access denied"):
        await client.pull(name)
    with pytest.raises(Unauthorized):
        await client.pull(name, [Credentials("robot", "wrong")])
    image = await client.pull(name, [Credentials("robot", "wrong"), Credentials(*ROBOT)])
    assert image.names == (name,)


@dataclass
class TokenProxy:
    """A registry front that wants Bearer tokens (like Docker Hub), proxying to a real one."""

    upstream: str
    host: str = ""
    scopes: list[str] = field(default_factory=list)
    tamper: bool = False

    async def token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(":".join(ROBOT).encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        self.scopes.append(f"{request.query.get('service')} {request.query.get('scope')}")
        return web.json_response({"token": "good-token"})

    async def v2(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer good-token":
            challenge = (f'Bearer realm="http://{self.host}/token",service="test-registry",'
                         f'scope="repository:busybox:pull"')
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{self.upstream}{request.path}",
                                   headers={"Accept": request.headers.get("Accept", "*/*")}) as up:
                body = await up.read()
                headers = {k: up.headers[k] for k in ("Content-Type", "Docker-Content-Digest")
                           if k in up.headers}
                if self.tamper and "/blobs/" in request.path and len(body) > 100_000:
                    body = body[:-1] + bytes([body[-1] ^ 1])
                return web.Response(status=up.status, body=body, headers=headers)


@pytest.fixture
async def token_proxy(registry: LocalRegistry) -> AsyncIterator[TokenProxy]:
    proxy = TokenProxy(upstream=registry.host)
    app = web.Application()
    app.router.add_get("/token", proxy.token)
    app.router.add_get("/v2/{tail:.*}", proxy.v2)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    proxy.host = f"127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        await runner.cleanup()


async def test_bearer_token_auth(client: RegistryClient, token_proxy: TokenProxy) -> None:
    name = f"{token_proxy.host}/busybox:test"
    with pytest.raises(Unauthorized, match="failed to fetch token: 401"):
        await client.pull(name)
    image = await client.pull(name, [Credentials(*ROBOT)])
    assert image.names == (name,)
    assert token_proxy.scopes == ["test-registry repository:busybox:pull"]


async def test_tampered_layer_is_rejected(client: RegistryClient, token_proxy: TokenProxy,
                                          store: ImageStore) -> None:
    token_proxy.tamper = True
    with pytest.raises(DigestMismatch):
        await client.pull(f"{token_proxy.host}/busybox:test", [Credentials(*ROBOT)])
    assert store.list() == []
    assert [d for d in store.layers.iterdir() if d.name != "by-blob"] == []


def test_pull_secret_credentials() -> None:
    auth = base64.b64encode(b"robot:s3cret").decode()
    secret = {"auths": {"https://index.docker.io/v1/": {"auth": auth},
                        "127.0.0.1:5000": {"username": "u", "password": "p"},
                        "https://registry.example.com/v2/": {"auth": auth}}}
    assert credentials_for("docker.io", secret) == Credentials("robot", "s3cret")
    assert credentials_for("127.0.0.1:5000", secret) == Credentials("u", "p")
    assert credentials_for("registry.example.com", secret) == Credentials("robot", "s3cret")
    assert credentials_for("quay.io", secret) is None
    legacy = {"127.0.0.1:5000": {"auth": auth}}   # kubernetes.io/dockercfg
    assert credentials_for("127.0.0.1:5000", legacy) == Credentials("robot", "s3cret")


def test_challenge_parsing() -> None:
    challenge = parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                                'scope="repository:a/b:pull"')
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example/token", "service": "reg",
                                "scope": "repository:a/b:pull"}
    basic = parse_challenge('Basic realm="x"')
    assert basic is not None and basic.scheme == "basic"
