"""Creating and deleting a controller's pods, and creating many without a stampede.

A pod made from a template gets the template's labels, annotations, finalizers
and spec, the namespace of its owner, a controller reference to it, and
``generateName: <owner>-`` (the API server appends five random characters:
``web-7d4b9c-x2k8q``)::

    template ──copy──▶ metadata: generateName, labels, annotations, finalizers,
                                 ownerReferences=[controller ref]
                       spec:     template.spec

:func:`slow_start` creates in growing batches (1, 2, 4, 8 ...) and stops at the
first batch with a failure, as Kubernetes does: a quota or admission error then
costs one failed request instead of hundreds.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

from ..api.kinds.meta import is_dns1123_subdomain
from ..client.resources import PODS
from ..client.rest import ApiClient

Obj = dict[str, Any]

#: Initial batch of :func:`slow_start` (Kubernetes' SlowStartInitialBatchSize).
INITIAL_BATCH = 1


def pod_name_prefix(owner_name: str) -> str:
    """``<owner>-``, or just ``<owner>`` when the dash would make an invalid prefix."""
    prefix = f"{owner_name}-"
    return prefix if not is_dns1123_subdomain(prefix + "x") else owner_name


def pod_from_template(template: Obj, *, namespace: str, owner_name: str, owner_ref: Obj) -> Obj:
    """A pod to POST for ``template`` (a fresh copy; the template is not touched)."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": pod_name_prefix(owner_name), "namespace": namespace,
                 "ownerReferences": [dict(owner_ref)]}
    for field in ("labels", "annotations"):
        if tmeta.get(field):
            meta[field] = dict(tmeta[field])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


async def create_pod(client: ApiClient, pod: Obj) -> Obj:
    created: Obj = await client.create(PODS, pod, namespace=pod["metadata"]["namespace"])
    return created


async def delete_pod(client: ApiClient, pod: Obj) -> None:
    """Delete ``pod``, only if it is still the same pod (UID precondition)."""
    meta = pod["metadata"]
    await client.delete(PODS, meta["name"], namespace=meta.get("namespace"),
                        preconditions={"uid": meta["uid"]})


async def slow_start(count: int, fn: Callable[[], Awaitable[None]],
                     initial_batch: int = INITIAL_BATCH) -> tuple[int, list[BaseException]]:
    """Call ``fn`` ``count`` times in doubling concurrent batches.

    Returns (successes, errors of the batch that failed).  After a batch with
    any failure no further batch is started; the caller learns how many calls
    were skipped as ``count - successes - len(errors)``.
    """
    done = 0
    batch = min(count, max(1, initial_batch))
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for e in errors:
            if isinstance(e, asyncio.CancelledError):
                raise e
        done += batch - len(errors)
        if errors:
            return done, errors
        batch = min(2 * batch, count - done)
    return done, []
