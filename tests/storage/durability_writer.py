"""A writer process for test_durability.py: writes forever, announcing each write.

Usage: ``python durability_writer.py DB_PATH [CONCURRENCY]``

For every write it prints (and flushes) one line before starting it and one
after the store returned, i.e. after the write was acknowledged::

    try <op> <key> <value>
    ack <revision> <op> <key> <value>

``op`` is ``create``, ``update`` or ``delete`` (a delete's value is ``-``).
The test kills this process with SIGKILL at some point and then checks the
database against the lines it received.

With ``CONCURRENCY`` N > 1, N writers create keys ``/registry/pods/w<n>/k<i>``
at the same time (so their writes share commits), each announcing as above;
writer 0 also prints ``commits <transactions> <revision>`` now and then.
"""

from __future__ import annotations

import asyncio
import sys

from skiff.storage.sqlite import SqliteBackend


def operation(i: int) -> tuple[str, str, str]:
    """The i-th write of the stream: creates, updates of fresh keys, deletes of older ones."""
    phase = i % 4
    if phase == 2:
        return "update", f"/registry/pods/ns/p{i - 1:06d}", f"u{i}-" + "y" * (i % 5 * 700)
    if phase == 3:
        return "delete", f"/registry/pods/ns/p{i - 3:06d}", "-"
    return "create", f"/registry/pods/ns/p{i:06d}", f"v{i}-" + "x" * (i % 7 * 900)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(path: str) -> None:
    store = SqliteBackend(path, compact_interval=0)
    await store.start()
    i = 0
    while True:
        op, key, value = operation(i)
        say(f"try {op} {key} {value}")
        if op == "create":
            kv = await store.create(key, value.encode())
        elif op == "update":
            kv = await store.update(key, value.encode(), expected_mod_revision=0)
        else:
            kv = await store.delete(key)
        say(f"ack {kv.mod_revision} {op} {key} {value}")
        i += 1


async def concurrent(path: str, writers: int) -> None:
    store = SqliteBackend(path, compact_interval=0)
    await store.start()

    async def writer(n: int) -> None:
        i = 0
        while True:
            key, value = f"/registry/pods/w{n}/k{i:06d}", f"v{n}-{i}-" + "x" * (i % 7 * 300)
            say(f"try create {key} {value}")
            kv = await store.create(key, value.encode())
            say(f"ack {kv.mod_revision} create {key} {value}")
            if n == 0 and i % 50 == 49:  # how many commits carried the writes so far
                say(f"commits {store.transactions} {store.revision}")
            i += 1

    await asyncio.gather(*(writer(n) for n in range(writers)))


if __name__ == "__main__":
    if len(sys.argv) > 2 and int(sys.argv[2]) > 1:
        asyncio.run(concurrent(sys.argv[1], int(sys.argv[2])))
    else:
        asyncio.run(main(sys.argv[1]))
