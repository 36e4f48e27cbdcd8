"""What a real node removes of its pods when it stops (``skiff up`` stopping, Ctrl-C).

Both real nodes (node.py: runc; process_node.py: host processes) first do the same:
stop and remove every container, then every sandbox -- each group all at once, since
each container may take its grace period -- then stop the volume manager's token
renewals and tear down every pod's volumes (tmpfs secrets, bind mounts), so nothing
stays mounted.  Failures are skipped so that the rest is still removed.  What comes
after (pod networks, the bridge, the proxy's rules) is each node's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..kubelet.agent import Kubelet
    from ..kubelet.runtime.interface import Runtime


async def remove_every_pod(runtime: Runtime, kubelet: Kubelet, grace: float) -> None:
    """Containers, then sandboxes, then the pods' volumes; errors are skipped."""
    async def remove_container(container_id: str) -> None:
        with contextlib.suppress(Exception):
            await runtime.stop(container_id, grace)
        with contextlib.suppress(Exception):
            await runtime.remove(container_id)

    async def remove_sandbox(sandbox_id: str) -> None:
        with contextlib.suppress(Exception):
            await runtime.stop_sandbox(sandbox_id, grace)
        with contextlib.suppress(Exception):
            await runtime.remove_sandbox(sandbox_id)

    with contextlib.suppress(Exception):
        await asyncio.gather(*(remove_container(c.id) for c in await runtime.list()))
    with contextlib.suppress(Exception):
        await asyncio.gather(*(remove_sandbox(s.id) for s in await runtime.list_sandboxes()))
    volumes = kubelet.ctx.volumes
    with contextlib.suppress(Exception):
        await volumes.close()  # token renewals stop
    for uid in volumes.known_pods():
        with contextlib.suppress(Exception):
            await volumes.teardown(uid)
