"""Image references: ``busybox`` -> ``docker.io/library/busybox:latest``.

The grammar is the one every container tool shares (the Docker distribution
"reference" grammar)::

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path
    domain    := the first component, when it contains "." or ":" or is "localhost"
    path      := component ( "/" component )*     lowercase alphanumerics joined by . _ __ -
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex              (sha256:<64 hex> is the one in use)

Normalisation, as Docker and containerd do it:

* no domain              -> ``docker.io``;  ``index.docker.io`` is spelled ``docker.io``
* a one-component path on docker.io gets ``library/``
* neither tag nor digest -> tag ``latest`` (:func:`parse_reference` with ``default_tag``)

``str(ref)`` is the fully qualified form (what the kubelet reports as a
container's image); :meth:`Reference.familiar` is the short form people type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
NAME_TOTAL_MAX = 255


class InvalidReference(ValueError):
    """The string is not an image reference."""


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Repository name with its domain: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def registry_host(self) -> str:
        """The host to talk HTTP to (Docker Hub's API lives on another name)."""
        return DOCKER_HUB_REGISTRY if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def pull_reference(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> "Reference":
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> "Reference":
        return replace(self, digest=digest, tag=None)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """``busybox:latest`` rather than ``docker.io/library/busybox:latest``."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        text = name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise an image reference; raises :class:`InvalidReference`.

    With ``default_tag`` (the default) a reference with neither tag nor digest gets
    ``:latest``, the way the kubelet and containerd resolve ``image: busybox``.
    """
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"invalid reference format: bad digest in {text!r}")
        if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
            raise InvalidReference(f"invalid reference format: bad sha256 digest in {text!r}")
    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid reference format: bad tag in {text!r}")
    domain, path = _split_domain(remainder, text)
    components = path.split("/")
    for component in components:
        if not _COMPONENT.fullmatch(component):
            if component.lower() != component and _COMPONENT.fullmatch(component.lower()):
                raise InvalidReference(f"invalid reference format: repository name ({path}) "
                                       "must be lowercase")
            raise InvalidReference(f"invalid reference format: {text!r}")
    if len(f"{domain}/{path}") > NAME_TOTAL_MAX:
        raise InvalidReference(f"invalid reference format: repository name must not be more "
                               f"than {NAME_TOTAL_MAX} characters")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    if default_tag and tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _split_domain(name: str, original: str) -> tuple[str, str]:
    if not name:
        raise InvalidReference(f"invalid reference format: {original!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"
                or first.lower() != first):
        if not _DOMAIN.fullmatch(first):
            raise InvalidReference(f"invalid reference format: bad domain in {original!r}")
        domain = DEFAULT_DOMAIN if first == LEGACY_DEFAULT_DOMAIN else first
        return domain, rest
    return DEFAULT_DOMAIN, name


def is_digest(text: str) -> bool:
    """``sha256:<64 hex>`` (an image ID or a content digest)."""
    return bool(_SHA256.fullmatch(text))
