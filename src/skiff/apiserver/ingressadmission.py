"""DefaultIngressClass admission: an Ingress created without a class gets the default one.

As kube-apiserver's plugin of that name: on create, an Ingress with neither
``spec.ingressClassName`` nor the legacy annotation ``kubernetes.io/ingress.class``
gets the IngressClass annotated ``ingressclass.kubernetes.io/is-default-class: "true"``
(several defaults: the newest, then the first by name).  No default: unchanged, and
controllers that serve class-less Ingresses may still pick it up.  ``kubectl get
ingress`` then shows the class, as on any cluster with a default class.
"""

from __future__ import annotations

from typing import Any

from ..api.kinds.networking import INGRESSCLASSES
from .hooks import ClassCache, DefaultClassAdmission
from .objects import collection_prefix

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


class IngressClasses(ClassCache):
    """The IngressClasses this server knows (hooks of ``networking.k8s.io/ingressclasses``)."""

    def __init__(self) -> None:
        super().__init__(collection_prefix(INGRESSCLASSES, ""))

    def default(self) -> Obj | None:
        defaults = sorted((c for c in self.classes.values()
                           if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"),
                          key=lambda c: str(c["metadata"]["name"]))
        return max(defaults, key=lambda c: str(c["metadata"].get("creationTimestamp") or ""), default=None)


class IngressAdmission(DefaultClassAdmission):
    """Ingresses: the default class on create."""

    def __init__(self, classes: IngressClasses) -> None:
        super().__init__(classes, "ingressClassName", LEGACY_CLASS_ANNOTATION)
