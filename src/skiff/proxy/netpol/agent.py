"""NetworkPolicyAgent: NetworkPolicies, Pods and Namespaces from the API, enforced in
the node's nftables table.

::

    informers (NetworkPolicies, Pods of every node, Namespaces)
        │ handlers keep the parsed view (.policy, .inventory) up to date and
        │ wake the sync loop only when something policy reads has changed
        ▼
    sync loop ── wait ``coalesce`` seconds (a burst of changes → one sync)
        │    ── .compiler on a worker thread ──▶ .ruleset
        ├─ first sync, after a failure, every ``resync_period``: the whole table,
        │  one transaction
        └─ otherwise: the difference to what is applied, one transaction (nothing
           when nothing changed) ──▶ waiters notified

Starting: nothing is written before all three caches are filled, so a pod is
never isolated with an empty list of peers. The first sync replaces whatever
table an earlier run of the agent left (a crash) in one transaction: allowed
traffic flows throughout. Stopping removes the table (``delete_on_exit``).
(Starting, the loop, retries and stopping are ..tablesync's, shared with the
service proxy.)
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ...api.selectors import SelectorError
from ...client.factory import InformerFactory
from ...client.informer import Informer, object_key
from ...client.resources import NAMESPACES, PODS, Resource
from ...client.rest import ApiClient
from ..nft import Nft
from ..tablesync import TableSync
from .compiler import Compiled, compile_policies
from .inventory import PodInfo, namespace_labels, pod_info
from .policy import Policy, parse_policy
from .ruleset import Ruleset, build, default_table_name, delete_text, full_text, transaction

Obj = dict[str, Any]
_V = TypeVar("_V")
log = logging.getLogger(__name__)

NSENTER = "nsenter"
NETWORKPOLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", kind="NetworkPolicy")


@dataclass(frozen=True)
class SyncRecord:
    full: bool
    isolated_pods: int
    seconds: float
    characters: int              # size of the transaction text (0: nothing to change)


class NetworkPolicyAgent(TableSync):
    """Enforces NetworkPolicy for the pods of one node (see module docstring)."""

    def __init__(self, *, node_name: str, bridge_name: str, node_netns: Path | None = None,
                 table: str | None = None, coalesce: float = 0.05,
                 resync_period: float = 3600.0) -> None:
        self.node_name = node_name
        self.bridge_name = bridge_name
        self.table = table or default_table_name(bridge_name)
        super().__init__(Nft(node_netns), f"network policy {self.table}",
                         resync_period=resync_period, coalesce=coalesce)
        #: What is applied (its :meth:`Compiled.permits` answers for the kernel's rules).
        self.compiled = Compiled()
        self.syncs: collections.deque[SyncRecord] = collections.deque(maxlen=10_000)
        #: The text of the last transaction applied ("" when a sync changed nothing).
        self.last_transaction = ""
        self._applied: Ruleset | None = None      # None: the table must be written whole
        self._policies: dict[str, Policy] = {}
        self._pods: dict[str, PodInfo] = {}
        self._namespaces: dict[str, dict[str, str]] = {}
        self._dirty = False
        self._busy = False

    # -- what others read -----------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Everything the informers reported is applied."""
        return not self._dirty and not self._busy and self._applied is not None

    def permits(self, direction: str, pod_ip: str, peer_ip: str, protocol: str,
                port: int | None = None) -> bool:
        """What the applied rules do with a new connection (see Compiled.permits)."""
        return self.compiled.permits(direction, pod_ip, peer_ip, protocol, port)

    # -- informer handlers --------------------------------------------------------

    def _mark(self) -> None:
        self._dirty = True
        self._wake.set()

    def _keep(self, table: dict[str, _V], key: str, value: _V | None) -> None:
        """Hold ``value`` under ``key`` (None: drop the key); a change wakes the sync loop."""
        if value is None:
            if table.pop(key, None) is not None:
                self._mark()
        elif table.get(key) != value:
            table[key] = value
            self._mark()

    def _policy_event(self, obj: Obj) -> None:
        key = object_key(obj)
        try:
            policy: Policy | None = parse_policy(obj)
        except (ValueError, SelectorError) as error:
            log.warning("network policy %s is not enforced: %s", key, error)
            policy = None
        self._keep(self._policies, key, policy)

    def _policy_deleted(self, obj: Obj) -> None:
        self._keep(self._policies, object_key(obj), None)

    def _pod_event(self, obj: Obj) -> None:
        self._keep(self._pods, object_key(obj), pod_info(obj))

    def _pod_deleted(self, obj: Obj) -> None:
        self._keep(self._pods, object_key(obj), None)

    def _namespace_event(self, obj: Obj) -> None:
        self._keep(self._namespaces, object_key(obj), namespace_labels(obj))

    def _namespace_deleted(self, obj: Obj) -> None:
        self._keep(self._namespaces, object_key(obj), None)

    # -- running ------------------------------------------------------------------

    async def run(self, client: ApiClient, *, informers: InformerFactory | None = None,
                  started: asyncio.Event | None = None, delete_on_exit: bool = True) -> None:
        """Sync until cancelled. ``informers``: a shared factory the caller runs (by
        default the agent runs its own). ``started`` is set once the first sync is in
        place; its failure is raised, later failures are retried."""
        await self._check_bridge()
        await self._run(client, informers=informers, started=started, delete_on_exit=delete_on_exit)

    def _watch(self, factory: InformerFactory) -> list[Informer]:
        policies = factory.informer(NETWORKPOLICIES)
        pods = factory.informer(PODS)
        namespaces = factory.informer(NAMESPACES)
        policies.add_handler(on_add=self._policy_event, on_update=lambda _o, new: self._policy_event(new),
                             on_delete=self._policy_deleted)
        pods.add_handler(on_add=self._pod_event, on_update=lambda _o, new: self._pod_event(new),
                         on_delete=self._pod_deleted)
        namespaces.add_handler(on_add=self._namespace_event,
                               on_update=lambda _o, new: self._namespace_event(new),
                               on_delete=self._namespace_deleted)
        return [policies, pods, namespaces]

    async def delete_rules(self) -> None:
        """Remove the agent's table (every pod is unrestricted again)."""
        await self.nft.apply(delete_text(self.table))
        self._applied = None
        self.compiled = Compiled()

    def _table_unknown(self) -> bool:
        return self._applied is None

    def _forget_applied(self) -> None:
        self._applied = None               # rewrite the whole table next time
        self._dirty = True

    async def _sync(self, *, full: bool) -> None:
        started = time.monotonic()
        self._busy = True
        self._dirty = False
        try:
            policies, pods = list(self._policies.values()), list(self._pods.values())
            namespaces = dict(self._namespaces)
            compiled, ruleset = await asyncio.to_thread(self._compile, policies, pods, namespaces)
            if full or self._applied is None:
                text = full_text(self.table, ruleset,
                                 f"skiff network policy of node {self.node_name}, bridge {self.bridge_name}")
                full = True
            else:
                text = transaction(self.table, self._applied, ruleset)
            if text:
                await self.nft.apply(text)
        except BaseException:
            self._dirty = True
            raise
        finally:
            self._busy = False
        self._applied, self.compiled, self.last_transaction = ruleset, compiled, text
        self.syncs.append(SyncRecord(full, len(compiled.pods), time.monotonic() - started, len(text)))
        await self._notify_applied()

    def _compile(self, policies: list[Policy], pods: list[PodInfo],
                 namespaces: dict[str, dict[str, str]]) -> tuple[Compiled, Ruleset]:
        compiled = compile_policies(policies, pods, namespaces, self.node_name)
        return compiled, build(compiled)

    async def _check_bridge(self) -> None:
        """Warn when pod-to-pod traffic on the bridge would bypass the forward hook."""
        links = await _ip_json(self.nft.netns, "-d", "link", "show", "dev", self.bridge_name)
        if not links:
            log.warning("network policy %s: bridge %s not found; only routed traffic is "
                        "filtered until it exists with nf_call_iptables on",
                        self.table, self.bridge_name)
            return
        data = (links[0].get("linkinfo") or {}).get("info_data") or {}
        if not data.get("nf_call_iptables"):
            log.warning("network policy %s: bridge %s has nf_call_iptables off: traffic between "
                        "pods of this node is not filtered", self.table, self.bridge_name)


