"""``kubectl get componentstatuses`` for the components ``skiff up`` runs.

kube-apiserver answers ComponentStatus by probing the scheduler's, the controller
manager's and etcd's health endpoints.  skiff's cluster knows its components directly,
so it asks them: a component is Healthy while its task or process runs, and the store
(``etcd-0``, the name kubectl users know) while it answers a read::

    scheduler            Healthy   ok
    controller-manager   Healthy   ok
    etcd-0               Healthy   ok

Registered with the API server as the read-only source of ``componentstatuses``
(skiff.apiserver.readonly).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Obj = dict[str, Any]
#: name -> a check that returns None when healthy, else what is wrong
Check = Callable[[], Awaitable[str | None]]


def component_status(name: str, error: str | None) -> Obj:
    condition: Obj = {"type": "Healthy", "status": "True" if error is None else "False"}
    if error is None:
        condition["message"] = "ok"
    else:
        condition["error"] = error
    return {"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": name},
            "conditions": [condition]}


class ComponentStatuses:
    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks

    async def _status(self, name: str) -> Obj:
        try:
            error = await self.checks[name]()
        except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy component
            error = f"{type(exc).__name__}: {exc}"
        return component_status(name, error)

    async def get(self, namespace: str, name: str) -> Obj | None:
        return await self._status(name) if name in self.checks else None

    async def list(self, namespace: str) -> list[Obj]:
        return [await self._status(name) for name in self.checks]
