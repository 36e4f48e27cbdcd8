"""The ``apiextensions.k8s.io/v1`` group: CustomResourceDefinition.

A CustomResourceDefinition (CRD) adds a kind to the API: once its names are
accepted, the API server serves ``/apis/<group>/<version>/[namespaces/<ns>/]<plural>``
for it with the same generic machinery as built-in kinds (see
:mod:`skiff.apiserver.customresources`).  This package holds the pure parts.

The kind itself and the checks on a definition::

    crd.py              the CustomResourceDefinition kind (``kubectl get crd``)
    definition.py       default_crd, validate_crd: metadata, group, scope, names,
                        versions, update rules
      versionparts.py   per version: subresources, printer columns, selectable fields
      conversion.py     spec.conversion and its webhook client config
      schemarules.py    the OpenAPI rules of a version's openAPIV3Schema
      structuralrules.py  the structural-schema rules
      fieldpath.py, common.py  shared pieces

The checks a version's schema makes on custom objects::

    structural.py       prune, apply_defaults, validate (the order the server runs them)
      pruning.py        unknown fields dropped, defaults filled
      schemavalidator.py  types, formats, enum, bounds, patterns, combinators
      formats.py        the string formats Kubernetes checks
      resourcechecks.py   embedded resources, list types set/map
      schemanodes.py    reading schema nodes, naming field paths
"""

from .crd import RESOURCES

__all__ = ["RESOURCES"]
