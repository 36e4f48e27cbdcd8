"""Helpers shared by the runc runtime tests."""

from __future__ import annotations

from skiff.kubelet.runtime.interface import ContainerSpec, ContainerStatus
from skiff.kubelet.runtime.runc import RuncRuntime


async def run_to_exit(runtime: RuncRuntime, spec: ContainerSpec) -> tuple[ContainerStatus, list[str]]:
    """Create, start and wait for a container; its status and log lines ("stream text")."""
    container_id = await runtime.create(spec)
    await runtime.start(container_id)
    status = await runtime.wait(container_id)
    lines = [f"{r.stream} {r.content.decode()}" async for r in runtime.logs(container_id)]
    return status, lines


async def start(runtime: RuncRuntime, spec: ContainerSpec) -> str:
    container_id = await runtime.create(spec)
    await runtime.start(container_id)
    return container_id
