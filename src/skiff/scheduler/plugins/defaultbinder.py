"""DefaultBinder: bind by creating the pod's ``binding`` subresource through the handle's binder."""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle
from ..interface import SUCCESS, CycleState, Status, error
from ..podinfo import PodInfo

NAME = "DefaultBinder"


class DefaultBinder:
    name = NAME

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        binder = self._handle.binder
        if binder is None:
            return error("no binder configured")
        try:
            await binder(pod.pod, node_name)
        except Exception as e:  # the API said no (conflict, gone...): a value for the caller
            return error(f"binding rejected: {e}")
        return SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> DefaultBinder:
    return DefaultBinder(handle)
