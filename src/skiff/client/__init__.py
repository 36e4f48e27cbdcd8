"""How skiff components talk to the API server (the only way they talk at all).

* :mod:`.rest`         ``ApiClient``: async REST verbs, paged lists, watch streams, ``StatusError``
* :mod:`.resources`    ``Resource`` descriptors and URL paths (``PODS``, ``DEPLOYMENTS`` ...)
* :mod:`.kubeconfig`   kubeconfig files -> server, TLS material, token, namespace
* :mod:`.informer`     list + watch caches with event handlers and indexes
* :mod:`.factory`      one shared informer per resource in a process
* :mod:`.workqueue`    client-go style work queue with per-key back-off
* :mod:`.expectations` skip reconciling until the cache has seen your own writes
* :mod:`.clock`        injectable time (``FakeClock`` for tests that never sleep)
"""
