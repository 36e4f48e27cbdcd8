"""ServiceAccounts: identities for processes in pods (tokens via the ``token`` subresource)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m

Obj = dict[str, Any]

SERVICE_ACCOUNT_COLUMNS = (m.NAME_COLUMN, Column("Secrets", description="Number of referenced secrets."),
                           m.AGE_COLUMN)


def service_account_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), len(obj.get("secrets") or []), m.object_age(obj, now)]


def validate_service_account(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    for i, ref in enumerate(obj.get("imagePullSecrets") or []):
        if not ref.get("name"):
            causes.append(m.required(m.child(m.index("imagePullSecrets", i), "name")))
    return causes


SERVICE_ACCOUNTS = ResourceInfo(
    group="", version="v1", kind="ServiceAccount", plural="serviceaccounts", singular="serviceaccount",
    namespaced=True, schema_type="io.k8s.api.core.v1.ServiceAccount", short_names=("sa",),
    subresources=(Subresource("token", "TokenRequest", group="authentication.k8s.io", version="v1",
                              verbs=("create",)),),
    columns=SERVICE_ACCOUNT_COLUMNS, row=service_account_row, validate=validate_service_account,
)
