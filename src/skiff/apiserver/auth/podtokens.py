"""ServiceAccount admission for pods: every pod gets its API credentials as a volume.

On pod create (unless ``spec.automountServiceAccountToken: false`` or a mirror
pod), like Kubernetes' ServiceAccount admission plugin::

    spec.serviceAccountName          defaulted to "default" (by the pod defaults)
    spec.volumes += kube-api-access-<5 random>:
        projected (defaultMode 420):
          serviceAccountToken  path "token", expirationSeconds 3607   (kubelet: TokenRequest)
          configMap            kube-root-ca.crt, key ca.crt -> ca.crt
          downwardAPI          metadata.namespace -> namespace
    every container and init container without a mount at the token path gets
        {name: kube-api-access-..., mountPath: /var/run/secrets/kubernetes.io/serviceaccount,
         readOnly: true}

A pod that already has a ``kube-api-access-*`` volume keeps it.  The hook
wraps the pods' other hooks (priority admission, graceful deletion).
"""

from __future__ import annotations

import secrets
from typing import Any

from ..hooks import KindHooks, Reservation

Obj = dict[str, Any]

VOLUME_PREFIX = "kube-api-access-"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def api_access_volume(name: str) -> Obj:
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def mount_service_account_token(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    if spec.get("automountServiceAccountToken") is False:
        return
    if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
        return
    spec.setdefault("serviceAccountName", "default")
    volumes = spec.setdefault("volumes", [])
    existing = next((v["name"] for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), "")
    name = existing or VOLUME_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(5))
    needed = False
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            mounts = container.get("volumeMounts") or []
            if any(m.get("mountPath") == TOKEN_PATH for m in mounts):
                continue
            container["volumeMounts"] = mounts
            mounts.append({"name": name, "readOnly": True, "mountPath": TOKEN_PATH})
            needed = True
    if needed and not existing:
        volumes.append(api_access_volume(name))
    if not volumes:
        del spec["volumes"]


class ServiceAccountAdmission(KindHooks):
    """Pod hooks: the token volume on create, then whatever ``inner`` does."""

    def __init__(self, inner: KindHooks) -> None:
        self.inner = inner

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        if old is None:
            mount_service_account_token(obj)
        return self.inner.admit(obj, old)

    def removed(self, obj: Obj) -> None:
        self.inner.removed(obj)

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        return self.inner.grace_period(obj, requested)

    def blocks_removal(self, obj: Obj) -> bool:
        return self.inner.blocks_removal(obj)

    def mark_deleting(self, obj: Obj) -> None:
        self.inner.mark_deleting(obj)
