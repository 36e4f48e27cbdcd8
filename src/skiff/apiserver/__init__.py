"""The Kubernetes API server: one generic machine serving every kind of :mod:`skiff.api.kinds`.

Entry point: :func:`skiff.apiserver.app.make_app` (an aiohttp application over a
:class:`~skiff.storage.interface.Backend`); :mod:`.server` runs it with TLS.

A request's path through the modules::

    app.Dispatcher ── paths (URL -> ResourcePath | ApiPath)
       ├─ discovery / documents     /api /apis /version /healthz /openapi/v2|v3
       └─ handlers.ResourceHandlers (verb by method, collection or item)
            ├─ lists       LIST: selectors, limit/continue, resourceVersion semantics
            ├─ watch       WATCH: fed by watchcache (one storage watch for everyone)
            ├─ writes      create / update / the read-modify-write loop patches use
            │    └─ patching (json, merge, strategic, server-side apply)
            ├─ deletion    finalizers, grace periods, propagation policies
            ├─ subresources  status, scale, pods/binding, namespaces/finalize
            ├─ eviction    pods/eviction with PodDisruptionBudgets
            └─ reviews     access reviews (answered, never stored)

    Shared underneath: objects (keys, encoding, resourceVersion), negotiation
    (content types, Accept), tables (Table / PartialObjectMetadata), conversion
    (resources served over another's storage), unknownfields, hooks + lifecycle
    + allocators (the per-kind behaviour: Pods, Namespaces, Service IPs/ports),
    bootstrap (default namespaces and the ``kubernetes`` Service), context.
"""
