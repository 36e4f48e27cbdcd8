"""A node without root inside ``skiff up --runtime process``: pods as host processes.

::

    kubelet            pods through the process runtime (kubelet/runtime/process.py):
    │                  user namespaces when the kernel allows them, else plain processes;
    │                  every pod on the host's network, podIP = 127.0.0.1
    ├─ kubelet server  logs / exec / attach / port-forward, on 127.0.0.1
    └─ userspace proxy NodePorts and load-balancer ports relayed on 127.0.0.1
                       (proxy/userspace.py: no ClusterIPs, no cluster DNS without root)

Nothing here needs root: no bridge, no routes, no nftables, no mounts on the host.
Stopping (cancellation) stops and removes every container (stop signal, then SIGKILL
after STOP_GRACE), every sandbox and the pods' volume directories (secrets are on
disk without root), and closes the proxy's listeners: no process is left behind.
A crash or kill -9 leaves the containers running instead; the next start adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..client.factory import InformerFactory
from ..client.rest import ApiClient
from .nodecleanup import remove_every_pod

if TYPE_CHECKING:
    from ..kubelet.agent import Kubelet
    from ..kubelet.runtime.process import ProcessRuntime

log = logging.getLogger(__name__)

NODE_IP = "127.0.0.1"
#: Seconds each container gets between its stop signal and SIGKILL when the node shuts down.
STOP_GRACE = 3.0


async def run_process_node(client: ApiClient, *, data_dir: Path, node_name: str,
                           started: asyncio.Event | None = None, isolation: str = "auto") -> None:
    """Run one rootless node until cancelled, then take it down completely.

    ``data_dir``: the node keeps ``kubelet/`` (runtime state, pod directories, logs) and
    ``images/`` (what ``skiff image import --data-dir`` fills) there.  ``isolation``:
    ``auto`` (user namespaces if they work), ``userns`` or ``plain``."""
    from ..kubelet.agent import Kubelet
    from ..kubelet.images.store import ImageStore
    from ..kubelet.locator import RuntimeLocator
    from ..kubelet.podnetworking import LoopbackNetwork
    from ..kubelet.runtime.process import ProcessRuntime
    from ..kubelet.server import KubeletServer
    from ..proxy.userspace import UserspaceProxy

    runtime = ProcessRuntime(data_dir / "kubelet" / "runtime", isolation=isolation)
    mode = await runtime.isolation()
    log.info("process runtime: %s%s", mode, f" ({runtime.isolation_note})" if runtime.isolation_note else "")
    server = KubeletServer(runtime, RuntimeLocator(runtime))
    port = await server.start(NODE_IP, 0, None)
    kubelet = Kubelet(client, node_name=node_name, data_dir=data_dir / "kubelet", pod_cidr=None,
                      runtime=runtime, images=ImageStore(data_dir / "images"),
                      network=LoopbackNetwork(NODE_IP), node_ip=NODE_IP, kubelet_port=port)
    informers = InformerFactory(client)
    proxy = UserspaceProxy(node_name=node_name, node_ips=(NODE_IP,))
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(kubelet.run(), name="kubelet")
            await kubelet.ready.wait()
            proxied = asyncio.Event()
            group.create_task(proxy.run(client, informers=informers, started=proxied),
                              name="userspace-proxy")
            group.create_task(informers.run(), name="node-informers")
            await proxied.wait()
            if started is not None:
                started.set()
    finally:
        informers.stop()
        await server.close()
        await _take_down(runtime, kubelet)


async def _take_down(runtime: ProcessRuntime, kubelet: Kubelet) -> None:
    """Stop and remove every container and sandbox, then the pods' directories."""
    await remove_every_pod(runtime, kubelet, STOP_GRACE)
    with contextlib.suppress(Exception):
        await runtime.close()
