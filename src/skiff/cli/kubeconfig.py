"""Writing the admin kubeconfig that `skiff up` prints for the user.

The file embeds the CA, the admin client certificate and its key (base64, as
``kubectl config view --raw`` shows them) so it works from any directory.  It is
written atomically (temp file + rename, mode 0600): a reader that sees the file
sees all of it, which is what tests and scripts waiting for it rely on.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from ..apiserver.pki import ClusterPKI


def write_admin_kubeconfig(path: Path, server_url: str, pki: ClusterPKI,
                           cluster_name: str = "skiff") -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "server": server_url, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": b64(pki.admin_cert),
            "client-key-data": b64(pki.admin_key)}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": "admin"}}],
        "current-context": cluster_name,
        "preferences": {},
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)