async def _ip_json(netns: Path | None, *args: str) -> list[dict[str, Any]]:
    """``ip -j <args>`` in ``netns``; [] when it fails (e.g. no such device)."""
    prefix = [NSENTER, f"--net={netns}"] if netns is not None else []
    process = await asyncio.create_subprocess_exec(
        *prefix, "ip", "-j", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    out, _ = await process.communicate()
    if process.returncode != 0:
        return []
    result: list[dict[str, Any]] = json.loads(out or b"[]")
    return result


async def run_network_policy_agent(client: ApiClient, *, node_name: str, bridge_name: str,
                                   node_netns: Path | None = None,
                                   informers: InformerFactory | None = None,
                                   table: str | None = None, started: asyncio.Event | None = None,
                                   coalesce: float = 0.05) -> None:
    """Enforce NetworkPolicies for the pods of ``node_name`` until cancelled; the table
    (``skiff-netpol-<bridge_name>`` unless ``table`` is given, in ``node_netns``, None:
    this process's namespace) is removed on the way out.

    The node network (NodeNetwork.setup: the bridge with nf_call_iptables on) should
    exist first. ``informers``: a shared factory the caller runs; by default the
    agent runs its own (Pods of every node, Namespaces, NetworkPolicies).
    """
    agent = NetworkPolicyAgent(node_name=node_name, bridge_name=bridge_name, node_netns=node_netns,
                               table=table, coalesce=coalesce)
    await agent.run(client, informers=informers, started=started, delete_on_exit=True)
