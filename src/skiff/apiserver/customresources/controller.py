"""The API server's own controllers for CustomResourceDefinitions (as kube-apiserver runs them).

Names (the naming controller)::

    spec.names ──▶ each name not taken by another definition of the group?
        yes: status.acceptedNames = spec.names, NamesAccepted=True  NoConflicts
        no:  the taken name stays unaccepted, NamesAccepted=False  PluralConflict |
             SingularConflict | ShortNamesConflict | KindConflict | ListKindConflict
             ("\\"crontabs\\" is already in use")
    names accepted ──▶ Established=False Installing ──▶ (the registry serves the kind) ──▶
                       Established=True  InitialNamesAccepted

Deletion (the finalizer controller): a DELETE gives the definition the
``customresourcecleanup.apiextensions.k8s.io`` finalizer and a Terminating
condition (:class:`DefinitionHooks`); new objects of the kind are refused
(405 ``create not allowed while custom resource definition is terminating``);
this controller deletes every object (their own finalizers are honoured),
waits until none is left, then removes the finalizer and the definition goes.

Every change of a definition queues its name; one worker reconciles names in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ...api.errors import StatusError, method_not_allowed
from ...api.kinds.meta.conditions import set_condition
from ...api.kinds.apiextensions.crd import CLEANUP_FINALIZER, CUSTOM_RESOURCE_DEFINITIONS
from ..context import ServerContext
from ..deletion import DeleteOptions, Deleter
from ..hooks import NO_RESERVATION, KindHooks, Reservation
from ..objects import collection_prefix, decode, format_time
from ..writes import WriteOptions, Writer
from .served import ServedDefinitions, condition_true

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MANAGER = WriteOptions(field_manager="kube-apiserver")
NAME_FIELDS = (("plural", "PluralConflict"), ("singular", "SingularConflict"))
KIND_FIELDS = (("kind", "KindConflict"), ("listKind", "ListKindConflict"))
#: how long the cleanup waits between looks at objects that are still finalizing
CLEANUP_POLL = (0.05, 2.0)


def names_in_use(definitions: dict[str, Obj], group: str, except_name: str) -> tuple[set[str], set[str]]:
    """(resource names, kind names) other definitions of ``group`` have been given."""
    resources: set[str] = set()
    kinds: set[str] = set()
    for name, crd in definitions.items():
        if name == except_name or (crd.get("spec") or {}).get("group") != group:
            continue
        accepted = (crd.get("status") or {}).get("acceptedNames") or {}
        resources.update(str(accepted.get(k) or "") for k in ("plural", "singular"))
        resources.update(accepted.get("shortNames") or [])
        kinds.update(str(accepted.get(k) or "") for k in ("kind", "listKind"))
    resources.discard("")
    kinds.discard("")
    return resources, kinds


def accept_names(crd: Obj, definitions: dict[str, Obj]) -> tuple[Obj, str, str]:
    """(the names to accept, a conflict reason or "", its message), as the naming controller does."""
    spec_names = (crd.get("spec") or {}).get("names") or {}
    accepted = dict((crd.get("status") or {}).get("acceptedNames") or {})
    resources, kinds = names_in_use(definitions, (crd.get("spec") or {}).get("group", ""),
                                    crd["metadata"]["name"])
    reason = message = ""

    def fresh(wanted: str, current: str, used: set[str]) -> bool:
        return wanted == current or wanted not in used

    def check(fields: tuple[tuple[str, str], ...], used: set[str]) -> None:
        nonlocal reason, message
        for field_name, conflict in fields:
            wanted = str(spec_names.get(field_name) or "")
            if fresh(wanted, str(accepted.get(field_name) or ""), used):
                if wanted:
                    accepted[field_name] = wanted
                else:
                    accepted.pop(field_name, None)
            else:  # as Kubernetes: the last conflict found is the one reported
                reason, message = conflict, f'"{wanted}" is already in use'

    check(NAME_FIELDS, resources)
    short = list(spec_names.get("shortNames") or [])
    have = set(accepted.get("shortNames") or [])
    taken = [s for s in short if s not in have and s in resources]
    if taken:
        reason = "ShortNamesConflict"
        message = ", ".join(f'"{s}" is already in use' for s in taken)
        if len(taken) > 1:
            message = "[" + message + "]"
    elif short:
        accepted["shortNames"] = short
    else:
        accepted.pop("shortNames", None)
    check(KIND_FIELDS, kinds)
    if spec_names.get("categories"):
        accepted["categories"] = list(spec_names["categories"])
    else:
        accepted.pop("categories", None)
    return accepted, reason, message


class DefinitionHooks(KindHooks):
    """Writes of definitions through this server are served at once (a client's next request
    finds the new schema; other servers learn it from the watch); a DELETE adds the cleanup
    finalizer and the Terminating condition."""

    def __init__(self, ctx: ServerContext, served: ServedDefinitions) -> None:
        self.ctx = ctx
        self.served = served

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        return Reservation(commit=lambda: self.served.apply(obj))

    def removed(self, obj: Obj) -> None:
        self.served.apply(obj, deleted=True)

    def blocks_removal(self, obj: Obj) -> bool:
        # the first DELETE: the finalizer is not there yet, mark_deleting adds it
        return not condition_true(obj, "Terminating")

    def mark_deleting(self, obj: Obj) -> None:
        if condition_true(obj, "Terminating"):
            return
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        set_condition(obj.setdefault("status", {}).setdefault("conditions", []), "Terminating", "True",
                      "InstanceDeletionPending", "CustomResourceDefinition marked for deletion; "
                      "CustomResource deletion will begin soon", format_time(self.ctx.clock()))


class CustomObjectHooks(KindHooks):
    """Objects of a definition that is being deleted cannot be created."""

    def __init__(self, served: ServedDefinitions, group: str, plural: str) -> None:
        self.served = served
        self.resource = (group, plural)

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        crd = self.served.by_resource.get(self.resource)
        if old is None and crd is not None and condition_true(crd, "Terminating"):
            raise method_not_allowed("create not allowed while custom resource definition is terminating")
        return NO_RESERVATION


class DefinitionController:
    def __init__(self, ctx: ServerContext, writer: Writer, deleter: Deleter) -> None:
        self.ctx = ctx
        self.writer = writer
        self.deleter = deleter
        self.served = ServedDefinitions(ctx, self.enqueue)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        #: one task per definition being deleted (its objects may take a while to go)
        self._cleanups: dict[str, asyncio.Task[None]] = {}
        self._hooked: set[tuple[str, str]] = set()
        crds = (CUSTOM_RESOURCE_DEFINITIONS.group, CUSTOM_RESOURCE_DEFINITIONS.plural)
        ctx.hooks[crds] = DefinitionHooks(ctx, self.served)

    async def start(self) -> None:
        await self.served.start()
        self._task = asyncio.create_task(self._work(), name="skiff-crd-controller")

    async def stop(self) -> None:
        task, self._task = self._task, None
        for t in [task, *self._cleanups.values()]:
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self._cleanups.clear()
        await self.served.stop()

    def enqueue(self, name: str) -> None:
        self._hook_custom_kinds()
        if name not in self._queued:
            self._queued.add(name)
            self._queue.put_nowait(name)

    def _hook_custom_kinds(self) -> None:
        for group, plural in self.served.by_resource:
            if (group, plural) not in self._hooked:
                self._hooked.add((group, plural))
                self.ctx.hooks[(group, plural)] = CustomObjectHooks(self.served, group, plural)

    async def _work(self) -> None:
        while True:
            name = await self._queue.get()
            self._queued.discard(name)
            try:
                await self.reconcile(name)
            except asyncio.CancelledError:
                raise
            except StatusError as err:
                if err.reason not in ("NotFound", "Conflict"):
                    log.warning("custom resource definition %s: %s", name, err.message)
                    self._retry_later(name)
            except Exception:
                log.exception("custom resource definition %s: reconcile failed", name)
                self._retry_later(name)

    def _retry_later(self, name: str) -> None:
        asyncio.get_running_loop().call_later(1.0, self.enqueue, name)

    async def reconcile(self, name: str) -> None:
        crd = self.served.definitions.get(name)
        if crd is None:
            return
        if crd["metadata"].get("deletionTimestamp"):
            if CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or []) and name not in self._cleanups:
                task = asyncio.create_task(self._clean_up(crd), name=f"skiff-crd-cleanup-{name}")
                self._cleanups[name] = task
                task.add_done_callback(lambda t: self._cleaned_up(name, t))
            return
        await self._accept_names(crd)

    # -- names --------------------------------------------------------------------------

    async def _accept_names(self, crd: Obj) -> None:
        accepted, reason, message = accept_names(crd, self.served.definitions)
        status = crd.get("status") or {}
        wanted_stored = self._stored_versions(crd)
        if (accepted == (status.get("acceptedNames") or {}) and not reason
                and condition_true(crd, "NamesAccepted") and condition_true(crd, "Established")
                and wanted_stored == status.get("storedVersions")):
            return
        now = format_time(self.ctx.clock())
        served_now = self.served.serves(crd["metadata"]["name"]) and accepted == status.get("acceptedNames")

        def mutate(current: Obj, old: Obj) -> Obj:
            st = current.setdefault("status", {})
            conds = st.setdefault("conditions", [])
            st["acceptedNames"] = accepted
            st["storedVersions"] = self._stored_versions(current)
            if reason:
                set_condition(conds, "NamesAccepted", "False", reason, message, now)
                if not condition_true(current, "Established"):
                    set_condition(conds, "Established", "False", "NotAccepted", "not all names are accepted", now)
            else:
                set_condition(conds, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now)
                if condition_true(current, "Established"):
                    pass
                elif served_now:  # Established only once the kind is served: a client that
                    # waits for the condition finds the resource
                    set_condition(conds, "Established", "True", "InitialNamesAccepted",
                                  "the initial names have been accepted", now)
                else:
                    set_condition(conds, "Established", "False", "Installing",
                                  "the initial names have been accepted", now)
            return current

        await self.writer.read_modify_write(CUSTOM_RESOURCE_DEFINITIONS, "", crd["metadata"]["name"],
                                            mutate, MANAGER, subresource="status", precondition_rv=False)

    @staticmethod
    def _stored_versions(crd: Obj) -> list[str]:
        stored = list((crd.get("status") or {}).get("storedVersions") or [])
        for version in (crd.get("spec") or {}).get("versions") or []:
            if version.get("storage") and version.get("name") not in stored:
                stored.append(version["name"])
        return stored

    # -- deletion -----------------------------------------------------------------------

    def _cleaned_up(self, name: str, task: "asyncio.Task[None]") -> None:
        self._cleanups.pop(name, None)
        if task.cancelled():
            return
        err = task.exception()
        if err is not None:
            if not (isinstance(err, StatusError) and err.reason == "NotFound"):
                log.warning("custom resource definition %s: cleanup failed: %s", name, err)
                self._retry_later(name)

    async def _clean_up(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        info = self.served.resource_info(crd)
        if info is not None:
            await self._set_terminating(name, "InstanceDeletionInProgress", "CustomResource deletion is in progress")
            delay = CLEANUP_POLL[0]
            while True:
                left = await self.ctx.backend.range(collection_prefix(info, ""))
                if not left.kvs:
                    break
                for kv in left.kvs:
                    meta = decode(kv)["metadata"]
                    if meta.get("deletionTimestamp"):
                        continue
                    with contextlib.suppress(StatusError):
                        await self.deleter.delete(info, meta.get("namespace", ""), meta["name"], DeleteOptions())
                if not (await self.ctx.backend.range(collection_prefix(info, ""), limit=1)).kvs:
                    break
                await asyncio.sleep(delay)  # objects with finalizers of their own: look again
                delay = min(delay * 2, CLEANUP_POLL[1])
        await self._set_terminating(name, "InstanceDeletionCompleted", "removed all instances")

        def drop_finalizer(current: Obj, old: Obj) -> Obj:
            finalizers = [f for f in current["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER]
            current["metadata"]["finalizers"] = finalizers
            return current

        await self.writer.read_modify_write(CUSTOM_RESOURCE_DEFINITIONS, "", name, drop_finalizer, MANAGER,
                                            precondition_rv=False)

    async def _set_terminating(self, name: str, reason: str, message: str) -> None:
        now = format_time(self.ctx.clock())

        def mutate(current: Obj, old: Obj) -> Obj:
            conditions = current.setdefault("status", {}).setdefault("conditions", [])
            set_condition(conditions, "Terminating", "True", reason, message, now)
            return current

        await self.writer.read_modify_write(CUSTOM_RESOURCE_DEFINITIONS, "", name, mutate, MANAGER,
                                            subresource="status", precondition_rv=False)
