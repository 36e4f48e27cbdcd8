"""Per-namespace defaults: the ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap.

Two small controllers with the same shape, keyed by namespace name::

    namespace added / updated ─┐
    ServiceAccount "default" deleted ─┴─▶ reconcile(ns):
        namespace missing or not Active (Terminating)?  nothing to do
        "default" missing from the cache?                 create it (409 is fine:
                                                          the cache was behind)

:class:`ServiceAccountsController` (kube-controller-manager's ``serviceaccount``)
keeps a ``default`` ServiceAccount in every namespace, recreating it when deleted.

:class:`RootCACertPublisher` (``root-ca-cert-publisher``) keeps a ConfigMap
``kube-root-ca.crt`` whose ``data["ca.crt"]`` is the cluster CA bundle (PEM), so
pods can verify the API server; it puts the content back if someone edits it.
It runs only when the caller has a CA to publish (``ca_pem``).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..client.informer import Informer
from ..client.resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS
from .reconciler import Controller, ControllerContext

Obj = dict[str, Any]

DEFAULT_SERVICE_ACCOUNT = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"


def _active(ns: Obj | None) -> bool:
    if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return bool((ns.get("status") or {}).get("phase", "Active") == "Active")


def _ignorable(e: StatusError) -> bool:
    """409: it exists after all; 403/404: the namespace is terminating or gone."""
    return e.code in (403, 404, 409)


class _PerNamespace(Controller):
    """Shared wiring: a namespace informer plus one informer of the managed objects."""

    #: name of the object kept in every namespace
    managed_name: ClassVar[str] = ""

    def _watch(self, managed: Informer) -> None:
        self.namespaces: Informer = self.informer(NAMESPACES)
        self.namespaces.add_handler(on_add=self.enqueue,
                                    on_update=lambda _old, new: self.enqueue(new))
        self.managed = managed
        managed.add_handler(on_update=lambda _old, new: self._managed_changed(new),
                            on_delete=self._managed_changed)

    def _managed_changed(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("name") == self.managed_name and meta.get("namespace"):
            self.enqueue_key(meta["namespace"])


class ServiceAccountsController(_PerNamespace):
    """Creates the ``default`` ServiceAccount in every active namespace."""

    name: ClassVar[str] = "serviceaccount"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = "service-account-controller"
    managed_name: ClassVar[str] = DEFAULT_SERVICE_ACCOUNT

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._watch(self.informer(SERVICEACCOUNTS))

    async def reconcile(self, key: str) -> float | None:
        if not _active(self.namespaces.get(key)):
            return None
        if self.managed.get_by(key, DEFAULT_SERVICE_ACCOUNT) is not None:
            return None
        try:
            await self.client.create(SERVICEACCOUNTS, {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_SERVICE_ACCOUNT}}, namespace=key)
        except StatusError as e:
            if not _ignorable(e):
                raise
        return None


class RootCACertPublisher(_PerNamespace):
    """Publishes the cluster CA as ConfigMap ``kube-root-ca.crt`` in every active namespace."""

    name: ClassVar[str] = "root-ca-cert-publisher"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = "root-ca-cert-publisher"
    managed_name: ClassVar[str] = ROOT_CA_CONFIGMAP

    def __init__(self, ctx: ControllerContext, *, ca_pem: str | bytes) -> None:
        super().__init__(ctx)
        self.ca = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
        self._watch(self.informer(CONFIGMAPS))

    async def reconcile(self, key: str) -> float | None:
        if not _active(self.namespaces.get(key)):
            return None
        current = self.managed.get_by(key, ROOT_CA_CONFIGMAP)
        try:
            if current is None:
                await self.client.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP},
                    "data": {ROOT_CA_KEY: self.ca}}, namespace=key)
            elif (current.get("data") or {}) != {ROOT_CA_KEY: self.ca} or current.get("binaryData"):
                fixed = copy.deepcopy(current)
                fixed["data"] = {ROOT_CA_KEY: self.ca}
                fixed.pop("binaryData", None)
                await self.client.update(CONFIGMAPS, fixed, namespace=key)
        except StatusError as e:
            if not _ignorable(e):
                raise
        return None
