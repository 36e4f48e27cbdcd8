"""``pods/<name>/eviction``: a delete that respects PodDisruptionBudgets (``kubectl drain``).

::

    POST Eviction{deleteOptions}
      pod terminal, pending or already deleting ───────────────▶ delete it        201 Success
      the one PDB whose selector matches the pod:
         not yet observed by its controller ────────────────▶ 429 TooManyRequests
         status.disruptionsAllowed == 0 ────────────────────▶ 429 (the client retries)
         otherwise: disruptionsAllowed - 1 and the pod noted in
                    status.disruptedPods (CAS on the PDB), then delete it     201 Success
      several matching PDBs ─────────────────────────────────▶ 500 (as Kubernetes)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..api.errors import Cause, StatusError, bad_request, forbidden
from ..api.resource import ResourceInfo
from ..api.selectors import SelectorError, label_selector_from_object
from .context import ServerContext
from .deletion import Deleter, delete_options
from .negotiation import decode_body, json_response, media_type
from .objects import collection_prefix, decode, format_time
from .writes import WriteOptions, Writer

Obj = dict[str, Any]

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000


def too_many(message: str, cause: str) -> StatusError:
    return StatusError(429, "TooManyRequests", message,
                       causes=[Cause("DisruptionBudget", cause)], retry_after_seconds=0)


def _ignores_budget(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


class Evictor:
    def __init__(self, ctx: ServerContext, writer: Writer, deleter: Deleter) -> None:
        self.ctx = ctx
        self.writer = writer
        self.deleter = deleter

    async def evict_request(self, request: web.Request, pods: ResourceInfo, ns: str,
                            name: str) -> web.StreamResponse:
        body = decode_body(await request.read(), media_type(request), expected_kind="Eviction",
                           protobuf_decoder=self.ctx.decode_protobuf)
        body_name = (body.get("metadata") or {}).get("name") or name
        if body_name != name:
            raise bad_request("name in URL does not match name in Eviction object")
        opts = delete_options(body.get("deleteOptions") or {}, request.query)
        pod, _ = await self.ctx.store.get(pods, ns, name)
        if not _ignores_budget(pod):
            await self._take_disruption(ns, pod)
        await self.deleter.delete(pods, ns, name, opts)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success", "code": 201}, status=201)

    async def _take_disruption(self, ns: str, pod: Obj) -> None:
        pdbs = self.ctx.registry.get("policy", "v1", "poddisruptionbudgets")
        if pdbs is None:
            return
        labels = pod["metadata"].get("labels") or {}
        r = await self.ctx.backend.range(collection_prefix(pdbs, ns))
        matching = []
        for kv in r.kvs:
            pdb = decode(kv)
            try:
                selector = label_selector_from_object((pdb.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if selector.matches(labels):
                matching.append(pdb)
        if not matching:
            return
        if len(matching) > 1:
            raise StatusError(500, "InternalError", "This pod has more than one PodDisruptionBudget, "
                              "which the eviction subresource does not support.")
        name = matching[0]["metadata"]["name"]
        pod_name = pod["metadata"]["name"]
        now = format_time(self.ctx.clock())

        def take(current: Obj, old: Obj) -> Obj:
            status = current.setdefault("status", {})
            generation = current["metadata"].get("generation", 0)
            if status.get("observedGeneration", 0) < generation:
                raise too_many(VIOLATION, f"The disruption budget {name} is still being processed by the server.")
            allowed = status.get("disruptionsAllowed", 0)
            if allowed < 0:
                raise forbidden("poddisruptionbudgets", "policy", name, "pdb disruptions allowed is negative")
            disrupted = status.setdefault("disruptedPods", {})
            if len(disrupted) > MAX_DISRUPTED_PODS:
                raise forbidden("poddisruptionbudgets", "policy", name, "DisruptedPods map too big - too many "
                                "evictions not confirmed by PDB controller")
            if allowed == 0:
                raise too_many(VIOLATION, f"The disruption budget {name} needs "
                               f"{status.get('desiredHealthy', 0)} healthy pods and has "
                               f"{status.get('currentHealthy', 0)} currently")
            status["disruptionsAllowed"] = allowed - 1
            disrupted[pod_name] = now
            return current

        await self.writer.read_modify_write(pdbs, ns, name, take, WriteOptions(field_manager="skiff-apiserver"),
                                            subresource="status", precondition_rv=False)
