"""Dynamic admission control: MutatingWebhookConfiguration and ValidatingWebhookConfiguration.

::

    dispatch.py   which webhooks apply to a write, in what order, and what their answers do
    calls.py      one AdmissionReview over HTTPS (url or Service, caBundle, timeout)

The write path (:mod:`..writes`, :mod:`..deletion`) asks :func:`admission_attributes`
for the request's attributes, then ``ctx.webhooks.mutate(...)`` before the kind's
validation and ``ctx.webhooks.validate(...)`` after quota.  With no configuration
stored, both return at once.
"""

from __future__ import annotations

from typing import Any

from ...api.resource import ResourceInfo
from ..auth.user import current_user
from ..context import ServerContext
from ..objects import decode, object_key
from .calls import Attributes
from .dispatch import WebhookAdmission

Obj = dict[str, Any]
OPTIONS_KINDS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}

__all__ = ["Attributes", "WebhookAdmission", "admission_attributes", "user_info"]


def user_info() -> Obj:
    """The requesting user as an AdmissionReview names it ({} for the server's own writes)."""
    user = current_user.get()
    if user is None:
        return {}
    out: Obj = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


async def admission_attributes(ctx: ServerContext, info: ResourceInfo, operation: str, subresource: str,
                               namespace: str, name: str, obj: Obj | None, old: Obj | None,
                               dry_run: bool) -> Attributes:
    labels: dict[str, str] = {}
    if info.namespaced and namespace:
        ns_info = ctx.registry.get("", "v1", "namespaces")
        kv = await ctx.backend.get(object_key(ns_info, "", namespace)) if ns_info is not None else None
        if kv is not None:
            labels = dict((decode(kv).get("metadata") or {}).get("labels") or {})
    return Attributes(operation=operation, group=info.group, version=info.version, kind=info.kind,
                      resource=info.plural, subresource=subresource, namespace=namespace if info.namespaced else "",
                      name=name, namespaced=info.namespaced, user=user_info(), dry_run=dry_run,
                      options_kind=OPTIONS_KINDS[operation], obj=obj, old=old, labels_of_namespace=labels)
