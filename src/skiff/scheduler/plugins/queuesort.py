"""PrioritySort: the active queue's order — higher ``spec.priority`` first, then earlier arrival."""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle

NAME = "PrioritySort"


class PrioritySort:
    name = NAME

    def less(self, a: Any, b: Any) -> bool:
        """``a`` and ``b`` are queued pods with ``.pod.priority`` and ``.timestamp``."""
        pa: int = a.pod.priority
        pb: int = b.pod.priority
        return pa > pb or (pa == pb and bool(a.timestamp < b.timestamp))


def new(args: Mapping[str, Any], handle: Handle) -> PrioritySort:
    return PrioritySort()
