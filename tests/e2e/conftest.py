"""Fixtures of the end-to-end suite (see e2e_support.py for how a cluster is driven).

* ``cluster``        session-scoped ``skiff up --runtime fake --nodes 1``, shared by every
                     test that needs no special flags;
* ``ns``             a fresh namespace per test, created and deleted through kubectl;
* ``start_cluster``  a factory for private clusters (durability, compaction), each
                     stopped and removed when the test that made it ends;
* ``runc_node``      session-scoped ``skiff up --runtime runc``: real containers, pod
                     network, Services and DNS on this host, with busybox imported.
                     A real node owns the host's ``skiff0`` bridge and 10.244.0.0/24, so
                     only one runs at a time: the fixture holds the host-wide lock
                     RUNC_NODE_LOCK while its cluster lives, and anything else that starts
                     ``skiff up --runtime runc`` here (benches, other runs) takes it too.
                     At the end nothing may be left: mounts, bridge, nft tables.

Every test in this directory is marked ``e2e``.  A failing test's report gets the
tail of each involved server's stderr as an extra section.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from e2e_support import SkiffProcess, dns_label, new_base, unique

from skiff.kubelet.runtime.nskeeper import leftovers as keeper_leftovers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


#: Held (flock) by whoever runs the host's one runc node; see the module docstring.
RUNC_NODE_LOCK = Path("/tmp/skiff-runc-node.lock")


@pytest.fixture(scope="session")
def runc_node() -> Iterator[SkiffProcess]:
    with open(RUNC_NODE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits for another run's node to finish
        yield from _runc_node()


def _runc_node() -> Iterator[SkiffProcess]:
    # Metrics and HPAs every second (defaults 15 s): kubectl top and autoscaling tests
    # see in seconds what a default cluster shows within ~30 s.
    node = SkiffProcess(new_base("runc"), "--runtime", "runc", "--metric-resolution", "1s",
                        "--horizontal-pod-autoscaler-sync-period", "1s")
    node.import_busybox()
    node.start()
    try:
        yield node
    finally:
        node.stop()
        leftovers = _runc_leftovers(node.data_dir)
        node.remove()
        assert not leftovers, f"skiff up left these behind: {leftovers}"


def _runc_leftovers(data_dir: Path) -> list[str]:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if str(data_dir) in line]
    links = subprocess.run(["ip", "-o", "link", "show", "skiff0"], capture_output=True, text=True)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return (mounts + keeper_leftovers(data_dir / "kubelet" / "run" / "runtime")
            + (["bridge skiff0"] if links.returncode == 0 else [])
            + [t for t in tables.splitlines() if "skiff" in t])


@pytest.fixture(scope="session")
def cluster() -> Iterator[SkiffProcess]:
    proc = SkiffProcess(new_base("session"))
    try:
        proc.start()
        yield proc
    finally:
        proc.remove()


class ClusterFactory:
    """``start_cluster("--compact-retain", "10")`` -> a started private SkiffProcess."""

    def __init__(self) -> None:
        self.made: list[SkiffProcess] = []

    def __call__(self, *extra_args: str, nodes: int = 1) -> SkiffProcess:
        proc = SkiffProcess(new_base("private"), *extra_args, nodes=nodes)
        self.made.append(proc)
        proc.start()
        return proc

    def remove_all(self) -> None:
        for proc in self.made:
            proc.remove()


@pytest.fixture
def start_cluster() -> Iterator[ClusterFactory]:
    factory = ClusterFactory()
    try:
        yield factory
    finally:
        factory.remove_all()


@pytest.fixture
def ns(request: pytest.FixtureRequest, cluster: SkiffProcess) -> Iterator[str]:
    """A fresh namespace for one test, created and deleted with kubectl."""
    name = unique(dns_label("e2e-" + request.node.name.removeprefix("test_")))
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        if cluster.running:
            cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found",
                            check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    procs: list[SkiffProcess] = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, SkiffProcess):
            procs.append(value)
        elif isinstance(value, ClusterFactory):
            procs.extend(value.made)
    for proc in dict.fromkeys(procs):
        report.sections.append((f"skiff server stderr ({proc.base.name}, last lines)",
                                proc.stderr_tail()))
