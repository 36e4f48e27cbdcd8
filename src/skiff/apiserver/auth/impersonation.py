"""Impersonation: acting as another user (``kubectl --as=... --as-group=...``).

Headers, as kubectl sends them::

    Impersonate-User: jane  |  system:serviceaccount:<ns>:<name>
    Impersonate-Group: developers          (repeated, one per group)
    Impersonate-Uid: 06f6ce97-...
    Impersonate-Extra-<key>: value         (repeated; key percent-encoded)

The requester needs the ``impersonate`` verb on each thing it claims::

    users/<name>  or  serviceaccounts/<name> in <ns>     (API group "")
    groups/<name>                                         (API group "")
    uids/<uid>, userextras/<key> with name <value>        (authentication.k8s.io)

The impersonated user gets system:authenticated (system:unauthenticated for
system:anonymous), and a ServiceAccount with no groups asked for gets its
ServiceAccount groups.  The request is then authorized as that user.
"""

from __future__ import annotations

from urllib.parse import unquote

from multidict import CIMultiDictProxy

from ...api.errors import bad_request
from .attributes import Attributes, forbidden_error
from .rbac import Authorizer
from .user import (ANONYMOUS_NAME, AUTHENTICATED, UNAUTHENTICATED, UserInfo,
                   service_account_groups, split_service_account)

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
AUTHN_GROUP = "authentication.k8s.io"


def wants_impersonation(headers: CIMultiDictProxy[str]) -> bool:
    return USER in headers or GROUP in headers or UID in headers


def impersonate(requester: UserInfo, headers: CIMultiDictProxy[str], authorizer: Authorizer) -> UserInfo:
    """The user ``requester`` acts as; raises 403 when not allowed, 400 when incomplete."""
    name = headers.get(USER, "")
    groups = list(headers.getall(GROUP, []))
    uid = headers.get(UID, "")
    extra: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith(EXTRA_PREFIX):
            extra.setdefault(unquote(key[len(EXTRA_PREFIX):]).lower(), []).append(value)
    if not name:
        raise bad_request("requested impersonation of groups, uid or extra without impersonating a user")
    checks: list[Attributes] = []
    sa = split_service_account(name)
    if sa is not None:
        checks.append(Attributes(requester, "impersonate", True, sa[0], "", "", "serviceaccounts", "", sa[1]))
        if not groups:
            groups = list(service_account_groups(sa[0])[:2])
    else:
        checks.append(Attributes(requester, "impersonate", True, "", "", "", "users", "", name))
    for group in groups:
        checks.append(Attributes(requester, "impersonate", True, "", "", "", "groups", "", group))
    if uid:
        checks.append(Attributes(requester, "impersonate", True, "", AUTHN_GROUP, "", "uids", "", uid))
    for key, values in extra.items():
        for value in values:
            checks.append(Attributes(requester, "impersonate", True, "", AUTHN_GROUP, "", "userextras",
                                     key, value))
    for attrs in checks:
        decision = authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden_error(attrs, decision.reason)
    if name == ANONYMOUS_NAME:
        if UNAUTHENTICATED not in groups:
            groups.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, uid=uid, groups=tuple(groups), extra={k: tuple(v) for k, v in extra.items()})
