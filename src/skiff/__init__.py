"""skiff: Kubernetes, rebuilt in Python.

Package map (dependencies point downwards only):

    cli/                 the `skiff` command: up, server, agent, image
    scheduler/ controllers/ kubelet/ proxy/     components; talk only through the API
    apiserver/           HTTP(S) API server; the only importer of storage/
    client/              async REST client, informers, work queues
    storage/             etcd-shaped revisioned key-value store (sqlite, etcd)
    api/                 kinds as data: schemas, defaults, validation, tables, errors
"""

__version__ = "0.1.0"

#: The Kubernetes release whose API skiff serves.
KUBERNETES_VERSION = "v1.32.4"
