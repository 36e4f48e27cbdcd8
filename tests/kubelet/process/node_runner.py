"""A process-runtime node for the tests, run by an unprivileged user::

    python node_runner.py SERVER DATA_DIR ARCHIVE ISOLATION

imports the image archive into ``DATA_DIR/images`` (as this user), runs
:func:`skiff.cli.process_node.run_process_node` as node ``node-1``, prints
``ready`` once it serves, and takes everything down on SIGTERM.  It runs on uvloop,
as ``skiff up`` does (the loop's subprocesses differ from asyncio's own).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import uvloop

from skiff.cli.process_node import run_process_node
from skiff.client.rest import ApiClient
from skiff.kubelet.images.store import ImageStore


async def main(server: str, data_dir: Path, archive: Path, isolation: str) -> None:
    store = ImageStore(data_dir / "images")
    if not store.list():
        await asyncio.to_thread(store.import_archive, archive)
    client = ApiClient(server)
    started = asyncio.Event()
    node = asyncio.create_task(run_process_node(client, data_dir=data_dir, node_name="node-1",
                                                started=started, isolation=isolation))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, node.cancel)
    ready = asyncio.ensure_future(started.wait())
    await asyncio.wait({ready, node}, return_when=asyncio.FIRST_COMPLETED)
    if started.is_set():
        print("ready", flush=True)
    try:
        await node
    except asyncio.CancelledError:
        pass
    finally:
        ready.cancel()
        await client.close()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]))
