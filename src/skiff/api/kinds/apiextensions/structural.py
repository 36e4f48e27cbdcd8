"""Custom objects against a CRD version's ``openAPIV3Schema``: prune, default, validate.

``schema`` is the plain-dict JSONSchemaProps of ``apiextensions.k8s.io/v1`` (the
``schema.openAPIV3Schema`` of one CRD version, already accepted as structural);
``obj`` is a custom object decoded from JSON (integers ``int``, fractions ``float``).
kube-apiserver runs every custom object it decodes through the same steps, in this order::

    request body / stored bytes
          │ decode
          ▼
    prune(schema, obj)            unknown fields removed (their paths feed the
          │                       fieldValidation Warn/Strict answers); nulls of
          │                       non-nullable fields that have no default dropped
          ▼
    apply_defaults(schema, obj)   absent fields (and nulls of non-nullable fields)
          │                       get their ``default``
          ▼
    [caller: apiVersion/kind, root metadata, scale subresource paths]
          ▼
    validate(schema, obj)         schema errors as Causes, worded as Kubernetes words them

Defaults are trusted to be valid and already pruned (Kubernetes prunes and checks them
when the CRD is written), so nothing re-prunes after defaulting.

* :func:`prune` returns the removed fields' paths with a leading dot, sorted:
  ``[".spec.colour", ".spec.items[0].x"]``; the caller words them as
  ``unknown field "spec.colour"``.  The root's ``apiVersion``/``kind``/``metadata`` are
  never touched, nor are those of ``x-kubernetes-embedded-resource`` objects (their
  metadata is kept as sent).  Only ``properties``, ``additionalProperties`` and
  ``items`` decide what is known; ``allOf``/``anyOf``/``oneOf``/``not`` never do.
  ``additionalProperties: true`` keeps the keys but, as in Kubernetes, prunes what is
  inside their values (there is no schema for it).
* :func:`validate` checks the OpenAPI v3 subset CRDs allow (type, nullable, format,
  enum, bounds, lengths, pattern, items, properties, combinators, ...), then embedded
  resources (``apiVersion``/``kind`` present and well-formed, metadata valid), then
  ``x-kubernetes-list-type`` ``set``/``map`` uniqueness -- kube-apiserver's order.
  Field paths have no leading dot (``spec.items[0].name``; map values
  ``spec.labels.foo`` from the schema pass, ``spec.labels[foo]`` from the embedded and
  list passes); errors that belong to no field (anyOf/oneOf/allOf/not) carry the field
  ``<nil>``, as Kubernetes' do.  Kubernetes' quirks are kept on purpose: integer values
  are compared with integer-truncated bounds, ``maxLength`` says "bytes" though it
  counts characters, a null never satisfies an ``enum``, identical error texts are
  reported once.

Formats: only those Kubernetes keeps are checked (:mod:`.formats`).  Patterns run
through Python's ``re`` (search, ``$`` at the very end only, ASCII classes), close to
Go's RE2 for what CRDs use.  Not implemented: ``x-kubernetes-validations`` (CEL rules
are ignored) and update ratcheting.

The work is split by step: :mod:`.pruning` (prune, apply_defaults),
:mod:`.schemavalidator` (the schema pass), :mod:`.resourcechecks` (embedded resources,
list types), over the shared node/path helpers of :mod:`.schemanodes`; values are
printed in Go's forms by :mod:`skiff.api.gofmt`.
"""

from __future__ import annotations

from typing import Any

from ...errors import Cause
from .pruning import apply_defaults, prune
from .resourcechecks import embedded_resource_causes, list_type_causes
from .schemanodes import Schema
from .schemavalidator import schema_causes

__all__ = ["Schema", "apply_defaults", "prune", "validate"]


def validate(schema: Schema, obj: dict[str, Any]) -> list[Cause]:
    """Check ``obj`` against ``schema``; the Causes kube-apiserver reports, in its order:
    schema errors, then embedded resources, then list-type uniqueness.  The root's
    apiVersion/kind/metadata are the caller's (only schema-declared constraints on them
    are checked here, as Kubernetes does)."""
    return schema_causes(schema, obj) + embedded_resource_causes(schema, obj) + list_type_causes(schema, obj)
