"""The RBAC objects in memory, kept current by the API server's watch cache.

::

    start():  range /registry/rbac.authorization.k8s.io/  (at revision R)
              subscribe to the watch cache after R, with a synchronous sink:
              every committed Role/ClusterRole/(Cluster)RoleBinding change is
              applied in the same pump pass that feeds HTTP watchers

    roles     (namespace, name) -> compiled rules      ("" namespace = ClusterRole)
    bindings  (namespace, name) -> Binding             ("" namespace = ClusterRoleBinding)
    by_user / by_group  subject -> binding keys        (a request looks up only its own)

``generation`` grows with every change; caches derived from the policy (the
authorizer's decisions) compare it instead of being told.  Listeners (the
ClusterRole aggregator) are called after each change with the changed key.
Nothing here scans the store per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson

from ...storage.interface import Backend
from ..objects import REGISTRY_ROOT
from ..watchcache import CacheEvent, Subscription, WatchCache
from .rules import Rule, compile_rules
from .user import UserInfo, service_account_user_name

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
PREFIX = f"{REGISTRY_ROOT}{GROUP}/"
Key = tuple[str, str]  # (namespace, name); "" namespace = cluster-scoped


@dataclass(frozen=True, slots=True)
class Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str
    name: str
    role_kind: str  # Role | ClusterRole
    role_name: str
    users: frozenset[str]  # user names, ServiceAccounts as system:serviceaccount:<ns>:<name>
    groups: frozenset[str]
    #: (kind, shown name, matched user or group name) for "allowed by" reasons
    subjects: tuple[tuple[str, str, str], ...]

    def applies_to(self, user: UserInfo) -> bool:
        if user.name in self.users:
            return True
        return any(g in self.groups for g in user.groups)

    def subject_for(self, user: UserInfo) -> str:
        for kind, shown, match in self.subjects:
            if (kind == "Group" and match in user.groups) or (kind != "Group" and match == user.name):
                return f'{kind} "{shown}"'
        return f'User "{user.name}"'


def binding_from(obj: Obj, namespace: str) -> Binding:
    users: set[str] = set()
    groups: set[str] = set()
    shown: list[tuple[str, str, str]] = []
    for s in obj.get("subjects") or []:
        kind, name = s.get("kind", ""), s.get("name", "")
        if kind == "User":
            users.add(name)
            shown.append((kind, name, name))
        elif kind == "Group":
            groups.add(name)
            shown.append((kind, name, name))
        elif kind == "ServiceAccount":
            sa_ns = s.get("namespace") or namespace
            if sa_ns:
                user = service_account_user_name(sa_ns, name)
                users.add(user)
                shown.append((kind, f"{sa_ns}/{name}", user))
    ref = obj.get("roleRef") or {}
    return Binding("RoleBinding" if namespace else "ClusterRoleBinding", namespace,
                   obj["metadata"]["name"], ref.get("kind", ""), ref.get("name", ""),
                   frozenset(users), frozenset(groups), tuple(shown))


def _parse_key(key: str) -> tuple[str, Key] | None:
    """``/registry/rbac.../roles/ns/name`` -> ("roles", ("ns", "name"))."""
    parts = key[len(PREFIX):].split("/")
    if len(parts) == 3:
        return parts[0], (parts[1], parts[2])
    if len(parts) == 2:
        return parts[0], ("", parts[1])
    return None


class PolicyCache:
    def __init__(self) -> None:
        self.roles: dict[Key, tuple[Rule, ...]] = {}
        self.role_objects: dict[Key, Obj] = {}
        self.bindings: dict[Key, Binding] = {}
        self.by_user: dict[str, set[Key]] = {}
        self.by_group: dict[str, set[Key]] = {}
        self.generation = 0
        self.revision = 0
        self.listeners: list[Callable[[str, Key], None]] = []
        self._synced = asyncio.Event()
        self._advanced: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- feeding ------------------------------------------------------------------------

    async def start(self, backend: Backend, watch_cache: WatchCache | None) -> None:
        """Load every RBAC object and follow changes (returns once loaded)."""
        sub = await self._load(backend, watch_cache)
        self._task = asyncio.create_task(self._follow(backend, watch_cache, sub), name="skiff-rbac-policy")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _load(self, backend: Backend, watch_cache: WatchCache | None) -> Subscription | None:
        result = await backend.range(PREFIX)
        self._clear()
        for kv in result.kvs:
            self._put(kv.key, orjson.loads(kv.value))
        self.revision = result.revision
        self._changed("", ("", ""))
        self._synced.set()
        if watch_cache is None:
            return None
        sub = watch_cache.subscribe(PREFIX, result.revision)
        if sub is None:
            return None
        for ev in sub.drain():
            self._apply(ev)
        sub.sink = self._apply
        return sub

    async def _follow(self, backend: Backend, watch_cache: WatchCache | None,
                      sub: Subscription | None) -> None:
        while True:
            if sub is None:  # no watch cache yet (or it stopped): poll slowly
                await asyncio.sleep(1.0)
                sub = await self._load(backend, watch_cache)
                continue
            await sub.wait(3600.0)
            for ev in sub.drain():
                self._apply(ev)
            if sub.closed:
                await sub.close()
                sub = await self._load(backend, watch_cache)

    def _apply(self, ev: CacheEvent) -> bool:
        if ev.type == "DELETED":
            self._remove(ev.key)
        else:
            self._remove(ev.key)
            self._put(ev.key, orjson.loads(ev.value))
        self.revision = max(self.revision, ev.revision)
        parsed = _parse_key(ev.key)
        if parsed is not None:
            self._changed(parsed[0], parsed[1])
        return True

    async def wait_for(self, revision: int, timeout: float = 5.0) -> None:
        """Return once changes up to ``revision`` are applied (tests, read-your-writes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.revision < revision:
            self._advanced = self._advanced or asyncio.Event()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"RBAC policy at revision {self.revision}, wanted {revision}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._advanced.wait(), remaining)

    # -- the indexes ----------------------------------------------------------------------

    def _clear(self) -> None:
        self.roles.clear()
        self.role_objects.clear()
        self.bindings.clear()
        self.by_user.clear()
        self.by_group.clear()

    def _put(self, key: str, obj: Obj) -> None:
        parsed = _parse_key(key)
        if parsed is None:
            return
        plural, k = parsed
        if plural in ("roles", "clusterroles"):
            self.roles[k] = compile_rules(obj.get("rules"))
            if plural == "clusterroles":
                self.role_objects[k] = obj
        elif plural in ("rolebindings", "clusterrolebindings"):
            binding = binding_from(obj, k[0])
            self.bindings[k] = binding
            for user in binding.users:
                self.by_user.setdefault(user, set()).add(k)
            for group in binding.groups:
                self.by_group.setdefault(group, set()).add(k)

    def _remove(self, key: str) -> None:
        parsed = _parse_key(key)
        if parsed is None:
            return
        plural, k = parsed
        if plural in ("roles", "clusterroles"):
            self.roles.pop(k, None)
            self.role_objects.pop(k, None)
            return
        binding = self.bindings.pop(k, None)
        if binding is None:
            return
        for index, subjects in ((self.by_user, binding.users), (self.by_group, binding.groups)):
            for s in subjects:
                keys = index.get(s)
                if keys is not None:
                    keys.discard(k)
                    if not keys:
                        del index[s]

    def _changed(self, plural: str, key: Key) -> None:
        self.generation += 1
        if self._advanced is not None:
            self._advanced.set()
            self._advanced = None
        for listener in self.listeners:
            listener(plural, key)

    # -- resolution -----------------------------------------------------------------------

    def bindings_for(self, user: UserInfo, namespace: str) -> list[Binding]:
        """ClusterRoleBindings for ``user``, then RoleBindings in ``namespace`` (if any)."""
        keys: set[Key] = set(self.by_user.get(user.name, ()))
        for group in user.groups:
            keys.update(self.by_group.get(group, ()))
        cluster = [self.bindings[k] for k in keys if not k[0]]
        local = [self.bindings[k] for k in keys if namespace and k[0] == namespace]
        cluster.sort(key=lambda b: b.name)
        local.sort(key=lambda b: b.name)
        return cluster + local

    def role_rules(self, role_kind: str, role_name: str, namespace: str) -> tuple[Rule, ...] | None:
        """The rules a roleRef names (None when the role does not exist)."""
        if role_kind == "ClusterRole":
            return self.roles.get(("", role_name))
        if role_kind == "Role" and namespace:
            return self.roles.get((namespace, role_name))
        return None

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """Every rule granted to ``user`` in ``namespace`` and errors (missing roles)."""
        rules: list[Rule] = []
        errors: list[str] = []
        for b in self.bindings_for(user, namespace):
            found = self.role_rules(b.role_kind, b.role_name, b.namespace)
            if found is None:
                errors.append(missing_role(b.role_kind, b.role_name))
                continue
            rules.extend(found)
        return rules, errors

    def cluster_roles(self) -> Iterable[tuple[str, Obj]]:
        for (ns, name), obj in self.role_objects.items():
            if not ns:
                yield name, obj


def missing_role(kind: str, name: str) -> str:
    return f'{kind.lower()}.{GROUP} "{name}" not found'
