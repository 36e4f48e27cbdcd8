"""A container's environment, and ``$(VAR)`` expansion, as the kubelet computes them.

Sources, in the order they are applied (a later name replaces an earlier one)::

    envFrom      every key of a ConfigMap / Secret, with an optional prefix; keys that
                 are not valid variable names are skipped (and reported)
    env          value (with $(VAR) expanded against what is defined so far and the
                 service links), or valueFrom:
                   configMapKeyRef / secretKeyRef     one key (optional: may be absent)
                   fieldRef                           metadata.name, .namespace, .uid,
                                                      metadata.labels['k'], .annotations['k'],
                                                      spec.nodeName, spec.serviceAccountName,
                                                      status.hostIP(s), status.podIP(s)
                   resourceFieldRef                   limits/requests of cpu, memory,
                                                      ephemeral-storage, divided by
                                                      ``divisor`` and rounded up; an unset
                                                      limit reads as the node's allocatable
    service links  ``FOO_SERVICE_HOST`` ... (see .servicelinks) for names not set above

``$(VAR)`` rules (also for command, args and subPathExpr): ``$(NAME)`` becomes the
variable's value when NAME is defined and is left as written otherwise; ``$$``
becomes ``$``, so ``$$(NAME)`` stays literal.

A reference that cannot be resolved (a missing ConfigMap, Secret or key that is not
optional) raises :class:`EnvError`; the kubelet reports it as the container's
``CreateContainerConfigError`` with the same message Kubernetes uses.

Pure: the objects it reads come in through :class:`EnvSources`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api.quantity import QuantityError, parse_quantity
from .servicelinks import service_env

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]   # (namespace, name) -> object or None


class EnvError(Exception):
    """A reference in env/envFrom cannot be resolved (CreateContainerConfigError)."""


@dataclass(frozen=True)
class EnvSources:
    """What the environment may be built from."""

    config_map: Lookup
    secret: Lookup
    services: Sequence[Obj] = ()
    host_ips: Sequence[str] = ()
    pod_ips: Sequence[str] = ()
    node_allocatable: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Environment:
    variables: list[tuple[str, str]]
    #: envFrom keys skipped as invalid names: (source description, [keys])
    skipped: list[tuple[str, list[str]]] = field(default_factory=list)


def valid_env_name(name: str) -> bool:
    """Kubernetes v1.32 (relaxed validation): printable ASCII, no '=', not empty."""
    return bool(name) and all(32 <= ord(c) <= 126 for c in name) and "=" not in name


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """``$(VAR)`` expansion with ``$$`` as the escape (see module docstring)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append(text[i:])
                break
            name = text[i + 2:close]
            value = lookup(name) if name else None
            out.append(value if value is not None else text[i:close + 1])
            i = close + 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _data_of(obj: Obj, kind: str) -> dict[str, str]:
    """String values of a ConfigMap (data + binaryData) or a Secret (base64 data)."""
    if kind == "secret":
        out = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(value).decode("utf-8", errors="replace")
            except (ValueError, TypeError):
                out[key] = ""
        for key, value in (obj.get("stringData") or {}).items():
            out[key] = str(value)
        return out
    data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        data.setdefault(key, base64.b64decode(value).decode("utf-8", errors="replace"))
    return data


