"""CustomResourceDefinitions: kinds added to the API while it runs.

::

    POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions   (stored like any kind)
          │ watch cache
          ▼
    ServedDefinitions (served.py)    CRDs in memory ──▶ registry = built-ins + custom kinds
          │                                              ──▶ ctx.serve(): handlers, discovery,
          ▼                                                  OpenAPI follow at once
    DefinitionController (controller.py)   acceptedNames, NamesAccepted, Established,
                                           storedVersions; on delete: remove every object,
                                           then the cleanup finalizer
    kinds.py    a CRD's served versions as ResourceInfo records: schema pruning, defaults,
                validation, printer columns, status and scale subresources

Custom objects then go through the same generic write, list, watch, patch, delete
and garbage-collection paths as built-in ones.  Conversion between versions is
strategy ``None`` (only ``apiVersion`` changes); conversion webhooks and CEL
``x-kubernetes-validations`` rules are not run.
"""

from .controller import DefinitionController

__all__ = ["DefinitionController"]
