"""Compiled selectors for the scheduler's hot loops.

The scheduler evaluates the same selector against thousands of nodes or pods
per cycle, so selectors are compiled once into tuples of requirements and
matched with plain dict lookups.

- :func:`label_selector` — a ``metav1.LabelSelector`` object (``matchLabels`` +
  ``matchExpressions`` with ``In``/``NotIn``/``Exists``/``DoesNotExist``).
  ``None`` selects nothing; ``{}`` selects everything (Kubernetes'
  ``LabelSelectorAsSelector``).
- :func:`node_selector_terms` — a ``NodeSelector``'s ``nodeSelectorTerms``:
  terms are ORed, requirements inside a term are ANDed; a term with no
  requirements matches nothing; operators ``In NotIn Exists DoesNotExist Gt Lt``;
  ``matchFields`` supports ``metadata.name``.
- :class:`RequiredNodeAffinity` — a pod's ``spec.nodeSelector`` plus its required
  node affinity, the node filter shared by NodeAffinity and PodTopologySpread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

Obj = dict[str, Any]

# One requirement: (key, operator, values).
Requirement = tuple[str, str, frozenset[str]]


def _match_requirement(labels: Mapping[str, str], req: Requirement) -> bool:
    key, op, values = req
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        if key not in labels or len(values) != 1:
            return False
        try:
            have = int(labels[key])
            want = int(next(iter(values)))
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """A compiled label selector; ``everything``/``nothing`` short-cut the common cases."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        for req in self.requirements:
            if not _match_requirement(labels, req):
                return False
        return True

    @property
    def everything(self) -> bool:
        return not self.nothing and not self.requirements


NOTHING = LabelMatcher(nothing=True)
EVERYTHING = LabelMatcher()


def _expressions(exprs: Iterable[Obj] | None) -> list[Requirement]:
    out: list[Requirement] = []
    for e in exprs or ():
        out.append((str(e.get("key", "")), str(e.get("operator", "")),
                    frozenset(str(v) for v in e.get("values") or ())))
    return out


def label_selector(selector: Obj | None, extra: Mapping[str, str] | None = None) -> LabelMatcher:
    """Compile a ``LabelSelector`` object; ``extra`` adds ``key In (value)`` requirements
    (PodTopologySpread's ``matchLabelKeys``)."""
    if selector is None:
        return NOTHING
    reqs: list[Requirement] = [(k, "In", frozenset([str(v)])) for k, v in (selector.get("matchLabels") or {}).items()]
    reqs += _expressions(selector.get("matchExpressions"))
    if extra:
        reqs += [(k, "In", frozenset([v])) for k, v in extra.items()]
    for _, op, _values in reqs:
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return NOTHING
    return LabelMatcher(tuple(reqs))


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]

    def matches(self, node_labels: Mapping[str, str], node_name: str) -> bool:
        if not self.labels and not self.fields:
            return False
        for req in self.labels:
            if not _match_requirement(node_labels, req):
                return False
        if self.fields:
            fields = {"metadata.name": node_name}
            for req in self.fields:
                if req[0] != "metadata.name" or req[1] not in ("In", "NotIn"):
                    return False
                if not _match_requirement(fields, req):
                    return False
        return True


def node_selector_terms(terms: Iterable[Obj] | None) -> tuple[NodeSelectorTerm, ...]:
    return tuple(NodeSelectorTerm(tuple(_expressions(t.get("matchExpressions"))),
                                  tuple(_expressions(t.get("matchFields"))))
                 for t in terms or ())


def terms_match(terms: tuple[NodeSelectorTerm, ...], labels: Mapping[str, str], name: str) -> bool:
    for term in terms:
        if term.matches(labels, name):
            return True
    return False


class RequiredNodeAffinity:
    """``spec.nodeSelector`` AND ``requiredDuringSchedulingIgnoredDuringExecution``."""

    __slots__ = ("selector", "terms")

    def __init__(self, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        self.selector: tuple[tuple[str, str], ...] = tuple((spec.get("nodeSelector") or {}).items())
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution"))
        # None: no constraint.  An empty term list selects no node.
        self.terms: tuple[NodeSelectorTerm, ...] | None = (
            None if required is None else node_selector_terms(required.get("nodeSelectorTerms")))

    @property
    def empty(self) -> bool:
        return not self.selector and self.terms is None

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        for key, value in self.selector:
            if labels.get(key) != value:
                return False
        if self.terms is not None and not terms_match(self.terms, labels, name):
            return False
        return True
