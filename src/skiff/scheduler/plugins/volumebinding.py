"""VolumeBinding: a pod goes only where its PersistentVolumeClaims can be (or are) served.

The claims a pod mounts fall into three groups at PreFilter::

    missing / being deleted      ─▶ unresolvable: persistentvolumeclaim "x" not found
                                                  persistentvolumeclaim "x" is being deleted
    bound (volumeName + bind-completed)            ─▶ checked per node (Filter)
    unbound, class WaitForFirstConsumer, no volumeName ─▶ "delayed": chosen per node (Filter)
    any other unbound claim      ─▶ unresolvable: pod has unbound immediate PersistentVolumeClaims
                                    (the volume binder binds it; its update requeues the pod)

Filter, per node:

* every bound claim's volume exists (``node(s) unavailable due to one or more pvc(s)
  bound to non-existent pv(s)``) and its nodeAffinity admits the node
  (``node(s) had volume node affinity conflict``);
* every delayed claim, smallest request first, gets an Available volume that fits
  there (the binder's matching rules, volumes promised to other pods excluded) or
  else its class must be able to provision there (a provisioner other than
  ``kubernetes.io/no-provisioner``, allowedTopologies admitting the node); otherwise
  ``node(s) didn't find available persistent volumes to bind``.

All three rejections are unresolvable (preemption cannot help).  Binding cycle::

    Reserve   remember the node's choice; its static volumes are promised to this pod
    PreBind   static volume: PV.claimRef := claim (bound-by-controller)
              to provision:  claim annotated volume.kubernetes.io/selected-node=<node>
              then wait until every claim is bound (informer events, no polling);
              bindTimeoutSeconds (600) without that, or the provisioner giving up
              (selected-node removed) ─▶ error: the pod is retried with back-off
    Unreserve forget the promise

The plugin reads claims, volumes and classes from the scheduler's shared informers
(``handle.informers``) and writes through ``handle.client``; a bare Framework has
neither, and then VolumeBinding stands aside (SKIP).
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from ...client.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from ...controllers.persistentvolume import matching as mt
from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, error, unresolvable
from ..podinfo import PodInfo
from ..queue import PV_ADD, PV_UPDATE, STORAGE_CLASS_ADD
from ..snapshot import NodeInfo, Snapshot

Obj = dict[str, Any]

NAME = "VolumeBinding"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
DEFAULT_BIND_TIMEOUT = 600.0
_KEY = "PreFilter" + NAME


class VolumeLister(Protocol):
    """Where the plugin reads storage objects (the informers, or a test's dicts)."""

    def claim(self, namespace: str, name: str) -> Obj | None: ...

    def volume(self, name: str) -> Obj | None: ...

    def volumes(self) -> list[Obj]: ...

    def storage_class(self, name: str) -> Obj | None: ...


class InformerLister:
    """A :class:`VolumeLister` over shared informers of claims, volumes and classes."""

    def __init__(self, informers: Any) -> None:
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.pvs = informers.informer(PERSISTENTVOLUMES)
        self.classes = informers.informer(mt.STORAGE_CLASSES)

    def claim(self, namespace: str, name: str) -> Obj | None:
        found: Obj | None = self.claims.get_by(namespace, name)
        return found

    def volume(self, name: str) -> Obj | None:
        found: Obj | None = self.pvs.get(name)
        return found

    def volumes(self) -> list[Obj]:
        listed: list[Obj] = self.pvs.list()
        return listed

    def storage_class(self, name: str) -> Obj | None:
        found: Obj | None = self.classes.get(name) if name else None
        return found


@dataclass
class NodeChoice:
    """What binding the pod's delayed claims on one node takes."""

    static: list[tuple[Obj, Obj]] = field(default_factory=list)   # (claim, volume to bind it to)
    provision: list[Obj] = field(default_factory=list)              # claims the provisioner serves


@dataclass
class _State:
    bound: list[Obj]
    delayed: list[Obj]
    per_node: dict[str, NodeChoice] = field(default_factory=dict)
    chosen: NodeChoice | None = None

    def clone(self) -> _State:
        return _State(self.bound, self.delayed, dict(self.per_node), self.chosen)


def can_provision(cls: Obj | None, node: NodeInfo) -> bool:
    """The class has a provisioner and its allowedTopologies admit the node."""
    if cls is None or not cls.get("provisioner") or cls.get("provisioner") == mt.NO_PROVISIONER:
        return False
    terms = cls.get("allowedTopologies") or []
    if not terms:
        return True
    return any(all(node.labels.get(e.get("key", "")) in (e.get("values") or [])
                   for e in term.get("matchLabelExpressions") or []) for term in terms)


class VolumeBinding:
    name = NAME

    def __init__(self, lister: VolumeLister | None, *, client: Any = None,
                 bind_timeout: float = DEFAULT_BIND_TIMEOUT) -> None:
        self.lister = lister
        self.client = client
        self.bind_timeout = bind_timeout
        self._promised: dict[str, set[str]] = {}     # pod key -> volume names reserved for it
        self._waiters: set[asyncio.Event] = set()

    def changed(self, *_: Any) -> None:
        """A claim or volume changed: wake every PreBind waiting for bindings."""
        for event in self._waiters:
            event.set()

    # -- PreFilter / Filter --------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        if self.lister is None or not pod.pvc_names:
            return None, SKIP
        bound: list[Obj] = []
        delayed: list[Obj] = []
        for name in pod.pvc_names:
            claim = self.lister.claim(pod.namespace, name)
            if claim is None:
                return None, unresolvable(f'persistentvolumeclaim "{name}" not found')
            if mt.deleting(claim):
                return None, unresolvable(f'persistentvolumeclaim "{name}" is being deleted')
            if mt.is_fully_bound(claim):
                bound.append(claim)
            elif not (claim.get("spec") or {}).get("volumeName") and \
                    mt.is_delay_binding(claim, self.lister.storage_class(mt.claim_class(claim))):
                delayed.append(claim)
            else:
                return None, unresolvable(ERR_UNBOUND_IMMEDIATE)
        state.write(_KEY, _State(bound, delayed))
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        s: _State | None = state.read(_KEY)
        if s is None or self.lister is None:
            return SUCCESS
        for claim in s.bound:
            volume = self.lister.volume(str(claim["spec"]["volumeName"]))
            if volume is None:
                return unresolvable(ERR_PV_NOT_EXIST)
            if not mt.node_affinity_matches(volume, node.labels, node.name):
                return unresolvable(ERR_NODE_CONFLICT)
        choice = NodeChoice()
        if s.delayed:
            taken = {v for key, names in self._promised.items() if key != pod.key for v in names}
            volumes = self.lister.volumes()
            for claim in sorted(s.delayed, key=mt.requested):
                volume = mt.find_best_match(claim, volumes, delay_binding=True, node=node.node,
                                            excluded=taken)
                if volume is not None:
                    taken.add(volume["metadata"]["name"])
                    choice.static.append((claim, volume))
                elif can_provision(self.lister.storage_class(mt.claim_class(claim)), node):
                    choice.provision.append(claim)
                else:
                    return unresolvable(ERR_BIND_CONFLICT)
        s.per_node[node.name] = choice
        return SUCCESS

    # -- Reserve / PreBind -----------------------------------------------------------------

    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        s: _State | None = state.read(_KEY)
        if s is None:
            return SUCCESS
        choice = s.per_node.get(node_name)
        if choice is None:
            return error(f"no volume decision for node {node_name}")
        s.chosen = choice
        if choice.static:
            self._promised[pod.key] = {v["metadata"]["name"] for _, v in choice.static}
        return SUCCESS

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        self._promised.pop(pod.key, None)

    async def pre_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        s: _State | None = state.read(_KEY)
        choice = s.chosen if s is not None else None
        if choice is None or not (choice.static or choice.provision):
            return SUCCESS
        if self.client is None:
            return error("no API client to bind volumes with")
        try:
            await self._write(choice, node_name)
        except Exception as e:   # the API said no (conflict, gone...): a value for the caller
            return error(f"binding volumes: {e}")
        return await self._wait_bound(choice, node_name)

    async def _write(self, choice: NodeChoice, node_name: str) -> None:
        for claim, volume in choice.static:
            meta = claim["metadata"]
            body = copy.deepcopy(volume)
            body["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                                        "name": meta["name"], "uid": meta["uid"], "apiVersion": "v1",
                                        "resourceVersion": meta.get("resourceVersion", "")}
            body["metadata"].setdefault("annotations", {})[mt.ANN_BOUND_BY_CONTROLLER] = mt.YES
            await self.client.update(PERSISTENTVOLUMES, body)
        for claim in choice.provision:
            if mt.annotations_of(claim).get(mt.ANN_SELECTED_NODE) == node_name:
                continue
            meta = claim["metadata"]
            await self.client.patch(PERSISTENTVOLUMECLAIMS, meta["name"], {"metadata": {
                "annotations": {mt.ANN_SELECTED_NODE: node_name}}}, namespace=meta["namespace"])

    def _verdict(self, choice: NodeChoice, node_name: str, seen: set[str]) -> bool | str:
        """True: all bound; a string: why it will not happen; False: not yet.

        ``seen``: claims whose selected-node annotation the cache has shown; only for
        those does a missing annotation mean the provisioner gave up (the cache may
        simply not have caught up with our own write yet).
        """
        assert self.lister is not None
        done = True
        for claim, wanted in [(c, v["metadata"]["name"]) for c, v in choice.static] + \
                             [(c, "") for c in choice.provision]:
            meta = claim["metadata"]
            current = self.lister.claim(meta["namespace"], meta["name"])
            if current is None or current["metadata"].get("uid") != meta.get("uid"):
                return f'persistentvolumeclaim "{meta["name"]}" was deleted'
            if mt.is_fully_bound(current):
                if wanted and current["spec"]["volumeName"] != wanted:
                    return f'persistentvolumeclaim "{meta["name"]}" was bound to another volume'
                continue
            done = False
            if not wanted:
                if mt.annotations_of(current).get(mt.ANN_SELECTED_NODE) == node_name:
                    seen.add(meta["name"])
                elif meta["name"] in seen:
                    return f'provisioning failed for persistentvolumeclaim "{meta["name"]}"'
                continue
            volume = self.lister.volume(wanted)
            if volume is None:
                return f'persistentvolume "{wanted}" was deleted'
            if (volume.get("spec") or {}).get("claimRef") and not mt.is_bound_to(volume, current):
                return f'persistentvolume "{wanted}" was claimed by another claim'
        return done

    async def _wait_bound(self, choice: NodeChoice, node_name: str) -> Status:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bind_timeout
        woken = asyncio.Event()
        self._waiters.add(woken)
        seen: set[str] = set()
        try:
            while True:
                woken.clear()
                verdict = self._verdict(choice, node_name, seen)
                if verdict is True:
                    return SUCCESS
                if isinstance(verdict, str):
                    return error(f"binding volumes: {verdict}")
                left = deadline - loop.time()
                if left <= 0:
                    return error("binding volumes: timed out waiting for the condition")
                try:
                    async with asyncio.timeout(left):
                        await woken.wait()
                except TimeoutError:
                    pass
        finally:
            self._waiters.discard(woken)


def new(args: Mapping[str, Any], handle: Handle) -> VolumeBinding:
    timeout = float(args.get("bindTimeoutSeconds") or DEFAULT_BIND_TIMEOUT)
    if handle.informers is None:
        return VolumeBinding(None, client=handle.client, bind_timeout=timeout)
    lister = InformerLister(handle.informers)
    plugin = VolumeBinding(lister, client=handle.client, bind_timeout=timeout)
    event = handle.cluster_event

    def volume_added(volume: Obj) -> None:
        plugin.changed()
        if event is not None:
            event(PV_ADD)

    def volume_updated(old: Obj, new: Obj) -> None:
        plugin.changed()
        if event is not None and (mt.phase(old) != mt.phase(new) or
                                  (old.get("spec") or {}).get("claimRef") != (new.get("spec") or {}).get("claimRef")):
            event(PV_UPDATE)

    lister.claims.add_handler(on_add=plugin.changed, on_update=plugin.changed, on_delete=plugin.changed)
    lister.pvs.add_handler(on_add=volume_added, on_update=volume_updated, on_delete=plugin.changed)
    lister.classes.add_handler(on_add=lambda _: event(STORAGE_CLASS_ADD) if event is not None else None)
    return plugin