def _field_value(pod: Obj, path: str, sources: EnvSources) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    for prefix, mapping in (("metadata.labels", meta.get("labels")),
                            ("metadata.annotations", meta.get("annotations"))):
        if path.startswith(prefix + "["):
            key = path[len(prefix) + 1:].rstrip("]").strip("'\"")
            return str((mapping or {}).get(key, ""))
    simple: dict[str, str] = {
        "metadata.name": str(meta.get("name", "")),
        "metadata.namespace": str(meta.get("namespace", "")),
        "metadata.uid": str(meta.get("uid", "")),
        "spec.nodeName": str(spec.get("nodeName", "")),
        "spec.serviceAccountName": str(spec.get("serviceAccountName", "")),
        "status.hostIP": sources.host_ips[0] if sources.host_ips else "",
        "status.hostIPs": ",".join(sources.host_ips),
        "status.podIP": sources.pod_ips[0] if sources.pod_ips else "",
        "status.podIPs": ",".join(sources.pod_ips),
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map((meta.get(path.split(".")[1]) or {}))
    raise EnvError(f"unsupported fieldRef {path!r}")


def format_map(mapping: Mapping[str, Any]) -> str:
    """``key="value"`` lines, sorted (labels/annotations in the downward API)."""
    return "\n".join(f'{k}="{_quote(str(v))}"' for k, v in sorted(mapping.items()))


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def resource_value(container: Obj, ref: Obj, allocatable: Mapping[str, str]) -> str:
    """A resourceFieldRef as a string, rounded up to whole ``divisor`` units."""
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(name)
    if raw is None and kind == "limits":
        raw = allocatable.get(name)
    if raw is None:
        raw = "0"
    try:
        amount = parse_quantity(str(raw))
        divisor = parse_quantity(str(ref.get("divisor") or "0"))
    except QuantityError as err:
        raise EnvError(f"invalid resourceFieldRef {resource}: {err}") from err
    if name == "cpu":
        divide_by = divisor.milli_value() or 1000
        return str(math.ceil(amount.milli_value() / divide_by))
    divide_by = divisor.value() or 1
    return str(math.ceil(amount.value() / divide_by))


def _key_ref(pod: Obj, ref: Obj, kind: str, sources: EnvSources) -> str | None:
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    optional = bool(ref.get("optional"))
    obj = (sources.config_map if kind == "configMap" else sources.secret)(namespace, name)
    label = "configmap" if kind == "configMap" else "secret"
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{label} "{name}" not found')
    data = _data_of(obj, "secret" if kind == "secret" else "configMap")
    if key not in data:
        if optional:
            return None
        what = "ConfigMap" if kind == "configMap" else "Secret"
        raise EnvError(f"couldn't find key {key} in {what} {namespace}/{name}")
    return data[key]


def container_env(pod: Obj, container: Obj, sources: EnvSources) -> Environment:
    """The environment Kubernetes gives ``container`` of ``pod`` (image env not included)."""
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    spec = pod.get("spec") or {}
    links = {v["name"]: v["value"] for v in service_env(
        sources.services, namespace, spec.get("enableServiceLinks") is not False)}
    env: dict[str, str] = {}
    skipped: list[tuple[str, list[str]]] = []
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, label, lookup in (("configMapRef", "configMap", sources.config_map),
                                    ("secretRef", "secret", sources.secret)):
            ref = source.get(kind)
            if not isinstance(ref, dict):
                continue
            obj = lookup(namespace, str(ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{label.lower()} "{ref.get("name", "")}" not found')
            bad = []
            for key, text in _data_of(obj, "secret" if label == "secret" else "configMap").items():
                if not valid_env_name(prefix + key):
                    bad.append(prefix + key)
                    continue
                env[prefix + key] = text
            if bad:
                skipped.append((f"{label} {namespace}/{ref.get('name', '')}", sorted(bad)))

    def lookup_name(name: str) -> str | None:
        return env[name] if name in env else links.get(name)

    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        source = var.get("valueFrom")
        if not isinstance(source, dict):
            env[name] = expand(str(var.get("value") or ""), lookup_name)
            continue
        value: str | None
        if isinstance(source.get("configMapKeyRef"), dict):
            value = _key_ref(pod, source["configMapKeyRef"], "configMap", sources)
        elif isinstance(source.get("secretKeyRef"), dict):
            value = _key_ref(pod, source["secretKeyRef"], "secret", sources)
        elif isinstance(source.get("fieldRef"), dict):
            value = _field_value(pod, str(source["fieldRef"].get("fieldPath", "")), sources)
        elif isinstance(source.get("resourceFieldRef"), dict):
            ref = source["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                target = next((c for c in _all_containers(pod) if c.get("name") == ref["containerName"]),
                              container)
            value = resource_value(target, ref, sources.node_allocatable)
        else:
            value = ""
        if value is not None:
            env[name] = value
    for name, value in links.items():
        env.setdefault(name, value)
    return Environment(list(env.items()), skipped)


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def expand_command(values: Sequence[str] | None, env: Sequence[tuple[str, str]]) -> list[str] | None:
    """command/args with ``$(VAR)`` expanded against the container's environment."""
    if values is None:
        return None
    table = dict(env)
    return [expand(str(v), table.get) for v in values]
