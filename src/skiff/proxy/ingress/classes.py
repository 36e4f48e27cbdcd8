"""Which Ingresses the skiff ingress controller serves (IngressClass rules).

An Ingress names its controller through an IngressClass::

    Ingress ──spec.ingressClassName: skiff──▶ IngressClass skiff ──spec.controller──▶ skiff.dev/ingress

The controller serves an Ingress when, checked in this order,

1. its legacy annotation ``kubernetes.io/ingress.class`` names one of our classes
   (a present annotation that names another class means "not ours");
2. else its ``spec.ingressClassName`` names one of our classes;
3. else (no class at all) one of our classes is the cluster default, i.e. is
   annotated ``ingressclass.kubernetes.io/is-default-class: "true"``.

"Our classes" are the IngressClasses whose ``spec.controller`` is
``skiff.dev/ingress``. The controller creates the class ``skiff`` (marked default)
at start when it does not exist; an existing one is left as its owner wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

Obj = dict[str, Any]

CONTROLLER_NAME = "skiff.dev/ingress"
CLASS_NAME = "skiff"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def skiff_ingress_class(name: str = CLASS_NAME) -> Obj:
    """The IngressClass the controller creates when it is missing (the default class)."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                         "labels": {"app.kubernetes.io/component": "controller",
                                    "app.kubernetes.io/managed-by": "skiff"}},
            "spec": {"controller": CONTROLLER_NAME}}


class OurClasses(NamedTuple):
    names: frozenset[str]   # IngressClasses handled by this controller
    default: bool           # one of them is the cluster's default class

    def serves(self, ingress: Obj) -> bool:
        """True when this controller should serve ``ingress`` (see module docstring)."""
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        legacy = annotations.get(LEGACY_CLASS_ANNOTATION)
        if legacy is not None:
            return legacy in self.names
        class_name = (ingress.get("spec") or {}).get("ingressClassName")
        if class_name:
            return class_name in self.names
        return self.default


def our_classes(ingress_classes: Iterable[Obj], controller: str = CONTROLLER_NAME) -> OurClasses:
    """The classes whose ``spec.controller`` is ``controller``, and whether one is the default."""
    names: set[str] = set()
    default = False
    for ingress_class in ingress_classes:
        if (ingress_class.get("spec") or {}).get("controller") != controller:
            continue
        meta = ingress_class.get("metadata") or {}
        names.add(str(meta.get("name", "")))
        annotations = meta.get("annotations") or {}
        default = default or str(annotations.get(DEFAULT_CLASS_ANNOTATION, "")).lower() == "true"
    return OurClasses(frozenset(names), default)
