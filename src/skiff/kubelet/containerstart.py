"""Starting one container of a pod, step by step, as the kubelet does.

::

    image      ImagePuller.ensure            ErrImagePull / ImagePullBackOff / ErrImageNeverPull
    config     env (envs), command/args      CreateContainerConfigError
               ($(VAR)-expanded, over the image's Entrypoint/Cmd), volume mounts
               (subPath), /etc/hosts, termination-message file, resources, securityContext
    create     runtime.create                CreateContainerError       event Created
    start      runtime.start                 RunContainerError          event Started
    postStart  hooks.post_start              FailedPostStartHook -> the container is killed

A failure leaves the reason and message on the :class:`ContainerRecord` (they
become the container's ``waiting`` state) and says when to try again.

Containers carry labels and annotations so that a restarted kubelet can tell whose
they are (pod UID, container name, init or regular) and report them (image as
reported, image ID, termination-message file).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.kinds.podspec.qos import pod_qos_class
from ..api.quantity import QuantityError, parse_quantity
from .context import NodeContext
from .envs import EnvError, EnvSources, container_env, expand_command
from .handlers import Target
from .hooks import post_start
from .images.reference import InvalidReference, parse_reference
from .images.store import Image
from .podsandbox import POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL, Sandbox
from .runtime.interface import (ContainerConfigError, ContainerSpec, ContainerStatus, Mount,
                                Resources, RuntimeFailure, SecurityContext, StartFailed)
from .volumes import PreparedVolume, VolumeError

Obj = dict[str, Any]
log = logging.getLogger(__name__)

CONTAINER_NAME_LABEL = "io.kubernetes.container.name"
CONTAINER_KIND_LABEL = "skiff.dev/container-kind"       # "init" | "regular"
IMAGE_REF_ANNOTATION = "skiff.dev/image-ref"
IMAGE_ID_ANNOTATION = "skiff.dev/image-id"
TERMINATION_LOG_ANNOTATION = "skiff.dev/termination-log"
GRACE_ANNOTATION = "io.kubernetes.pod.terminationGracePeriod"


@dataclass
class ContainerRecord:
    """What the kubelet knows about one container of the pod spec."""

    kind: str                            # "init" | "regular"
    spec: Obj
    current: ContainerStatus | None = None
    previous: ContainerStatus | None = None
    waiting_reason: str = ""
    waiting_message: str = ""
    retry_at: float = 0.0                # clock.monotonic() before which no new attempt
    backoff_reported: float = -1.0       # finish time whose BackOff event went out

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def restart_count(self) -> int:
        return self.current.attempt if self.current is not None else 0

    def adopt(self, status: ContainerStatus) -> None:
        self.previous, self.current = self.current, status


def reported_image(image: str) -> str:
    try:
        return str(parse_reference(image))
    except InvalidReference:
        return image


def reported_image_id(image: Image) -> str:
    return image.repo_digests[0] if image.repo_digests else image.id


def oom_score_adj(pod: Obj, container: Obj, memory_capacity: int) -> int:
    qos = pod_qos_class(pod.get("spec") or {})
    if qos == "Guaranteed":
        return -997
    if qos == "BestEffort":
        return 1000
    request = (container.get("resources") or {}).get("requests", {}).get("memory")
    try:
        amount = parse_quantity(str(request)).value() if request else 0
    except QuantityError:
        amount = 0
    score = 1000 - (1000 * amount) // max(1, memory_capacity)
    return int(min(999, max(2, score)))


def _resources(container: Obj) -> Resources:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}

    def milli(value: Any) -> int | None:
        try:
            return parse_quantity(str(value)).milli_value() if value is not None else None
        except QuantityError:
            return None

    def whole(value: Any) -> int | None:
        try:
            return parse_quantity(str(value)).value() if value is not None else None
        except QuantityError:
            return None

    return Resources.from_kubernetes(cpu_request_milli=milli(requests.get("cpu")),
                                     cpu_limit_milli=milli(limits.get("cpu")),
                                     memory_limit=whole(limits.get("memory")))


def _security(pod: Obj, container: Obj) -> SecurityContext:
    pod_ctx = (pod.get("spec") or {}).get("securityContext") or {}
    ctx = container.get("securityContext") or {}

    def pick(name: str) -> Any:
        return ctx.get(name) if ctx.get(name) is not None else pod_ctx.get(name)

    groups = [int(g) for g in pod_ctx.get("supplementalGroups") or []]
    if pod_ctx.get("fsGroup") is not None:
        groups.append(int(pod_ctx["fsGroup"]))
    caps = ctx.get("capabilities") or {}
    escalation = ctx.get("allowPrivilegeEscalation")
    return SecurityContext(
        privileged=bool(ctx.get("privileged")),
        read_only_root_filesystem=bool(ctx.get("readOnlyRootFilesystem")),
        run_as_user=pick("runAsUser"), run_as_group=pick("runAsGroup"),
        run_as_non_root=bool(pick("runAsNonRoot")), supplemental_groups=tuple(groups),
        capabilities_add=tuple(caps.get("add") or ()), capabilities_drop=tuple(caps.get("drop") or ()),
        allow_privilege_escalation=escalation is not False)


def probe_target(sandbox: Sandbox, container_id: str, container: Obj) -> Target:
    ports = {str(p["name"]): int(p["containerPort"]) for p in container.get("ports") or []
             if p.get("name") and p.get("containerPort")}
    network = sandbox.network
    ip = "127.0.0.1" if network.interface == "lo" else network.ip
    return Target(container_id=container_id, pod_ip=ip, netns=network.netns_path, ports=ports)


class ContainerStarter:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    def _log_path(self, pod: Obj, name: str, attempt: int) -> Path:
        return self.ctx.config.pod_logs_dir(pod["metadata"]) / name / f"{attempt}.log"

    async def start(self, pod: Obj, record: ContainerRecord, sandbox: Sandbox,
                    volumes: dict[str, PreparedVolume], memory_capacity: int,
                    pid_namespace_of: str = "") -> str | None:
        """Start (or restart) ``record``'s container; its ID, or None (see the record).
        ``pid_namespace_of``: a running container whose process namespace it joins."""
        ctx = self.ctx
        events = ctx.events(pod)
        container = record.spec
        now = ctx.clock.monotonic()

        def wait(reason: str, message: str, retry_in: float) -> None:
            record.waiting_reason, record.waiting_message = reason, message
            record.retry_at = now + retry_in

        pulled = await ctx.images.ensure(pod, container, ctx.secret, events)
        if pulled.image is None:
            wait(pulled.reason, pulled.message, pulled.retry_in or ctx.config.retry_interval)
            return None
        image = pulled.image
        try:
            spec = dataclasses.replace(await self._spec(pod, record, sandbox, volumes, image, memory_capacity),
                                       pid_namespace_of=pid_namespace_of)
        except (EnvError, VolumeError) as err:
            message = err.message if isinstance(err, VolumeError) else str(err)
            events("Warning", "Failed", f"Error: {message}")
            wait("CreateContainerConfigError", message, ctx.config.retry_interval)
            return None
        try:
            container_id = await ctx.runtime.create(spec)
        except ContainerConfigError as err:
            events("Warning", "Failed", f"Error: {err}")
            wait("CreateContainerConfigError", str(err), ctx.config.retry_interval)
            return None
        except RuntimeFailure as err:
            events("Warning", "Failed", f"Error: {err}")
            wait("CreateContainerError", str(err), ctx.config.retry_interval)
            return None
        events("Normal", "Created", f"Created container {record.name}")
        if record.previous is not None:       # keep only the last dead instance (lastState)
            try:
                await ctx.runtime.remove(record.previous.id)
            except RuntimeFailure as err:
                log.warning("removing container %s: %s", record.previous.id[:12], err)
        record.waiting_reason = record.waiting_message = ""
        try:
            await ctx.runtime.start(container_id)
        except StartFailed as err:
            events("Warning", "Failed", f"Error: {err}")
        record.adopt(await ctx.runtime.status(container_id))
        if record.current is not None and record.current.exit_code is None:
            events("Normal", "Started", f"Started container {record.name}")
        return container_id

    async def run_post_start(self, pod: Obj, record: ContainerRecord, sandbox: Sandbox) -> str | None:
        """The postStart hook of the current instance; a failure message or None."""
        if record.current is None:
            return None
        target = probe_target(sandbox, record.current.id, record.spec)
        return await post_start(self.ctx.runtime, pod, record.spec, target)

    async def _spec(self, pod: Obj, record: ContainerRecord, sandbox: Sandbox,
                    volumes: dict[str, PreparedVolume], image: Image,
                    memory_capacity: int) -> ContainerSpec:
        ctx = self.ctx
        container = record.spec
        meta = pod["metadata"]
        network = sandbox.network
        sources = EnvSources(config_map=ctx.config_map, secret=ctx.secret, services=ctx.services(),
                             host_ips=[ctx.network.node_ip], pod_ips=network.ips,
                             node_allocatable=ctx.node_allocatable)
        environment = container_env(pod, container, sources)
        events = ctx.events(pod)
        for source, keys in environment.skipped:
            events("Warning", "InvalidEnvironmentVariableNames",
                   f"Keys [{', '.join(keys)}] from the EnvFrom {source} were skipped since they "
                   "are considered invalid environment variable names.")
        env = image.config.env_for(environment.variables)
        command = image.config.command_for(expand_command(container.get("command"), env),
                                           expand_command(container.get("args"), env))
        if not command:
            raise EnvError("no command specified")
        mounts = ctx.volumes.mounts(container, volumes, env)
        taken = {m.container_path.rstrip("/") for m in mounts}
        if sandbox.hosts_file is not None and "/etc/hosts" not in taken:
            mounts.append(Mount(host_path=sandbox.hosts_file, container_path="/etc/hosts"))
        attempt = record.current.attempt + 1 if record.current is not None else 0
        termination = None
        message_path = str(container.get("terminationMessagePath") or "")
        if message_path and message_path not in taken:
            termination = (ctx.config.pods_dir / str(meta["uid"]) / "containers" / record.name
                           / secrets.token_hex(4))
            await asyncio.to_thread(_touch, termination)
            mounts.append(Mount(host_path=termination, container_path=message_path))
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return ContainerSpec(
            sandbox_id=sandbox.id, name=record.name, image=str(container.get("image", "")),
            image_id=image.id, layers=tuple(ctx.images.store.layer_dirs(image)),   # paths only
            command=tuple(command), env=tuple(env),
            working_dir=str(container.get("workingDir") or image.config.working_dir or ""),
            image_user=image.config.user, mounts=tuple(mounts),
            resources=dataclasses.replace(_resources(container), oom_score_adj=oom_score_adj(
                pod, container, memory_capacity)),
            security=_security(pod, container), tty=bool(container.get("tty")),
            stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
            stop_signal=image.config.stop_signal or "SIGTERM",
            log_path=self._log_path(pod, record.name, attempt), attempt=attempt,
            labels={POD_UID_LABEL: str(meta["uid"]), POD_NAME_LABEL: str(meta["name"]),
                    POD_NAMESPACE_LABEL: str(meta.get("namespace", "")),
                    CONTAINER_NAME_LABEL: record.name, CONTAINER_KIND_LABEL: record.kind},
            annotations={IMAGE_REF_ANNOTATION: reported_image(str(container.get("image", ""))),
                         IMAGE_ID_ANNOTATION: reported_image_id(image),
                         TERMINATION_LOG_ANNOTATION: str(termination or ""),
                         GRACE_ANNOTATION: str(grace if grace is not None else 30)})


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
