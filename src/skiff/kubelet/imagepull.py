"""Making sure a container's image is on the node: pull policy, pull secrets, back-off, events.

::

    imagePullPolicy + present? ──▶ use it      Pulled  Container image "busybox" already present on machine
                               ──▶ Never, absent   ErrImageNeverPull (Warning)
                               ──▶ pull ──▶ in back-off?  BackOff  Back-off pulling image "x"
                                            │               -> waiting ImagePullBackOff
                                            ▼
                                  Pulling  Pulling image "x"
                                  ok:   Pulled  Successfully pulled image "x" in 1.2s (1.2s
                                                including waiting). Image size: N bytes.
                                  fail: Failed  Failed to pull image "x": <error>
                                        -> waiting ErrImagePull; the next try waits
                                           10 s, 20 s ... 5 min (per pod and image)

Credentials come from the pod's ``imagePullSecrets`` (dockerconfigjson / dockercfg
Secrets); each set of credentials has a registry client (and token cache) of its own.
Concurrent pulls of one image with the same credentials share a single download.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .images.auth import Credentials, credentials_for
from .images.policy import PullDecision, pull_decision
from .images.reference import InvalidReference, parse_reference
from .images.registry import InvalidImageName, PullError, RegistryClient
from .images.store import Image, ImageStore
from .lifecycle import BackOff

Obj = dict[str, Any]
EventSink = Callable[[str, str, str], None]        # (type, reason, message)
SecretLookup = Callable[[str, str], Obj | None]


@dataclass(frozen=True)
class PullOutcome:
    image: Image | None
    reason: str = ""              # ErrImagePull, ImagePullBackOff, ErrImageNeverPull, InvalidImageName
    message: str = ""
    retry_in: float = 0.0         # seconds until a retry makes sense


def go_duration(seconds: float) -> str:
    """A duration as Go prints a millisecond-truncated time.Duration (1.234s, 523ms)."""
    millis = int(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    whole, rest = divmod(millis, 1000)
    if whole >= 60:
        minutes, whole = divmod(whole, 60)
        text = f"{whole}.{rest:03d}".rstrip("0").rstrip(".")
        return f"{minutes}m{text}s"
    return f"{whole}.{rest:03d}".rstrip("0").rstrip(".") + "s"


class ImagePuller:
    def __init__(self, store: ImageStore, registry: RegistryClient | None, backoff: BackOff,
                 now: Callable[[], float]) -> None:
        self.store = store
        self.registry = registry
        self.backoff = backoff
        self.now = now
        self._pulls: dict[tuple[str, tuple[Credentials, ...]], asyncio.Future[Image]] = {}
        self._clients: dict[tuple[Credentials, ...], RegistryClient] = {}
        self._errors: dict[str, str] = {}      # pod uid/image -> the last pull error
        self._failures: dict[str, float] = {}  # pod uid/image -> when it failed

    async def ensure(self, pod: Obj, container: Obj, secret: SecretLookup,
                     events: EventSink) -> PullOutcome:
        image_name = str(container.get("image") or "")
        try:
            parse_reference(image_name)
        except InvalidReference as err:
            message = f'Failed to apply default image tag "{image_name}": {err}'
            events("Warning", "InspectFailed", message)
            return PullOutcome(None, "InvalidImageName", message)
        present = await asyncio.to_thread(self.store.get, image_name)
        decision = pull_decision(container.get("imagePullPolicy"), image_name, present is not None)
        if decision == PullDecision.USE_LOCAL and present is not None:
            events("Normal", "Pulled", f'Container image "{image_name}" already present on machine')
            return PullOutcome(present)
        if decision == PullDecision.NEVER_PULL:
            message = f'Container image "{image_name}" is not present with pull policy of Never'
            events("Warning", "ErrImageNeverPull", message)
            return PullOutcome(None, "ErrImageNeverPull", message)
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        key = f"{uid}/{image_name}"
        now = self.now()
        if key in self._errors:
            remaining = self.backoff.remaining(key, self._last_failure(key), now)
            if remaining > 0:
                events("Normal", "BackOff", f'Back-off pulling image "{image_name}"')
                return PullOutcome(None, "ImagePullBackOff",
                                   f'Back-off pulling image "{image_name}": ErrImagePull: '
                                   f"{self._errors[key]}", remaining)
        events("Normal", "Pulling", f'Pulling image "{image_name}"')
        started = time.monotonic()
        try:
            image = await self._pull(image_name, self._credentials(pod, image_name, secret))
        except PullError as err:
            self._errors[key] = str(err)
            self._failures[key] = self.now()
            delay = self.backoff.step(key, self.now())
            events("Warning", "Failed", f'Failed to pull image "{image_name}": {err}')
            events("Warning", "Failed", "Error: ErrImagePull")
            reason = "InvalidImageName" if isinstance(err, InvalidImageName) else "ErrImagePull"
            return PullOutcome(None, reason, str(err), delay)
        self._errors.pop(key, None)
        self._failures.pop(key, None)
        took = go_duration(time.monotonic() - started)
        events("Normal", "Pulled", f'Successfully pulled image "{image_name}" in {took} '
                                   f"({took} including waiting). Image size: {image.size} bytes.")
        return PullOutcome(image)

    def _last_failure(self, key: str) -> float:
        return self._failures.get(key, 0.0)

    def forget_pod(self, uid: str) -> None:
        for key in [k for k in self._errors if k.startswith(uid + "/")]:
            self._errors.pop(key, None)
            self._failures.pop(key, None)
        self.backoff.forget(uid + "/")

    def _credentials(self, pod: Obj, image: str, secret: SecretLookup) -> list[Credentials]:
        registry = parse_reference(image).domain
        namespace = str((pod.get("metadata") or {}).get("namespace", ""))
        found = []
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            obj = secret(namespace, str(ref.get("name", "")))
            if obj is None:
                continue
            data = obj.get("data") or {}
            raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
            if not raw:
                continue
            try:
                creds = credentials_for(registry, base64.b64decode(raw))
            except ValueError:
                continue
            if creds is not None:
                found.append(creds)
        return found

    def _client(self, credentials: list[Credentials]) -> RegistryClient:
        """The registry client for these credentials: a RegistryClient keeps the tokens it
        was given, so one pod's pull secret must never serve another pod's pull."""
        assert self.registry is not None
        if not credentials:
            return self.registry
        key = tuple(credentials)
        client = self._clients.get(key)
        if client is None:
            client = RegistryClient(self.store, insecure_registries=self.registry.insecure)
            self._clients[key] = client
        return client

    async def _pull(self, image: str, credentials: list[Credentials]) -> Image:
        if self.registry is None:
            raise PullError(f"failed to pull image {image!r}: this node has no registry client")
        key = (image, tuple(credentials))
        shared = self._pulls.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._client(credentials).pull(image, credentials))
            self._pulls[key] = shared
            shared.add_done_callback(lambda _: self._pulls.pop(key, None))
        return await asyncio.shield(shared)

    async def close(self) -> None:
        """Close the per-credentials clients (the shared one belongs to the caller)."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
