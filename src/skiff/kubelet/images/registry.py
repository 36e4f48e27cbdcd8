"""Pulling images over the OCI distribution API (registry HTTP API v2).

One pull, step by step::

    GET /v2/<name>/manifests/<tag|digest>      Accept: index, list, OCI and Docker manifests
      401 -> answer the challenge (see .auth), once, then repeat
      an index / manifest list?  pick linux/amd64, GET /v2/<name>/manifests/<digest>
    GET /v2/<name>/blobs/<config digest>       the image config
    GET /v2/<name>/blobs/<layer digest>        each layer the store lacks, streamed to a
                                               temp file, then unpacked (verified twice:
                                               blob digest, then diffID from the config)
    store.record(...)                          name -> image, name@<digest> as repo digest

Every document fetched by digest is checked against it; a manifest fetched by tag
is checked against ``Docker-Content-Digest`` when the registry sends one.

Registries named ``localhost``/``127.0.0.1``/``[::1]`` (any port) or listed in
``insecure_registries`` are spoken to over plain HTTP, all others over HTTPS.

Failures are :class:`PullError` subclasses whose messages read like containerd's,
so the kubelet can put them in ``ErrImagePull`` events and statuses as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp

from .auth import Credentials, parse_challenge
from .config import ImageConfig, InvalidImageConfig
from .layer import LayerError
from .mediatypes import INDEX_TYPES, MANIFEST_TYPES, platform_matches
from .reference import InvalidReference, Reference, parse_reference
from .store import Image, ImageStore, ImageStoreError, sha256_digest

MANIFEST_ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
MAX_MANIFEST_BYTES = 4 << 20
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
PARALLEL_LAYERS = 3


class PullError(Exception):
    """Pulling failed (the kubelet's ErrImagePull)."""


class InvalidImageName(PullError):
    """The image string is not a reference (the kubelet's InvalidImageName)."""


class ImageNotFoundInRegistry(PullError):
    """The registry has no such repository, tag or digest."""


class Unauthorized(PullError):
    """The registry refused us (no or wrong credentials)."""


class RegistryUnavailable(PullError):
    """The registry could not be reached or answered with a server error."""


class DigestMismatch(PullError):
    """Content did not match the digest that named it."""


class NoMatchingPlatform(PullError):
    """A multi-platform image without linux/amd64."""


class RegistryClient:
    """Pulls into an :class:`ImageStore`; share one per kubelet (one HTTP session)."""

    def __init__(self, store: ImageStore, *, insecure_registries: Iterable[str] = (),
                 timeout: float = 300.0) -> None:
        self.store = store
        self.insecure = set(insecure_registries)
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10)
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[tuple[str, str], str] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def base_url(self, ref: Reference) -> str:
        host = ref.registry_host
        plain = host in self.insecure or host.rsplit(":", 1)[0] in LOOPBACK_HOSTS or \
            host.split(":", 1)[0] in LOOPBACK_HOSTS
        return f"{'http' if plain else 'https'}://{host}"

    async def pull(self, image: str, credentials: Sequence[Credentials] = ()) -> Image:
        """Pull ``image`` (a reference as written in a pod) and return it from the store.

        ``credentials`` are those of the pod's pull secrets for the image's registry
        (see :func:`.auth.credentials_for`), tried in order."""
        try:
            ref = parse_reference(image)
        except InvalidReference as err:
            raise InvalidImageName(f"Failed to apply default image tag {image!r}: {err}") from err
        try:
            # like the kubelet with several pull secrets: each matching one in turn
            attempts: list[list[Credentials]] = [[c] for c in credentials] or [[]]
            for number, attempt in enumerate(attempts, start=1):
                try:
                    return await self._pull(ref, attempt)
                except Unauthorized:
                    self._forget_tokens(ref)
                    if number == len(attempts):
                        raise
            raise AssertionError("unreachable")
        except aiohttp.ClientError as err:
            raise RegistryUnavailable(f'failed to pull "{ref}": {err}') from err
        except asyncio.TimeoutError as err:
            raise RegistryUnavailable(f'failed to pull "{ref}": timed out') from err

    def _forget_tokens(self, ref: Reference) -> None:
        for key in [k for k in self._tokens if k[0] == ref.registry_host]:
            del self._tokens[key]

    async def _pull(self, ref: Reference, credentials: list[Credentials]) -> Image:
        session = _PullSession(self, ref, credentials)
        top_digest, manifest_bytes, manifest = await session.resolve()
        config_desc = manifest.get("config") or {}
        config_digest = str(config_desc.get("digest", ""))
        config_bytes = await session.blob_bytes(config_digest)
        try:
            config = ImageConfig.parse(config_bytes)
        except InvalidImageConfig as err:
            raise PullError(f"{ref}: {err}") from err
        layers = manifest.get("layers") or []
        if len(layers) != len(config.diff_ids):
            raise PullError(f"{ref}: manifest has {len(layers)} layers, config {len(config.diff_ids)}")
        with self.store.adding():
            limit = asyncio.Semaphore(PARALLEL_LAYERS)

            async def fetch(layer: dict[str, Any], diff_id: str) -> None:
                async with limit:
                    await session.layer(str(layer.get("digest", "")), diff_id)

            await asyncio.gather(*(fetch(layer, diff_id)
                                   for layer, diff_id in zip(layers, config.diff_ids)))
            names = [ref] if ref.tag else []
            try:
                return await asyncio.to_thread(
                    self.store.record, config=config_bytes, manifest=manifest_bytes, names=names,
                    repo_digests=[f"{ref.name}@{top_digest}"])
            except ImageStoreError as err:
                raise PullError(f"{ref}: {err}") from err


