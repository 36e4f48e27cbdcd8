"""The writes a StatefulSet makes for its members: claims first, then the pod.

::

    create member i:  each claim <tpl>-<set>-i   missing ─▶ POST (event SuccessfulCreate
                                                 "create Claim www-web-0 Pod web-0 in
                                                 StatefulSet web success")
                                                 being deleted ─▶ error, try later
                      POST pod web-i             event SuccessfulCreate
                                                 "create Pod web-0 in StatefulSet web successful"
                      claim owner references as the retention policy says
    delete member:    DELETE (UID precondition)  event SuccessfulDelete
                                                 "delete Pod web-2 in StatefulSet web successful"
    repair member:    identity labels, missing claims, claim owner references

Failures are recorded as Warning events (``FailedCreate`` "create Pod web-0 in
StatefulSet web failed error: ...") and raised, so the StatefulSet is retried
with back-off.  Expectations are the caller's business (it announces a whole
batch of creations and deletions before sending any).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ...api.errors import StatusError
from ...client.informer import Informer
from ...client.resources import PERSISTENTVOLUMECLAIMS, PODS
from ...client.rest import ApiClient, TransportError
from ..events import NORMAL, WARNING
from . import identity as ident

Obj = dict[str, Any]
#: ``record(obj, type, reason, message)``: the controller's event recorder.
Record = Callable[[Obj, str, str, str], None]


def message_of(error: BaseException) -> str:
    if isinstance(error, StatusError):
        return error.message
    return str(error) or type(error).__name__


class StatefulPodControl:
    """Creates, deletes and repairs the members of StatefulSets (see module docstring)."""

    def __init__(self, client: ApiClient, claims: Informer, record: Record) -> None:
        self.client = client
        self.claims = claims
        self.record = record

    # -- events -------------------------------------------------------------------------

    def _pod_event(self, verb: str, sts: Obj, pod: Obj, error: BaseException | None) -> None:
        name, sts_name = pod["metadata"]["name"], sts["metadata"]["name"]
        if error is None:
            self.record(sts, NORMAL, f"Successful{verb.title()}",
                        f"{verb} Pod {name} in StatefulSet {sts_name} successful")
        else:
            self.record(sts, WARNING, f"Failed{verb.title()}",
                        f"{verb} Pod {name} in StatefulSet {sts_name} failed error: {message_of(error)}")

    def _claim_event(self, verb: str, sts: Obj, pod: Obj, claim: Obj,
                     error: BaseException | None) -> None:
        claim_name, name = claim["metadata"]["name"], pod["metadata"]["name"]
        sts_name = sts["metadata"]["name"]
        if error is None:
            self.record(sts, NORMAL, f"Successful{verb.title()}",
                        f"{verb} Claim {claim_name} Pod {name} in StatefulSet {sts_name} success")
        else:
            self.record(sts, WARNING, f"Failed{verb.title()}",
                        f"{verb} Claim {claim_name} for Pod {name} in StatefulSet {sts_name} "
                        f"failed error: {message_of(error)}")

    # -- claims ---------------------------------------------------------------------------

    def _cached_claims(self, sts: Obj, pod: Obj) -> list[tuple[Obj, Obj | None]]:
        """(claim body, cached claim or None) for each claim of ``pod``'s ordinal."""
        namespace = sts["metadata"]["namespace"]
        return [(claim, self.claims.get_by(namespace, claim["metadata"]["name"]))
                for claim in ident.claims_for(sts, ident.ordinal_of(pod)).values()]

    def claim_is_stale(self, sts: Obj, pod: Obj) -> bool:
        """A claim of this member still belongs to an earlier pod (wait for its removal)."""
        if ident.retention_policy(sts)[1] == ident.RETAIN:
            return False
        return any(cached is not None and ident.claim_is_stale(cached, pod)
                   for _, cached in self._cached_claims(sts, pod))

    async def create_missing_claims(self, sts: Obj, pod: Obj) -> None:
        errors: list[BaseException] = []
        for claim, cached in self._cached_claims(sts, pod):
            name = claim["metadata"]["name"]
            if cached is not None:
                if cached["metadata"].get("deletionTimestamp"):
                    errors.append(StatusError(409, "Conflict", f"pvc {name} is being deleted"))
                continue
            refs = ident.desired_claim_refs(claim, sts, pod)
            if refs:  # whenDeleted: Delete -> owned by the StatefulSet from the start
                claim = {**claim, "metadata": {**claim["metadata"], "ownerReferences": refs}}
            try:
                await self.client.create(PERSISTENTVOLUMECLAIMS, claim,
                                         namespace=claim["metadata"]["namespace"])
            except (StatusError, TransportError) as e:
                if isinstance(e, StatusError) and e.code == 409:
                    continue  # created already; our cache is behind
                self._claim_event("create", sts, pod, claim, e)
                errors.append(e)
                continue
            self._claim_event("create", sts, pod, claim, None)
        if errors:
            raise errors[0]

    def claims_match_policy(self, sts: Obj, pod: Obj) -> bool:
        return all(cached is None or ident.desired_claim_refs(cached, sts, pod) is None
                   for _, cached in self._cached_claims(sts, pod))

    async def update_claims_for_policy(self, sts: Obj, pod: Obj) -> None:
        """Set the claims' owner references as the retention policy says."""
        for _, cached in self._cached_claims(sts, pod):
            if cached is None:
                continue
            refs = ident.desired_claim_refs(cached, sts, pod)
            if refs is None:
                continue
            body = copy.deepcopy(cached)  # an update at the cached resourceVersion, as Kubernetes
            body["metadata"]["ownerReferences"] = refs
            try:
                await self.client.update(PERSISTENTVOLUMECLAIMS, body)
            except StatusError as e:
                if e.code != 404:
                    raise

    # -- pods -------------------------------------------------------------------------------

    async def create(self, sts: Obj, pod: Obj) -> None:
        """Create member ``pod`` (a body from :func:`identity.new_pod`), claims first."""
        try:
            await self.create_missing_claims(sts, pod)
        except (StatusError, TransportError) as e:
            self._pod_event("create", sts, pod, e)
            raise
        try:
            created: Obj = await self.client.create(PODS, pod, namespace=pod["metadata"]["namespace"])
        except (StatusError, TransportError) as e:
            if not (isinstance(e, StatusError) and e.code == 409):
                self._pod_event("create", sts, pod, e)
            raise
        self._pod_event("create", sts, created, None)
        if ident.retention_policy(sts) != (ident.RETAIN, ident.RETAIN):
            await self.update_claims_for_policy(sts, created)

    async def delete(self, sts: Obj, pod: Obj) -> None:
        """Delete a member (only that very pod: UID precondition); already gone is fine."""
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["name"], namespace=meta.get("namespace"),
                                     preconditions={"uid": str(meta.get("uid", ""))})
        except (StatusError, TransportError) as e:
            if isinstance(e, StatusError) and e.code == 404:
                return
            self._pod_event("delete", sts, pod, e)
            raise
        self._pod_event("delete", sts, pod, None)

    async def repair(self, sts: Obj, pod: Obj) -> None:
        """Restore a live member's identity labels, missing claims and claim references."""
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        wanted = ident.identity_labels(sts, pod)
        if any(labels.get(k) != v for k, v in wanted.items()):
            try:
                await self.client.patch(PODS, meta["name"],
                                        {"metadata": {"labels": wanted, "uid": meta["uid"]}},
                                        namespace=meta["namespace"])
            except (StatusError, TransportError) as e:
                self._pod_event("update", sts, pod, e)
                raise
        if not ident.storage_matches(sts, pod):
            await self.create_missing_claims(sts, pod)
        await self.update_claims_for_policy(sts, pod)
