"""Indexed Jobs: completion indexes, their compact text form, and what an indexed pod gets.

A Job with ``completionMode: Indexed`` and ``completions: N`` is done when each
index 0..N-1 has one succeeded pod.  Sets of indexes are kept as ordered,
non-adjacent intervals and written as Kubernetes writes ``status.completedIndexes``
and ``status.failedIndexes``::

    {0, 1, 2, 4}   ->  "0-2,4"
    {0, 1}         ->  "0,1"      (two neighbours are listed, not ranged)
    {3}            ->  "3"

Each pod of an indexed Job carries its index three ways (the pod learns it from
the downward API, as Kubernetes injects it)::

    metadata.annotations[batch.kubernetes.io/job-completion-index] = "3"
    metadata.labels[batch.kubernetes.io/job-completion-index]      = "3"
    env JOB_COMPLETION_INDEX <- fieldRef metadata.labels['batch.kubernetes.io/job-completion-index']
    spec.hostname = "<job>-3"      generateName = "<job>-3-"

With ``backoffLimitPerIndex`` a replacement pod also records how often its index
failed before (``job-index-failure-count``, and ``job-index-ignored-failure-count``
for failures a pod failure policy ignored).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

Obj = dict[str, Any]

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
#: Longest generateName prefix the API server keeps (it appends 5 random characters).
MAX_GENERATE_NAME = 58
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Intervals:
    """An ordered set of indexes stored as disjoint, non-adjacent ``(first, last)`` pairs."""

    spans: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text: str | None, completions: int) -> "Intervals":
        """Read ``"0-2,4"``; indexes from ``completions`` on are dropped, bad terms skipped."""
        spans: list[tuple[int, int]] = []
        for term in (text or "").split(","):
            if not term:
                continue
            first_text, _, last_text = term.partition("-")
            try:
                first = int(first_text)
                last = int(last_text) if last_text else first
            except ValueError:
                continue
            if first >= completions:
                break
            last = min(last, completions - 1)
            if spans and spans[-1][1] == first - 1:
                spans[-1] = (spans[-1][0], last)
            else:
                spans.append((first, last))
        return cls(tuple(spans))

    def merge(self, other: "Intervals") -> "Intervals":
        spans: list[tuple[int, int]] = []
        for first, last in sorted(self.spans + other.spans):
            if spans and first <= spans[-1][1] + 1:
                if last > spans[-1][1]:
                    spans[-1] = (spans[-1][0], last)
            else:
                spans.append((first, last))
        return Intervals(tuple(spans))

    def with_indexes(self, indexes: Iterable[int]) -> "Intervals":
        return self.merge(Intervals(tuple((i, i) for i in sorted(set(indexes)))))

    def total(self) -> int:
        return sum(last - first + 1 for first, last in self.spans)

    def has(self, index: int) -> bool:
        pos = bisect.bisect_left(self.spans, (index + 1,)) - 1
        return pos >= 0 and self.spans[pos][0] <= index <= self.spans[pos][1]

    def __iter__(self) -> Iterator[int]:
        for first, last in self.spans:
            yield from range(first, last + 1)

    def __len__(self) -> int:
        return self.total()

    def __str__(self) -> str:
        parts = []
        for first, last in self.spans:
            if last == first:
                parts.append(str(first))
            elif last == first + 1:
                parts.append(f"{first},{last}")
            else:
                parts.append(f"{first}-{last}")
        return ",".join(parts)


def completion_index(pod: Obj) -> int | None:
    """The pod's index from its annotation (None when absent or not a number >= 0)."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX)
    try:
        value = int(raw) if raw is not None else -1
    except ValueError:
        return None
    return value if value >= 0 else None


def valid_index(pod: Obj, completions: int) -> int | None:
    ix = completion_index(pod)
    return ix if ix is not None and ix < completions else None


def indexes_of(pods: Iterable[Obj]) -> set[int]:
    return {ix for p in pods if (ix := completion_index(p)) is not None}


def first_pending(count: int, completions: int, taken: Intervals) -> list[int]:
    """The ``count`` lowest indexes below ``completions`` that are not ``taken``."""
    result: list[int] = []
    candidate = 0
    for first, last in taken.spans:
        while candidate < min(first, completions) and len(result) < count:
            result.append(candidate)
            candidate += 1
        candidate = max(candidate, last + 1)
    while candidate < completions and len(result) < count:
        result.append(candidate)
        candidate += 1
    return result


def duplicates_for_removal(pods: Sequence[Obj], completions: int,
                           removal_order: Callable[[Obj], Any]) -> tuple[list[Obj], list[Obj]]:
    """(pods to remove, pods to keep): pods without a valid index, and all but the
    most advanced pod of each index."""
    remove: list[Obj] = []
    keep: list[Obj] = []

    def index_key(pod: Obj) -> int:
        ix = completion_index(pod)
        return -1 if ix is None else ix

    for ix, group in groupby(sorted(pods, key=index_key), key=index_key):
        same = list(group)
        if ix < 0 or ix >= completions:
            remove.extend(same)
            continue
        same.sort(key=removal_order)
        remove.extend(same[:-1])
        keep.append(same[-1])
    return remove, keep


def generate_name(job_name: str, index: int) -> str:
    """``<job>-<index>-``, the job name cut so the prefix fits :data:`MAX_GENERATE_NAME`."""
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATE_NAME:
        prefix = job_name[:MAX_GENERATE_NAME - len(suffix)] + suffix
    return prefix


def add_index_env(pod_spec: Obj) -> None:
    """Give every (init) container ``JOB_COMPLETION_INDEX`` from the downward API."""
    ref = {"fieldRef": {"fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}}
    for field in ("initContainers", "containers"):
        for container in pod_spec.get(field) or []:
            env = container.setdefault("env", [])
            if not any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": ref})


def stamp_index(pod: Obj, job_name: str, index: int) -> None:
    """Mark a pod (built from the template) as the pod of ``index``."""
    meta = pod.setdefault("metadata", {})
    meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
    meta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
    meta["generateName"] = generate_name(job_name, index)
    pod.setdefault("spec", {})["hostname"] = f"{job_name}-{index}"


def _count_annotation(pod: Obj, key: str) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        value = int(raw) if raw is not None else 0
    except ValueError:
        return 0
    return value if 0 <= value <= _INT32_MAX else 0


def failure_count(pod: Obj) -> int:
    """Failures of the pod's index before this pod (its ``job-index-failure-count``)."""
    return _count_annotation(pod, INDEX_FAILURE_COUNT)


def ignored_failure_count(pod: Obj) -> int:
    return _count_annotation(pod, INDEX_IGNORED_FAILURE_COUNT)


def absolute_failure_count(pod: Obj) -> int:
    return failure_count(pod) + ignored_failure_count(pod)
