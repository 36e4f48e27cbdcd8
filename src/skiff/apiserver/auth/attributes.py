"""What a request asks to do, in the terms authorizers decide on (Kubernetes' RequestInfo).

::

    GET    /api/v1/namespaces/default/pods            list   pods           ns=default
    GET    ...pods?watch=true | /api/v1/watch/...      watch  pods
    GET    ...pods?fieldSelector=metadata.name=web     list   pods  name=web
    GET    /api/v1/namespaces/default/pods/web         get    pods  name=web
    GET    ...pods/web/log                             get    pods/log
    POST   collection / PUT / PATCH / DELETE item      create / update / patch / delete
    DELETE collection                                  deletecollection
    GET    /api/v1/namespaces/team-a                   get    namespaces  name=team-a, ns=team-a
    GET    /healthz, /apis/apps ...                    get    non-resource path "/healthz"

A websocket GET of ``pods/exec``, ``pods/attach`` or ``pods/portforward`` is
also checked as ``create`` (Kubernetes 1.30+ does the same), so a read-only
role cannot open a shell.  :func:`forbidden_error` words the 403 exactly as
kube-apiserver does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ...api.errors import StatusError, qualified
from ..paths import ResourcePath
from .user import UserInfo

#: websocket/streaming subresources that need "create" besides "get"
STREAM_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
_RESOURCE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(slots=True)
class Attributes:
    """One question for the authorizer: may ``user`` ``verb`` this resource (or path)?

    Treated as immutable (not frozen only because frozen dataclasses are slow to build,
    and one is built per request).
    """

    user: UserInfo
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # non-resource requests

    @property
    def cache_key(self) -> tuple[str, ...]:
        if self.resource_request:
            return (self.verb, self.namespace, self.api_group, self.resource, self.subresource, self.name)
        return (self.verb, self.path)


def resource_verb(method: str, target: ResourcePath, query: Mapping[str, str]) -> str:
    if method in ("GET", "HEAD"):
        if target.watch or query.get("watch") in ("true", "1"):
            return "watch"
        return "get" if target.name else "list"
    if method == "DELETE":
        return "delete" if target.name else "deletecollection"
    return _RESOURCE_VERBS.get(method, method.lower())


def _name_from_field_selector(query: Mapping[str, str]) -> str:
    selector = query.get("fieldSelector")
    if not selector:
        return ""
    for term in selector.split(","):
        key, sep, value = term.partition("==")
        if not sep:
            key, sep, value = term.partition("=")
        if sep and key.strip() == "metadata.name" and not key.endswith("!"):
            return value.strip()
    return ""


def request_attributes(user: UserInfo, method: str, target: ResourcePath | None, path: str,
                       query: Mapping[str, str]) -> list[Attributes]:
    """The checks one request needs (usually one; streaming subresources two)."""
    if target is None:
        verb = "get" if method == "HEAD" else method.lower()
        return [Attributes(user, verb, False, path=path)]
    verb = resource_verb(method, target, query)
    name = target.name
    if not name and verb in ("list", "watch"):
        name = _name_from_field_selector(query)
    namespace = target.namespace
    if target.plural == "namespaces" and not target.group and target.name:
        namespace = target.name
    first = Attributes(user, verb, True, namespace, target.group, target.version, target.plural,
                       target.subresource, name)
    if verb == "get" and target.subresource in STREAM_SUBRESOURCES and target.plural == "pods":
        return [first, Attributes(user, "create", True, namespace, target.group, target.version,
                                  target.plural, target.subresource, name)]
    return [first]


def forbidden_message(attrs: Attributes) -> str:
    """``User "x" cannot list resource "pods" in API group "" in the namespace "default"``."""
    user = attrs.user.name
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = attrs.resource
    if attrs.subresource:
        resource = f"{resource}/{attrs.subresource}"
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'


def forbidden_error(attrs: Attributes, reason: str = "") -> StatusError:
    """The 403 Status kube-apiserver answers for a denied request."""
    text = forbidden_message(attrs)
    if reason:
        text = f"{text}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return StatusError(403, "Forbidden", f"forbidden: {text}")
    what = qualified(attrs.resource, attrs.api_group)
    subject = f'{what} "{attrs.name}"' if attrs.name else what
    return StatusError(403, "Forbidden", f"{subject} is forbidden: {text}", name=attrs.name,
                       group=attrs.api_group, kind=attrs.resource)


UNAUTHORIZED = StatusError(401, "Unauthorized", "Unauthorized")
