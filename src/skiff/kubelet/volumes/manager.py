"""The kubelet's volume manager: pod volumes on disk, kept current, mounted into containers.

Layout, as the kubelet keeps it (``pods_dir`` is ``<data-dir>/pods``)::

    pods/<pod uid>/volumes/kubernetes.io~empty-dir/<volume>/     (tmpfs when medium: Memory)
                           kubernetes.io~configmap/<volume>/     atomic writer layout
                           kubernetes.io~secret/<volume>/        on tmpfs, never on disk
                                                                 (on disk without root)
                           kubernetes.io~downward-api/<volume>/
                           kubernetes.io~projected/<volume>/     on tmpfs (may hold secrets)

hostPath and persistentVolumeClaim volumes are host paths used as they are.

::

    setup(pod)    ─▶ {volume name: PreparedVolume}   first time: create / mount
                     VolumeError (FailedMount) while something is missing
    refresh(pod)  ─▶ rewrite configMap/secret/downwardAPI/projected content that changed
                     (atomic ..data swap: containers see it in place); True if anything did
    mounts(...)   ─▶ runtime Mounts of one container: subPath / subPathExpr, readOnly,
                     mountPropagation
    teardown(uid) ─▶ unmount every tmpfs, remove the pod's directory

serviceAccountToken projections come from TokenRequest through
:class:`~.tokens.ServiceAccountTokens` (one token per pod, audience and
expiration, reused until 80 % of its life); a timer per pod rewrites its
token-bearing projected volumes then, so a container always reads a valid token.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...api.quantity import QuantityError, parse_quantity
from ..envs import expand
from ..runtime.interface import Mount, Propagation
from ..runtime.mounts import MS_NODEV, MS_NOSUID, mount, mount_points_under, unmount
from .atomic import FileContent, UnsafePath, check_path, write_atomically
from .sources import (Lookup, VolumeError, check_host_path, config_payload, downward_payload)
from .tokens import ServiceAccountTokens

Obj = dict[str, Any]
TokenSource = Callable[[Obj, Obj], Awaitable[str | None]]   # (pod, projection) -> token
#: after a failed token renewal, the next attempt waits at least this long (seconds)
TOKEN_RETRY = 1.0
AsyncLookup = Callable[[str, str], Awaitable[Obj | None]]

PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
#: Volume kinds whose content follows API objects (rewritten by refresh()).
REFRESHED = ("configMap", "secret", "downwardAPI", "projected")
#: Kinds containers always get read-only, as in Kubernetes.
READ_ONLY = ("configMap", "secret", "downwardAPI", "projected")


@dataclass(frozen=True)
class PreparedVolume:
    name: str
    kind: str
    path: Path
    read_only: bool = False


@dataclass
class VolumeSources:
    """Where volume content comes from (informer caches and API reads)."""

    config_map: Lookup
    secret: Lookup
    claim: AsyncLookup | None = None                       # (namespace, name) -> PVC
    persistent_volume: Callable[[str], Awaitable[Obj | None]] | None = None
    token: TokenSource | None = None
    node_allocatable: Mapping[str, str] = field(default_factory=dict)


def volume_kind(volume: Obj) -> str:
    for kind in ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected",
                 "persistentVolumeClaim"):
        if isinstance(volume.get(kind), dict):
            return kind
    return "unsupported"


class VolumeManager:
    def __init__(self, pods_dir: Path, sources: VolumeSources) -> None:
        self.pods_dir = pods_dir
        self.sources = sources
        self._prepared: dict[str, dict[str, PreparedVolume]] = {}   # pod uid -> volumes
        self.tokens = ServiceAccountTokens(sources.token) if sources.token else None
        self._renewal_timers: dict[str, asyncio.TimerHandle] = {}   # pod uid -> next token renewal
        self._renewals: dict[str, asyncio.Task[None]] = {}

    def pod_dir(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise ValueError(f"invalid pod UID {uid!r}")
        return self.pods_dir / uid

    def _dir(self, uid: str, kind: str, name: str) -> Path:
        return self.pod_dir(uid) / "volumes" / PLUGIN_DIRS[kind] / name

    # -- setup ------------------------------------------------------------------------

    async def setup(self, pod: Obj) -> dict[str, PreparedVolume]:
        """Prepare every volume of ``pod`` (idempotent; VolumeError until all are there)."""
        uid = str(pod["metadata"]["uid"])
        prepared = self._prepared.setdefault(uid, {})
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = str(volume.get("name", ""))
            if name in prepared:
                continue
            prepared[name] = await self._setup_one(pod, volume)
        if uid not in self._renewal_timers and uid not in self._renewals:
            self._schedule_renewal(pod)
        return dict(prepared)

    async def _setup_one(self, pod: Obj, volume: Obj) -> PreparedVolume:
        uid = str(pod["metadata"]["uid"])
        name = str(volume.get("name", ""))
        kind = volume_kind(volume)
        if kind == "hostPath":
            source = volume["hostPath"]
            path = Path(str(source.get("path", "")))
            await asyncio.to_thread(check_host_path, name, path, str(source.get("type") or ""))
            return PreparedVolume(name, kind, path)
        if kind == "persistentVolumeClaim":
            return await self._claim(pod, name, volume["persistentVolumeClaim"])
        if kind not in PLUGIN_DIRS:
            raise VolumeError(name, "this volume type is not supported by skiff's kubelet")
        directory = self._dir(uid, kind, name)
        size = None
        if kind == "emptyDir":
            source = volume["emptyDir"]
            memory = source.get("medium") == "Memory"
            size = _bytes(source.get("sizeLimit")) if memory else None
            await asyncio.to_thread(_make_dir, directory, memory, size)
            return PreparedVolume(name, kind, directory)
        payload = await self._payload(pod, volume, kind)
        tmpfs = kind in ("secret", "projected")

        def materialize() -> None:          # one trip to a worker thread
            _make_dir(directory, tmpfs, None)
            write_atomically(directory, payload)

        await asyncio.to_thread(materialize)
        return PreparedVolume(name, kind, directory, read_only=True)

    async def _claim(self, pod: Obj, name: str, source: Obj) -> PreparedVolume:
        namespace = str(pod["metadata"].get("namespace", ""))
        claim_name = str(source.get("claimName", ""))
        claim = await self.sources.claim(namespace, claim_name) if self.sources.claim else None
        if claim is None:
            raise VolumeError(name, f'persistentvolumeclaim "{claim_name}" not found')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if not volume_name or (claim.get("status") or {}).get("phase") not in (None, "Bound"):
            raise VolumeError(name, f'persistentvolumeclaim "{claim_name}" is not bound')
        pv = await self.sources.persistent_volume(volume_name) if self.sources.persistent_volume else None
        if pv is None:
            raise VolumeError(name, f'persistentvolume "{volume_name}" not found')
        spec = pv.get("spec") or {}
        if isinstance(spec.get("hostPath"), dict):
            path = Path(str(spec["hostPath"].get("path", "")))
            await asyncio.to_thread(check_host_path, name, path, str(spec["hostPath"].get("type") or ""))
        elif isinstance(spec.get("local"), dict):
            path = Path(str(spec["local"].get("path", "")))
            if not path.exists():
                raise VolumeError(name, f"local volume path {path} does not exist")
        else:
            raise VolumeError(name, f'persistentvolume "{volume_name}" has no hostPath or local '
                                    "source (the only kinds this kubelet can mount)")
        return PreparedVolume(name, "persistentVolumeClaim", path,
                              read_only=bool(source.get("readOnly")))

    async def _payload(self, pod: Obj, volume: Obj, kind: str) -> dict[str, FileContent]:
        name = str(volume.get("name", ""))
        namespace = str(pod["metadata"].get("namespace", ""))
        source = volume[kind]
        default_mode = int(source.get("defaultMode", 0o644))
        if kind == "configMap":
            return config_payload(name, source, kind, namespace, self.sources.config_map, default_mode)
        if kind == "secret":
            return config_payload(name, source, kind, namespace, self.sources.secret, default_mode)
        if kind == "downwardAPI":
            return downward_payload(name, source.get("items") or [], pod,
                                    self.sources.node_allocatable, default_mode)
        payload: dict[str, FileContent] = {}
        for projection in source.get("sources") or []:
            if isinstance(projection.get("configMap"), dict):
                payload.update(config_payload(name, projection["configMap"], "configMap", namespace,
                                              self.sources.config_map, default_mode))
            elif isinstance(projection.get("secret"), dict):
                payload.update(config_payload(name, projection["secret"], "secret", namespace,
                                              self.sources.secret, default_mode))
            elif isinstance(projection.get("downwardAPI"), dict):
                payload.update(downward_payload(name, projection["downwardAPI"].get("items") or [],
                                                pod, self.sources.node_allocatable, default_mode))
            elif isinstance(projection.get("serviceAccountToken"), dict) and self.tokens is not None:
                token = await self.tokens.get(pod, projection["serviceAccountToken"])
                if token is not None:   # no TokenRequest API: the token is left out
                    try:
                        path = check_path(str(projection["serviceAccountToken"].get("path", "token")))
                    except UnsafePath as err:
                        raise VolumeError(name, str(err)) from err
                    payload[path] = FileContent(token.encode(), 0o600 if default_mode == 0o644 else default_mode)
        return payload

    # -- updates ----------------------------------------------------------------------

    async def refresh(self, pod: Obj) -> bool:
        """Rewrite content that follows API objects; True if a volume changed."""
        uid = str(pod["metadata"]["uid"])
        prepared = self._prepared.get(uid, {})
        changed = False
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            ready = prepared.get(str(volume.get("name", "")))
            if ready is None or ready.kind not in REFRESHED:
                continue
            try:
                payload = await self._payload(pod, volume, ready.kind)
            except VolumeError:
                continue        # the object went away: keep the last content, as Kubernetes does
            changed |= await asyncio.to_thread(write_atomically, ready.path, payload)
        return changed

    # -- service account token renewal ------------------------------------------------

    def _schedule_renewal(self, pod: Obj, floor: float = 0.0) -> None:
        if self.tokens is None:
            return
        uid = str(pod["metadata"]["uid"])
        at = self.tokens.next_refresh(uid)
        if at is None:
            return
        delay = max(floor, at - self.tokens.clock()) if at > self.tokens.clock() else max(floor, 0.0)
        self._renewal_timers[uid] = asyncio.get_running_loop().call_later(delay, self._start_renewal, pod)

    def _start_renewal(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        self._renewal_timers.pop(uid, None)
        if uid in self._prepared and uid not in self._renewals:
            self._renewals[uid] = asyncio.get_running_loop().create_task(
                self._renew_tokens(pod), name=f"token-renewal-{uid}")

    async def _renew_tokens(self, pod: Obj) -> None:
        """Rewrite the pod's projected volumes holding a token (new token when due)."""
        uid = str(pod["metadata"]["uid"])
        try:
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                ready = self._prepared.get(uid, {}).get(str(volume.get("name", "")))
                sources = (volume.get("projected") or {}).get("sources") or []
                if ready is None or not any(isinstance(s.get("serviceAccountToken"), dict) for s in sources):
                    continue
                try:
                    payload = await self._payload(pod, volume, "projected")
                except VolumeError:
                    continue
                await asyncio.to_thread(write_atomically, ready.path, payload)
        finally:
            self._renewals.pop(uid, None)
        if uid in self._prepared:
            self._schedule_renewal(pod, floor=TOKEN_RETRY if self._overdue(uid) else 0.0)

    def _overdue(self, uid: str) -> bool:
        at = self.tokens.next_refresh(uid) if self.tokens is not None else None
        return at is not None and at <= self.tokens.clock()  # type: ignore[union-attr]

    def references(self, pod: Obj) -> set[tuple[str, str]]:
        """(kind, name) of the ConfigMaps and Secrets the pod's volumes read."""
        out: set[tuple[str, str]] = set()
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if isinstance(volume.get("configMap"), dict):
                out.add(("configmap", str(volume["configMap"].get("name", ""))))
            if isinstance(volume.get("secret"), dict):
                out.add(("secret", str(volume["secret"].get("secretName", ""))))
            for projection in (volume.get("projected") or {}).get("sources") or []:
                if isinstance(projection.get("configMap"), dict):
                    out.add(("configmap", str(projection["configMap"].get("name", ""))))
                if isinstance(projection.get("secret"), dict):
                    out.add(("secret", str(projection["secret"].get("name", ""))))
        return out

    # -- containers -------------------------------------------------------------------

    def mounts(self, container: Obj, volumes: Mapping[str, PreparedVolume],
               env: Sequence[tuple[str, str]]) -> list[Mount]:
        """The runtime mounts for ``container`` (VolumeError for a bad subPath)."""
        table = dict(env)
        out = []
        for mount_spec in container.get("volumeMounts") or []:
            name = str(mount_spec.get("name", ""))
            volume = volumes.get(name)
            if volume is None:
                raise VolumeError(name, f"volume {name!r} is not prepared")
            source = volume.path
            sub = str(mount_spec.get("subPath") or "")
            if not sub and mount_spec.get("subPathExpr"):
                sub = expand(str(mount_spec["subPathExpr"]), table.get)
            if sub:
                source = _sub_path(volume, sub)
            propagation = {"HostToContainer": Propagation.HOST_TO_CONTAINER,
                           "Bidirectional": Propagation.BIDIRECTIONAL}.get(
                str(mount_spec.get("mountPropagation") or ""), Propagation.PRIVATE)
            out.append(Mount(host_path=source, container_path=str(mount_spec.get("mountPath", "")),
                             read_only=bool(mount_spec.get("readOnly")) or volume.read_only,
                             propagation=propagation))
        return out

    # -- teardown ---------------------------------------------------------------------

    async def teardown(self, uid: str) -> None:
        """Unmount and delete everything of the pod (idempotent)."""
        self._prepared.pop(uid, None)
        timer = self._renewal_timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        renewal = self._renewals.pop(uid, None)
        if renewal is not None and renewal is not asyncio.current_task():
            renewal.cancel()
        if self.tokens is not None:
            self.tokens.forget(uid)
        await asyncio.to_thread(_remove_pod_dir, self.pod_dir(uid))

    async def close(self) -> None:
        """The kubelet stops: no more token renewals, and no tmpfs left mounted.

        Pod directories stay; a kubelet started again mounts and fills them anew
        (``setup`` is idempotent), as it does after a crash.
        """
        for timer in self._renewal_timers.values():
            timer.cancel()
        self._renewal_timers.clear()
        renewals = list(self._renewals.values())
        for task in renewals:
            task.cancel()
        await asyncio.gather(*renewals, return_exceptions=True)
        self._prepared.clear()
        await asyncio.to_thread(_unmount_all, self.pods_dir)

    def known_pods(self) -> list[str]:
        """UIDs with a directory on disk (found again after a restart)."""
        try:
            return sorted(os.listdir(self.pods_dir))
        except FileNotFoundError:
            return []


