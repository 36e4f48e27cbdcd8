"""metav1.LabelSelector as workload kinds need it: validation, matching, Go-style values.

Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, PodDisruptionBudgets and
NetworkPolicies all carry a ``LabelSelector``::

    {"matchLabels": {"app": "web"},
     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}

Kubernetes turns it into a selector with three possible meanings, which
matter for validation:

    None (absent)        -> matches nothing   (and "selector: Required value")
    {} (no requirement)  -> matches everything
    requirements         -> all of them must hold

Field errors about selectors and related values quote them the way Go's ``%#v``
prints them (``v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, ...}``);
:func:`go_selector`, :func:`go_labels` and :func:`go_int_or_string` produce those
strings, and :func:`invalid_quoted` builds a cause from such pre-rendered text.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ...errors import Cause
from .. import meta as m

Obj = dict[str, Any]

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def invalid_quoted(path: str, rendered: str, detail: str) -> Cause:
    """An ``Invalid value`` cause whose value is already rendered (Go ``%#v`` text)."""
    body = f"Invalid value: {rendered}"
    return Cause("FieldValueInvalid", f"{body}: {detail}" if detail else body, path)


def _go_string(s: Any) -> str:
    return json.dumps(str(s), ensure_ascii=False)


def go_labels(labels: Mapping[str, Any] | None) -> str:
    """``map[string]string{"a":"1", "b":"2"}``; a missing map is ``map[string]string(nil)``."""
    if labels is None:
        return "map[string]string(nil)"
    return "map[string]string{" + ", ".join(
        f"{_go_string(k)}:{_go_string(labels[k])}" for k in sorted(labels)) + "}"


def _go_strings(values: list[Any] | None) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_string(v) for v in values) + "}"


def go_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector as Go's ``%#v`` prints ``v1.LabelSelector``; ``null`` when absent."""
    if selector is None:
        return "null"
    exprs = selector.get("matchExpressions")
    if exprs is None:
        rendered_exprs = "[]v1.LabelSelectorRequirement(nil)"
    else:
        rendered_exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{_go_string(e.get('key', ''))}, "
            f"Operator:{_go_string(e.get('operator', ''))}, Values:{_go_strings(e.get('values'))}}}"
            for e in exprs) + "}"
    return (f"v1.LabelSelector{{MatchLabels:{go_labels(selector.get('matchLabels'))}, "
            f"MatchExpressions:{rendered_exprs}}}")


def go_int_or_string(value: Any) -> str:
    """An IntOrString as ``%#v`` prints it: ``intstr.IntOrString{Type:1, IntVal:0, StrVal:"5%"}``."""
    if isinstance(value, str):
        return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{_go_string(value)}}}"
    return f"intstr.IntOrString{{Type:0, IntVal:{int(value or 0)}, StrVal:\"\"}}"


def validate_label_selector(selector: Mapping[str, Any] | None, path: str) -> list[Cause]:
    """ValidateLabelSelector: valid label keys/values and well-formed expressions."""
    if selector is None:
        return []
    causes = m.validate_labels(selector.get("matchLabels"), m.child(path, "matchLabels"))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        p = m.index(m.child(path, "matchExpressions"), i)
        op = expr.get("operator", "")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                causes.append(m.required(m.child(p, "values"),
                                         "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(m.forbidden(m.child(p, "values"),
                                          "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(m.invalid(m.child(p, "operator"), op, "not a valid selector operator"))
        key = expr.get("key", "")
        causes += m.invalid_each(m.child(p, "key"), key, m.is_qualified_name(key))
        for j, value in enumerate(values):
            causes += m.invalid_each(m.index(m.child(p, "values"), j), value,
                                     m.is_valid_label_value(str(value)))
    return causes


def is_empty(selector: Mapping[str, Any] | None) -> bool:
    """A present selector without any requirement (it selects everything)."""
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


def is_well_formed(selector: Mapping[str, Any] | None) -> bool:
    """Whether Kubernetes can turn the selector into requirements (LabelSelectorAsSelector)."""
    if selector is None:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if m.is_qualified_name(k) or m.is_valid_label_value(str(v)):
            return False
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        values = expr.get("values") or []
        if op not in OPERATORS or m.is_qualified_name(expr.get("key", "")):
            return False
        if op in ("In", "NotIn") and not values:
            return False
        if op in ("Exists", "DoesNotExist") and values:
            return False
        if any(m.is_valid_label_value(str(v)) for v in values):
            return False
    return True


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any] | None) -> bool:
    """Does a label set satisfy the selector?  An absent selector matches nothing."""
    if selector is None:
        return False
    have = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if k not in have or have[k] != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator")
        values = expr.get("values") or []
        if op == "In" and not (key in have and have[key] in values):
            return False
        if op == "NotIn" and key in have and have[key] in values:
            return False
        if op == "Exists" and key not in have:
            return False
        if op == "DoesNotExist" and key in have:
            return False
    return True


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """``selector.String()``: like :func:`meta.format_selector` but empty instead of ``<none>``."""
    text = m.format_selector(selector)
    return "" if text == "<none>" else text
