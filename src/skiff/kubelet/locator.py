"""Which runtime container a ``kubectl logs|exec|attach|port-forward`` means.

The kubelet's streaming server (:mod:`skiff.kubelet.server`) asks a
:class:`~skiff.kubelet.server.ContainerLocator`; this one answers from the
runtime itself, using the labels the kubelet puts on every sandbox and container
(``io.kubernetes.pod.namespace``, ``io.kubernetes.pod.name``,
``io.kubernetes.container.name``) and each container's restart ``attempt``:

* the current instance is the highest attempt of that container name;
* ``previous`` is the one before it, which must have exited.

Reading the runtime (not the kubelet's memory) keeps it right across kubelet
restarts, when containers are adopted.
"""

from __future__ import annotations

from pathlib import Path

from .containerstart import CONTAINER_NAME_LABEL
from .podsandbox import POD_NAME_LABEL, POD_NAMESPACE_LABEL
from .runtime.interface import ContainerState, Runtime

HOST_NETNS = Path("/proc/self/ns/net")


class RuntimeLocator:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def find(self, namespace: str, pod: str, container: str, *,
                   previous: bool = False) -> str | None:
        instances = sorted(
            (c for c in await self.runtime.list()
             if c.labels.get(POD_NAMESPACE_LABEL) == namespace
             and c.labels.get(POD_NAME_LABEL) == pod
             and c.labels.get(CONTAINER_NAME_LABEL) == container),
            key=lambda c: c.attempt, reverse=True)
        if not previous:
            return instances[0].id if instances else None
        older = [c for c in instances[1:] if c.state == ContainerState.EXITED]
        return older[0].id if older else None

    async def pod_netns(self, namespace: str, pod: str) -> Path | None:
        for sandbox in await self.runtime.list_sandboxes():
            if (sandbox.labels.get(POD_NAMESPACE_LABEL, sandbox.namespace) == namespace
                    and sandbox.labels.get(POD_NAME_LABEL, sandbox.name) == pod):
                return sandbox.netns_path or HOST_NETNS
        return None
