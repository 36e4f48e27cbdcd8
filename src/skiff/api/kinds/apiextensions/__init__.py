"""The ``apiextensions.k8s.io/v1`` group: CustomResourceDefinition.

A CustomResourceDefinition (CRD) adds a kind to the API: once its names are
accepted, the API server serves ``/apis/<group>/<version>/[namespaces/<ns>/]<plural>``
for it with the same generic machinery as built-in kinds (see
:mod:`skiff.apiserver.customresources`).  This package holds the pure parts:

* :mod:`.definition`  defaulting and validation of CRD objects themselves
* :mod:`.structural`  pruning, defaulting and validation of custom objects by a
                      version's ``openAPIV3Schema``
* :mod:`.crd`         the CustomResourceDefinition kind (``kubectl get crd``)
"""

from .crd import RESOURCES

__all__ = ["RESOURCES"]
