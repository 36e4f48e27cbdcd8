"""Keeping the default RBAC policy in place across starts (``rbac.authorization.kubernetes.io/autoupdate``).

On every API server start, for each default ClusterRole and ClusterRoleBinding
(:mod:`.defaultroles`)::

    missing                                   -> created
    annotated autoupdate: "false"             -> left exactly as the admin made it
    otherwise                                 -> missing labels/annotations added,
                                                 rules it lacks added (extra rules kept),
                                                 aggregation selectors merged,
                                                 missing subjects added

Like kube-apiserver's reconciliation, permissions are only ever added back,
never removed, so a cluster upgraded in place keeps what admins granted.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...api.errors import StatusError
from ..context import ServerContext
from ..objects import decode, object_key
from ..writes import WriteOptions, Writer
from .defaultroles import AUTOUPDATE, GROUP, cluster_role_bindings, cluster_roles
from .rules import compile_rules, uncovered

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MANAGER = WriteOptions(field_manager="skiff-apiserver")


def _merge_meta(current: Obj, expected: Obj) -> None:
    meta = current.setdefault("metadata", {})
    for field in ("labels", "annotations"):
        wanted = expected["metadata"].get(field) or {}
        have = meta.setdefault(field, {})
        for key, value in wanted.items():
            have.setdefault(key, value)


def reconciled_role(current: Obj, expected: Obj) -> Obj:
    out = copy.deepcopy(current)
    _merge_meta(out, expected)
    if expected.get("aggregationRule") is not None:
        selectors = (out.setdefault("aggregationRule", {}).setdefault("clusterRoleSelectors", []))
        for selector in expected["aggregationRule"].get("clusterRoleSelectors") or []:
            if selector not in selectors:
                selectors.append(selector)
        return out  # the aggregator owns the rules
    have = compile_rules(out.get("rules"))
    for rule in expected.get("rules") or []:
        if uncovered(have, compile_rules([rule])):
            out.setdefault("rules", []).append(copy.deepcopy(rule))
    return out


def reconciled_binding(current: Obj, expected: Obj) -> Obj:
    out = copy.deepcopy(current)
    _merge_meta(out, expected)
    subjects = out.setdefault("subjects", [])
    for subject in expected.get("subjects") or []:
        if not any(s.get("kind") == subject["kind"] and s.get("name") == subject["name"] for s in subjects):
            subjects.append(dict(subject))
    return out


async def reconcile_default_policy(ctx: ServerContext, writer: Writer) -> None:
    work = [("clusterroles", o, reconciled_role) for o in cluster_roles()]
    work += [("clusterrolebindings", o, reconciled_binding) for o in cluster_role_bindings()]
    for plural, expected, merge in work:
        info = ctx.registry.get(GROUP, "v1", plural)
        if info is None:
            return
        name = expected["metadata"]["name"]
        try:
            kv = await ctx.backend.get(object_key(info, "", name))
            if kv is None:
                await writer.create(info, "", copy.deepcopy(expected), MANAGER, [])
                continue
            current = decode(kv)
            annotations = current["metadata"].get("annotations") or {}
            if annotations.get(AUTOUPDATE) == "false":
                continue
            if merge(current, expected) == current:
                continue
            await writer.read_modify_write(info, "", name, lambda cur, _old: merge(cur, expected), MANAGER)
        except StatusError as err:
            if err.code != 409:
                raise
            log.info("default RBAC object %s/%s changed while reconciling; kept", plural, name)
