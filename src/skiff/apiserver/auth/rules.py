"""RBAC PolicyRules: does a rule allow a request, and does one rule set cover another.

A rule (``verbs``, ``apiGroups``, ``resources``, ``resourceNames``, or
``nonResourceURLs``) allows a request when every list it has matches::

    verbs          "*" or the verb
    apiGroups      "*" or the group ("" = core)
    resources      "*", "pods", "pods/log" (a subresource must be named), "*/scale"
    resourceNames  empty = any name; otherwise the request must name one of them
    nonResourceURLs  "*", "/healthz" exactly, or a prefix ending in "*" ("/apis/*")

:func:`uncovered` is the escalation check: the parts of some rules that a set of
owner rules does not grant, after splitting each rule into single
(verb, group, resource, name) atoms, as Kubernetes' ``Covers`` does.
"""

from __future__ import annotations

from typing import Any, Iterable

from .attributes import Attributes

Obj = dict[str, Any]


class Rule:
    """One PolicyRule, pre-processed for matching."""

    __slots__ = ("verbs", "groups", "resources", "names", "urls", "source")

    def __init__(self, rule: Obj) -> None:
        self.verbs = frozenset(rule.get("verbs") or ())
        self.groups = frozenset(rule.get("apiGroups") or ())
        self.resources = frozenset(rule.get("resources") or ())
        self.names = frozenset(rule.get("resourceNames") or ())
        self.urls = tuple(rule.get("nonResourceURLs") or ())
        self.source = rule

    def allows(self, a: Attributes) -> bool:
        if a.verb not in self.verbs and "*" not in self.verbs:
            return False
        if not a.resource_request:
            return url_matches(self.urls, a.path)
        if a.api_group not in self.groups and "*" not in self.groups:
            return False
        if not resource_matches(self.resources, a.resource, a.subresource):
            return False
        return not self.names or a.name in self.names

    def to_api(self) -> Obj:
        out: Obj = {"verbs": sorted(self.verbs)}
        if self.urls:
            out["nonResourceURLs"] = list(self.urls)
            return out
        out["apiGroups"] = sorted(self.groups)
        out["resources"] = sorted(self.resources)
        if self.names:
            out["resourceNames"] = sorted(self.names)
        return out


def resource_matches(resources: frozenset[str], resource: str, subresource: str) -> bool:
    if "*" in resources:
        return True
    if not subresource:
        return resource in resources
    return f"{resource}/{subresource}" in resources or f"*/{subresource}" in resources


def url_matches(urls: Iterable[str], path: str) -> bool:
    for url in urls:
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def compile_rules(rules: Iterable[Obj] | None) -> tuple[Rule, ...]:
    return tuple(Rule(r) for r in rules or () if isinstance(r, dict))


# -- coverage (escalation prevention) ---------------------------------------------------------

def _atoms(rule: Rule) -> Iterable[tuple[str, ...]]:
    """Split a rule into single-permission atoms."""
    for verb in rule.verbs:
        if rule.urls:
            for url in rule.urls:
                yield ("url", verb, url)
            continue
        for group in rule.groups:
            for resource in rule.resources:
                for name in rule.names or ("",):
                    yield ("res", verb, group, resource, name)


def _covers_atom(owner: Rule, atom: tuple[str, ...]) -> bool:
    verb = atom[1]
    if verb not in owner.verbs and "*" not in owner.verbs:
        return False
    if atom[0] == "url":
        url = atom[2]
        for have in owner.urls:
            if have == "*" or have == url:
                return True
            if have.endswith("*") and url.startswith(have[:-1]):
                return True
        return False
    if owner.urls:
        return False
    group, resource, name = atom[2], atom[3], atom[4]
    if group not in owner.groups and "*" not in owner.groups:
        return False
    if resource not in owner.resources and "*" not in owner.resources:
        head, slash, sub = resource.partition("/")
        if not (slash and head != "*" and f"*/{sub}" in owner.resources):
            return False
    if not owner.names:
        return True
    return bool(name) and name in owner.names


def uncovered(owner: Iterable[Rule], wanted: Iterable[Rule]) -> list[Rule]:
    """The atoms of ``wanted`` that no rule of ``owner`` grants (empty = fully covered)."""
    owners = list(owner)
    missing: list[Rule] = []
    for rule in wanted:
        for atom in _atoms(rule):
            if any(_covers_atom(o, atom) for o in owners):
                continue
            if atom[0] == "url":
                missing.append(Rule({"verbs": [atom[1]], "nonResourceURLs": [atom[2]]}))
            else:
                raw: Obj = {"verbs": [atom[1]], "apiGroups": [atom[2]], "resources": [atom[3]]}
                if atom[4]:
                    raw["resourceNames"] = [atom[4]]
                missing.append(Rule(raw))
    return missing


def describe(rules: Iterable[Rule]) -> str:
    """Rules as kube-apiserver prints them in escalation errors, one per line."""
    lines = []
    for rule in rules:
        def q(values: Iterable[str]) -> str:
            return "[" + " ".join(f'"{v}"' for v in values) + "]"
        if rule.urls:
            lines.append(f"{{NonResourceURLs:{q(rule.urls)}, Verbs:{q(sorted(rule.verbs))}}}")
            continue
        parts = [f"APIGroups:{q(sorted(rule.groups))}", f"Resources:{q(sorted(rule.resources))}"]
        if rule.names:
            parts.append(f"ResourceNames:{q(sorted(rule.names))}")
        parts.append(f"Verbs:{q(sorted(rule.verbs))}")
        lines.append("{" + ", ".join(parts) + "}")
    return "\n".join(lines)
