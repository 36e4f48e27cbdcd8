"""Acknowledged writes survive kill -9 of the process that made them.

A child process (durability_writer.py) writes a stream of creates, updates
and deletes, printing ``ack ...`` after each write returned.  Once the test
has read N acknowledgements it SIGKILLs the child mid-stream, reopens the
database and checks that the state is exactly the acknowledged writes (plus,
at most, the one write that was in flight), and that the revision counter
carries on from there.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skiff.storage.sqlite import SqliteBackend

WRITER = Path(__file__).with_name("durability_writer.py")
DEADLINE_SECONDS = 30


class Writer:
    """The child process and the lines it printed so far."""

    def __init__(self, db: Path, concurrency: int = 1) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(db), str(concurrency)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self.lines: list[str] = []
        self._partial = b""

    def read_until_acks(self, wanted: int) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + DEADLINE_SECONDS
        while self.acks() < wanted:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "writer too slow"
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready and not self._read_chunk():
                raise AssertionError(f"writer exited early: {self._stderr()}")

    def kill_and_drain(self) -> None:
        self.proc.kill()  # SIGKILL: no atexit, no close(), no flush of anything
        self.proc.wait(timeout=DEADLINE_SECONDS)
        while self._read_chunk():
            pass

    def acks(self) -> int:
        return sum(1 for line in self.lines if line.startswith("ack "))

    def _read_chunk(self) -> bool:
        assert self.proc.stdout is not None
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            return False
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self.lines.extend(line.decode() for line in complete)
        return True

    def _stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE_SECONDS)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


State = dict[str, tuple[bytes, int, int]]  # key -> (value, create_revision, mod_revision)


def apply(state: State, revision: int, op: str, key: str, value: str) -> None:
    if op == "create":
        assert key not in state
        state[key] = (value.encode(), revision, revision)
    elif op == "update":
        state[key] = (value.encode(), state[key][1], revision)
    else:
        del state[key]


def parse(lines: list[str]) -> tuple[State, int, tuple[str, str, str] | None]:
    """The acknowledged state, its revision and the write in flight (if any)."""
    state: State = {}
    revision = 0
    pending: tuple[str, str, str] | None = None
    for line in lines:
        word, rest = line.split(" ", 1)
        if word == "try":
            op, key, value = rest.split(" ", 2)
            pending = (op, key, value)
        else:
            rev, op, key, value = rest.split(" ", 3)
            assert int(rev) == revision + 1, "acknowledged revisions must be consecutive"
            assert pending == (op, key, value)
            revision = int(rev)
            apply(state, revision, op, key, value)
            pending = None
    return state, revision, pending


@pytest.mark.parametrize("kill_after_acks", [1, 60, 700])
async def test_acknowledged_writes_survive_kill_9(tmp_path: Path, kill_after_acks: int) -> None:
    db = tmp_path / "store.db"
    writer = Writer(db)
    try:
        writer.read_until_acks(kill_after_acks)
        writer.kill_and_drain()
    finally:
        writer.stop()

    acked, acked_revision, pending = parse(writer.lines)
    assert acked_revision >= kill_after_acks
    candidates = [(acked, acked_revision)]
    if pending is not None:  # it may or may not have committed before the kill
        with_pending = dict(acked)
        apply(with_pending, acked_revision + 1, *pending)
        candidates.append((with_pending, acked_revision + 1))

    store = SqliteBackend(str(db), compact_interval=0)
    await store.start()
    try:
        everything = await store.range("")
        found = {kv.key: (kv.value, kv.create_revision, kv.mod_revision) for kv in everything.kvs}
        recovered_revision = store.revision
        assert (found, recovered_revision) in candidates
        next_kv = await store.create("/registry/pods/ns/after-restart", b"x")
        assert next_kv.mod_revision == recovered_revision + 1
    finally:
        await store.close()


async def test_acknowledged_concurrent_writes_survive_kill_9(tmp_path: Path) -> None:
    """Eight writers at once: their writes share commits (group commit), and still every
    acknowledged write is there after kill -9, with the revision it was acknowledged at."""
    db = tmp_path / "store.db"
    writer = Writer(db, concurrency=8)
    try:
        writer.read_until_acks(400)
        writer.kill_and_drain()
    finally:
        writer.stop()

    acked: State = {}
    in_flight: set[tuple[str, str]] = set()
    shared_commits = False
    for line in writer.lines:
        word, rest = line.split(" ", 1)
        if word == "commits":
            transactions, revision = map(int, rest.split())
            shared_commits |= transactions < revision
        elif word == "try":
            _, key, value = rest.split(" ", 2)
            in_flight.add((key, value))
        else:
            rev, _, key, value = rest.split(" ", 3)
            in_flight.discard((key, value))
            acked[key] = (value.encode(), int(rev), int(rev))
    assert shared_commits, "the concurrent writes never shared a commit"

    store = SqliteBackend(str(db), compact_interval=0)
    await store.start()
    try:
        found = {kv.key: (kv.value, kv.create_revision, kv.mod_revision) for kv in (await store.range("")).kvs}
        assert {k: found.get(k) for k in acked} == acked  # every acknowledged write, exactly
        extra = {(k, v[0].decode()) for k, v in found.items() if k not in acked}
        assert extra <= in_flight  # anything else was a write in flight at the kill
        assert store.revision == len(found) >= max(r for _, r, _ in acked.values())
    finally:
        await store.close()
