"""Registry credentials: ``imagePullSecrets`` and the two auth schemes registries use.

Pull secrets are ``kubernetes.io/dockerconfigjson`` (``{"auths": {...}}``) or the
older ``kubernetes.io/dockercfg`` (the ``auths`` map itself).  Each entry is keyed
by a registry (``127.0.0.1:5000``, ``https://index.docker.io/v1/``, ...) and holds
``auth`` (base64 ``user:password``) or ``username``/``password``.

A registry answers ``401`` with a challenge::

    WWW-Authenticate: Basic realm="..."
        -> repeat the request with  Authorization: Basic base64(user:password)
    WWW-Authenticate: Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"
        -> GET realm?service=reg&scope=... (with Basic credentials, if any)
           -> {"token": "..."} (or "access_token")
        -> repeat the request with  Authorization: Bearer <token>
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .reference import DEFAULT_DOMAIN

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                    "registry-1.docker.io", "https://registry-1.docker.io")
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass(frozen=True)
class Challenge:
    scheme: str                 # "basic" or "bearer" (lowercase)
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              .replace('\\"', '"') for m in _CHALLENGE_PARAM.finditer(rest)}
    return Challenge(scheme=scheme.lower(), params=params)


def _registry_key(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000``; Docker Hub spellings -> docker.io."""
    if key in _DOCKER_HUB_KEYS:
        return DEFAULT_DOMAIN
    host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    return DEFAULT_DOMAIN if host in _DOCKER_HUB_KEYS else host


def credentials_for(registry: str, docker_config: bytes | str | dict[str, Any]) -> Credentials | None:
    """Credentials for ``registry`` (a reference's domain) from one pull secret's data."""
    doc = json.loads(docker_config) if isinstance(docker_config, (bytes, str)) else docker_config
    if not isinstance(doc, dict):
        return None
    auths: dict[str, Any] = doc["auths"] if isinstance(doc.get("auths"), dict) else doc
    for key, entry in auths.items():
        if not isinstance(entry, dict) or _registry_key(str(key)) != registry:
            continue
        username, password = entry.get("username"), entry.get("password")
        if entry.get("auth"):
            try:
                username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                continue
        if isinstance(username, str) and isinstance(password, str):
            return Credentials(username, password)
    return None