class _PullSession:
    """The requests of one pull, sharing its auth state."""

    def __init__(self, client: RegistryClient, ref: Reference,
                 credentials: list[Credentials]) -> None:
        self.client = client
        self.ref = ref
        self.credentials = credentials
        self.base = f"{client.base_url(ref)}/v2/{ref.path}"
        self.scope = f"repository:{ref.path}:pull"

    async def resolve(self) -> tuple[str, bytes, dict[str, Any]]:
        """(digest the name resolved to, manifest bytes, parsed manifest) for linux/amd64."""
        top_digest, data, doc = await self.manifest(self.ref.pull_reference, by_digest=bool(self.ref.digest))
        if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            chosen = next((d for d in doc.get("manifests") or []
                           if platform_matches(d.get("platform")) and d.get("platform")), None)
            if chosen is None:
                raise NoMatchingPlatform(f"{self.ref}: no match for platform in manifest "
                                         f"{top_digest}: not found (linux/amd64)")
            _, data, doc = await self.manifest(str(chosen["digest"]), by_digest=True)
        if "layers" not in doc or "config" not in doc:
            raise PullError(f"{self.ref}: unsupported manifest (schemaVersion "
                            f"{doc.get('schemaVersion')}, mediaType {doc.get('mediaType')})")
        return top_digest, data, doc

    async def manifest(self, reference: str, *, by_digest: bool) -> tuple[str, bytes, dict[str, Any]]:
        async with await self.request(f"{self.base}/manifests/{reference}",
                                      {"Accept": MANIFEST_ACCEPT}) as response:
            if response.status == 404:
                raise ImageNotFoundInRegistry(
                    f'failed to resolve reference "{self.ref}": {self.ref}: not found')
            self.check(response, f'failed to resolve reference "{self.ref}"')
            data = await _read_capped(response, MAX_MANIFEST_BYTES)
            sent_digest = response.headers.get("Docker-Content-Digest")
        digest = sha256_digest(data)
        expected = reference if by_digest else sent_digest
        if expected and expected.startswith("sha256:") and expected != digest:
            raise DigestMismatch(f"{self.ref}: manifest digest mismatch: expected {expected}, "
                                 f"got {digest}")
        try:
            doc = json.loads(data)
        except ValueError as err:
            raise PullError(f"{self.ref}: manifest is not JSON: {err}") from err
        if not isinstance(doc, dict):
            raise PullError(f"{self.ref}: manifest is not a JSON object")
        return digest, data, doc

    async def blob_bytes(self, digest: str) -> bytes:
        async with await self.request(f"{self.base}/blobs/{digest}", {}) as response:
            self.check(response, f"failed to fetch blob {digest} of {self.ref}")
            data = await _read_capped(response, MAX_MANIFEST_BYTES)
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"{self.ref}: blob {digest} does not match its digest")
        return data

    async def layer(self, digest: str, diff_id: str) -> None:
        store = self.client.store
        if store.has_layer(diff_id) or store.layer_for_blob(digest) == diff_id:
            return
        fd, tmp_name = tempfile.mkstemp(prefix="tmp-pull-", dir=store.layers)
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                async with await self.request(f"{self.base}/blobs/{digest}", {}) as response:
                    self.check(response, f"failed to fetch layer {digest} of {self.ref}")
                    async for chunk in response.content.iter_chunked(1 << 16):
                        hasher.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
            if "sha256:" + hasher.hexdigest() != digest:
                raise DigestMismatch(f"{self.ref}: layer {digest} does not match its digest")
            await asyncio.to_thread(self._unpack, tmp_name, digest, diff_id)
        finally:
            os.unlink(tmp_name)

    def _unpack(self, path: str, digest: str, diff_id: str) -> None:
        with open(path, "rb") as blob:
            try:
                self.client.store.add_layer(blob, blob_digest=digest, diff_id=diff_id)
            except (LayerError, ImageStoreError) as err:
                raise PullError(f"{self.ref}: failed to unpack layer {digest}: {err}") from err

    async def request(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET with auth: the cached token first, a challenge answered once on 401."""
        http = self.client._http()
        key = (self.ref.registry_host, self.scope)
        token = self.client._tokens.get(key)
        sent = dict(headers)
        if token:
            sent["Authorization"] = token
        response = await http.get(url, headers=sent)
        if response.status != 401:
            return response
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        response.release()
        authorization = await self.answer(challenge)
        self.client._tokens[key] = authorization
        return await http.get(url, headers=dict(headers, Authorization=authorization))

    async def answer(self, challenge: Any) -> str:
        denied = (f'failed to resolve reference "{self.ref}": pull access denied, repository '
                  "does not exist or may require authorization")
        if challenge is None:
            raise Unauthorized(f"{denied}: 401 Unauthorized without a challenge")
        if challenge.scheme == "basic":
            if not self.credentials:
                raise Unauthorized(f"{denied}: authorization failed: no basic auth credentials")
            return self.credentials[0].basic_header()
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise Unauthorized(f"{denied}: unsupported challenge {challenge.scheme!r}")
        params = {"scope": challenge.params.get("scope") or self.scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        headers = {"Authorization": self.credentials[0].basic_header()} if self.credentials else {}
        async with self.client._http().get(challenge.params["realm"], params=params,
                                           headers=headers) as response:
            if response.status in (401, 403):
                raise Unauthorized(f"{denied}: failed to fetch token: {response.status} "
                                   f"{response.reason}")
            self.check(response, f"{denied}: failed to fetch token")
            body = await _read_capped(response, 1 << 20)
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise Unauthorized(f"{denied}: the token endpoint returned no token")
        return f"Bearer {token}"

    def check(self, response: aiohttp.ClientResponse, what: str) -> None:
        if response.status < 300:
            return
        response.release()
        status = f"{response.status} {response.reason}"
        if response.status in (401, 403):
            raise Unauthorized(f"{what}: pull access denied, repository does not exist or may "
                               f"require authorization: {status}")
        if response.status == 404:
            raise ImageNotFoundInRegistry(f"{what}: not found")
        if response.status >= 500:
            raise RegistryUnavailable(f"{what}: registry error {status}")
        raise PullError(f"{what}: unexpected status {status}")


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    data = await response.content.read(limit + 1)
    if len(data) > limit:
        raise PullError(f"{response.url}: document larger than {limit} bytes")
    return data
