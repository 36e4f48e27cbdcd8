"""One sync of one Deployment: its ReplicaSets in hand, and every write it makes.

:class:`DeploymentSync` is created per reconcile with a private copy of the
Deployment and of its (claimed) ReplicaSets.  The strategies (``rolling``,
``recreate``) call its steps, which mirror Kubernetes' deployment controller:

* :meth:`new_and_old` - find the new ReplicaSet (template == the Deployment's),
  sync its revision annotations, or create it (``<name>-<hash>``, revision
  max+1, ``NewReplicaSetCreated``);
* :meth:`scale` - the scaling-only sync (paused Deployments and plain
  ``spec.replicas`` changes), proportional across ReplicaSets mid-rollout;
* :meth:`scale_rs` - resize one ReplicaSet (+ desired/max-replicas
  annotations) and record ``ScalingReplicaSet``;
* :meth:`cleanup` - delete old ReplicaSets beyond ``revisionHistoryLimit``;
* :meth:`write_status` / :meth:`write_rollout_status` - status and conditions.

Every ReplicaSet write goes out with the resourceVersion the cache had, so a
stale cache costs a 409 and a retry, never a wrong write; the controller also
waits (write expectations) until its informer has seen each write.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ...api.errors import StatusError
from ...client.resources import DEPLOYMENTS, REPLICASETS
from ..events import NORMAL, WARNING
from ..ownership import owner_reference
from . import history as h
from . import progress as p
from . import replicas as r

if TYPE_CHECKING:
    from .controller import DeploymentController

Obj = dict[str, Any]


class DeploymentSync:
    """Steps of one Deployment sync (see module docstring)."""

    def __init__(self, ctl: "DeploymentController", key: str, d: Obj, rss: list[Obj]) -> None:
        self.ctl = ctl
        self.key = key
        self.d = copy.deepcopy(d)
        self.rss = [copy.deepcopy(rs) for rs in rss]
        self.now = ctl.clock.time()
        self.requeue_after: float | None = None

    @property
    def name(self) -> str:
        return str(self.d["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.d["metadata"]["namespace"])

    # -- the new ReplicaSet and the old ones ---------------------------------------

    async def new_and_old(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """(new ReplicaSet or None, old ReplicaSets), syncing the revision annotations."""
        existing = h.find_new(self.d, self.rss)
        old = h.find_old(existing, self.rss)
        new_revision = h.max_revision(old) + 1
        if existing is not None:
            return await self._sync_existing_new(existing, new_revision), old
        if not create:
            return None, old
        return await self._create_new(old, new_revision), old

    async def _sync_existing_new(self, rs: Obj, new_revision: int) -> Obj:
        rs_copy = copy.deepcopy(rs)
        most = r.desired_replicas(self.d) + r.max_surge(self.d)
        changed = h.set_new_rs_annotations(self.d, rs_copy, new_revision, exists=True,
                                           desired=r.desired_replicas(self.d), most=most)
        min_ready = self.d["spec"].get("minReadySeconds") or 0
        if (rs_copy["spec"].get("minReadySeconds") or 0) != min_ready:
            rs_copy["spec"]["minReadySeconds"] = min_ready
            changed = True
        if changed:
            rs_copy = await self.update_rs(rs_copy)
        status = copy.deepcopy(self.d.get("status") or {})
        needs_update = self._set_revision(h.annotation(rs_copy, h.REVISION_ANNOTATION) or "")
        if p.has_deadline(self.d) and p.condition(status, p.PROGRESSING) is None:
            p.set_condition(status, p.new_condition(
                p.PROGRESSING, "True", p.FOUND_NEW_RS,
                f'Found new replica set "{rs_copy["metadata"]["name"]}"', self.now))
            needs_update = True
        if needs_update:
            await self.update_status(status)
        return rs_copy

    def _set_revision(self, revision: str) -> bool:
        annotations = self.d["metadata"].setdefault("annotations", {})
        if not revision or annotations.get(h.REVISION_ANNOTATION) == revision:
            return False
        annotations[h.REVISION_ANNOTATION] = revision
        return True

    async def _create_new(self, old: list[Obj], new_revision: int) -> Obj | None:
        spec = self.d["spec"]
        status = copy.deepcopy(self.d.get("status") or {})
        template = copy.deepcopy(spec.get("template") or {})
        hash_ = h.template_hash(template, status.get("collisionCount"))
        template.setdefault("metadata", {}).setdefault("labels", {})[h.POD_TEMPLATE_HASH] = hash_
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[h.POD_TEMPLATE_HASH] = hash_
        name = f"{self.name}-{hash_}"
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": self.namespace,
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [owner_reference(self.d, api_version="apps/v1",
                                                             kind="Deployment")]},
            "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds") or 0,
                     "selector": selector, "template": template},
        }
        rs["spec"]["replicas"] = r.new_rs_replicas(self.d, old + [rs], rs)
        most = r.desired_replicas(self.d) + r.max_surge(self.d)
        h.set_new_rs_annotations(self.d, rs, new_revision, exists=False,
                                 desired=r.desired_replicas(self.d), most=most)
        already_existed = False
        try:
            created: Obj = await self.ctl.client.create(REPLICASETS, rs, namespace=self.namespace)
            self.ctl.written(self.key, created, None)
        except StatusError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                found = await self._get_rs(name)
                if found is not None and self._is_ours(found) and h.templates_equal(
                        found["spec"].get("template"), spec.get("template")):
                    created, already_existed = found, True  # our own, not yet in the cache
                else:
                    # A hash collision: count it, so the next attempt hashes differently.
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    await self.update_status(status)
                    raise
            else:
                message = f'Failed to create new replica set "{name}": {e.message}'
                p.set_condition(status, p.new_condition(p.REPLICA_FAILURE, "True",
                                                        p.FAILED_RS_CREATE, message, self.now))
                await self.update_status(status)
                self.ctl.record_event(self.d, WARNING, p.FAILED_RS_CREATE, message)
                raise
        replicas = r.spec_replicas(created)
        if not already_existed and replicas > 0:
            self._scaled_event("up", name, 0, replicas)
        needs_update = self._set_revision(str(new_revision))
        if not already_existed and p.has_deadline(self.d):
            p.set_condition(status, p.new_condition(
                p.PROGRESSING, "True", p.NEW_RS_CREATED, f'Created new replica set "{name}"',
                self.now))
            needs_update = True
        if needs_update:
            await self.update_status(status)
        self.rss.append(created)
        return created

    def _is_ours(self, rs: Obj) -> bool:
        return any(ref.get("controller") and ref.get("uid") == self.d["metadata"]["uid"]
                   for ref in rs["metadata"].get("ownerReferences") or [])

    async def _get_rs(self, name: str) -> Obj | None:
        try:
            found: Obj = await self.ctl.client.get(REPLICASETS, name, namespace=self.namespace)
            return found
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    # -- scaling ----------------------------------------------------------------------

    async def scale_rs(self, rs: Obj, new_scale: int, operation: str | None = None
                       ) -> tuple[bool, Obj]:
        """Resize ``rs`` (and refresh its replica annotations); (scaled?, the ReplicaSet)."""
        old_scale = r.spec_replicas(rs)
        if operation is None:
            if old_scale == new_scale:
                return False, rs
            operation = "up" if old_scale < new_scale else "down"
        rs_copy = copy.deepcopy(rs)
        most = r.desired_replicas(self.d) + r.max_surge(self.d)
        annotations_changed = h.set_replicas_annotations(rs_copy, r.desired_replicas(self.d), most)
        size_changed = old_scale != new_scale
        if not (size_changed or annotations_changed):
            return False, rs
        rs_copy["spec"]["replicas"] = new_scale
        updated = await self.update_rs(rs_copy)
        if size_changed:
            self._scaled_event(operation, rs["metadata"]["name"], old_scale, new_scale)
        return size_changed, updated

    def _scaled_event(self, operation: str, rs_name: str, old: int, new: int) -> None:
        self.ctl.record_event(self.d, NORMAL, "ScalingReplicaSet",
                              f"Scaled {operation} replica set {rs_name} from {old} to {new}")

    async def scale(self, new_rs: Obj | None, old: list[Obj]) -> None:
        """Bring the ReplicaSets to the Deployment's size (no template change involved)."""
        wanted = r.desired_replicas(self.d)
        only = _active_or_latest(new_rs, old)
        if only is not None:
            if r.spec_replicas(only) != wanted:
                await self.scale_rs(only, wanted)
            return
        if _saturated(self.d, new_rs):
            for rs in old:
                if r.spec_replicas(rs) > 0:
                    await self.scale_rs(rs, 0)
            return
        if not r.is_rolling(self.d):
            return
        active = [rs for rs in ([*old, new_rs] if new_rs is not None else old)
                  if r.spec_replicas(rs) > 0]
        allowed = wanted + r.max_surge(self.d) if wanted > 0 else 0
        to_add = allowed - r.total_spec(active)
        if to_add == 0:
            operation = ""
            ordered = active
        elif to_add > 0:
            operation, ordered = "up", h.by_size_then_age(active, newer_first=True)
        else:
            operation, ordered = "down", h.by_size_then_age(active, newer_first=False)
        added = 0
        sizes: list[int] = []
        for rs in ordered:
            share = r.proportion(rs, self.d, to_add, added) if to_add else 0
            sizes.append(r.spec_replicas(rs) + share)
            added += share
        if ordered and to_add:
            sizes[0] = max(0, sizes[0] + to_add - added)  # leftovers to the largest
        for rs, size in zip(ordered, sizes):
            if operation:
                await self.scale_rs(rs, size, operation)
            else:
                await self.scale_rs(rs, size)

    # -- history ---------------------------------------------------------------------

    async def cleanup(self, old: list[Obj]) -> None:
        for rs in h.to_clean_up(self.d, old):
            meta = rs["metadata"]
            try:
                await self.ctl.client.delete(REPLICASETS, meta["name"], namespace=self.namespace,
                                             preconditions={"uid": meta["uid"]})
            except StatusError as e:
                if e.code != 404:
                    raise

    # -- status ------------------------------------------------------------------------

    async def write_status(self, new_rs: Obj | None, old: list[Obj]) -> None:
        """syncDeploymentStatus: counts and the Available condition."""
        all_rss = old + ([new_rs] if new_rs is not None else [])
        status = p.calculate(self.d, all_rss, new_rs, self.now)
        if p.comparable(status) != p.comparable(self.d.get("status") or {}):
            await self.update_status(status)

    async def write_rollout_status(self, new_rs: Obj | None, old: list[Obj]) -> None:
        """syncRolloutStatus: also Progressing (and its deadline) and ReplicaFailure."""
        all_rss = old + ([new_rs] if new_rs is not None else [])
        status = p.rollout_status(self.d, all_rss, new_rs, self.now)
        if p.comparable(status) != p.comparable(self.d.get("status") or {}):
            await self.update_status(status)
        at = p.deadline_at(self.d, status)
        if at is not None and not p.is_complete(self.d, status):
            self.requeue_after = max(0.0, at - self.now) + 1.0

    async def check_paused_conditions(self) -> None:
        if not p.has_deadline(self.d):
            return
        status = copy.deepcopy(self.d.get("status") or {})
        cond = p.condition(status, p.PROGRESSING)
        if cond is not None and cond.get("reason") == p.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == p.PAUSED
        paused = bool(self.d["spec"].get("paused"))
        if paused and not paused_cond:
            p.set_condition(status, p.new_condition(p.PROGRESSING, "Unknown", p.PAUSED,
                                                    "Deployment is paused", self.now))
        elif not paused and paused_cond:
            p.set_condition(status, p.new_condition(p.PROGRESSING, "Unknown", p.RESUMED,
                                                    "Deployment is resumed", self.now))
        else:
            return
        await self.update_status(status)

    # -- writes ------------------------------------------------------------------------

    async def update_rs(self, rs: Obj) -> Obj:
        updated: Obj = await self.ctl.client.update(REPLICASETS, rs, namespace=self.namespace)
        self.ctl.written(self.key, updated, rs["metadata"].get("resourceVersion"))
        uid = updated["metadata"]["uid"]
        self.rss = [updated if x["metadata"]["uid"] == uid else x for x in self.rss]
        return updated

    async def update_status(self, status: Obj) -> None:
        """Write ``status`` (and the Deployment's revision annotation, if it moved)."""
        want_revision = h.annotation(self.d, h.REVISION_ANNOTATION)
        body = copy.deepcopy(self.d)
        body["status"] = status
        updated: Obj = await self.ctl.client.update(DEPLOYMENTS, body, namespace=self.namespace,
                                                    subresource="status")
        if want_revision is not None and h.annotation(updated, h.REVISION_ANNOTATION) != want_revision:
            # This API server keeps metadata on status writes: set the annotation itself.
            updated = await self.ctl.client.patch(
                DEPLOYMENTS, self.name,
                {"metadata": {"annotations": {h.REVISION_ANNOTATION: want_revision},
                              "resourceVersion": updated["metadata"]["resourceVersion"]}},
                namespace=self.namespace)
        self.ctl.written(self.key, updated, self.d["metadata"].get("resourceVersion"))
        self.d = updated


def _active_or_latest(new_rs: Obj | None, old: list[Obj]) -> Obj | None:
    """The one ReplicaSet with pods; or, with none, the new (else newest old) one."""
    if new_rs is None and not old:
        return None
    newest_first = h.by_creation(old, newest_first=True)
    candidates = [*newest_first, new_rs] if new_rs is not None else newest_first
    active = [rs for rs in candidates if r.spec_replicas(rs) > 0]
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def _saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    wanted = r.desired_replicas(d)
    return (h.annotation_int(rs, h.DESIRED_REPLICAS_ANNOTATION) == wanted
            and r.spec_replicas(rs) == wanted
            and r.status_count(rs, "availableReplicas") == wanted)