def _bytes(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return parse_quantity(str(value)).value()
    except QuantityError:
        return None


def _make_dir(directory: Path, tmpfs: bool, size: int | None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if tmpfs and os.geteuid() != 0:
        # a kubelet without root (process runtime) cannot mount: on disk, for its user
        # only (its containers run as that user)
        os.chmod(directory, 0o700)
        return
    if tmpfs and not os.path.ismount(directory):   # a tmpfs of its own: another device
        options = "mode=0755" + (f",size={size}" if size else "")
        mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, options)
    if not tmpfs:
        os.chmod(directory, 0o777)   # emptyDir: any container user may write (as Kubernetes)


def _sub_path(volume: PreparedVolume, sub: str) -> Path:
    try:
        check_path(sub)
    except UnsafePath as err:
        raise VolumeError(volume.name, f"invalid subPath {sub!r}: {err}") from err
    target = volume.path / sub
    if not target.exists() and not target.is_symlink():
        target.mkdir(parents=True, mode=0o755)
    base = os.path.realpath(volume.path)
    real = os.path.realpath(target)
    if real != base and not real.startswith(base.rstrip("/") + "/"):
        raise VolumeError(volume.name, f"subPath {sub!r} resolves outside the volume")
    return Path(real)


def _unmount_all(directory: Path) -> None:
    if directory.exists():
        for point in mount_points_under(directory):
            unmount(point, detach=True)


def _remove_pod_dir(directory: Path) -> None:
    if not directory.exists():
        return
    for point in mount_points_under(directory):
        unmount(point, detach=True)
    shutil.rmtree(directory, ignore_errors=True)
