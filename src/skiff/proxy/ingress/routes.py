"""Ingress rules → a route table, and a request's (host, path) → the route that serves it.

Pure: no I/O, no clock. The controller rebuilds the table whenever an Ingress it
serves changes; the proxy asks it once per request::

    Ingresses we serve (oldest first)
        │ build_table()
        ▼
    RouteTable ── exact hosts   {"shop.example.com": Server}
               ── wildcards     {".example.com": Server}        (rule host "*.example.com")
               ── catch-all     Server                           (rules without a host)
    Server ── routes, best first; fallback (an Ingress's spec.defaultBackend) or none

    match(host, path):  exact host's Server, else wildcard Server (one label only:
                        *.example.com matches a.example.com, not a.b.example.com nor
                        example.com), else the catch-all Server
                        → its first route whose path matches, else its fallback,
                        else None (the proxy answers 404)

Path matching (Kubernetes semantics, case-sensitive):

* ``Exact``: the request path equals the rule's path.
* ``Prefix``: element-wise prefix over ``/``-separated elements, trailing
  slashes ignored: ``/foo`` matches ``/foo``, ``/foo/`` and ``/foo/bar``, not ``/foobar``.
* ``ImplementationSpecific``: treated as ``Prefix`` (an empty path means ``/``).
* Precedence: the longest path wins; at equal length ``Exact`` beats ``Prefix``.

Several Ingresses may add rules to one host; for the same host, path and pathType
the oldest Ingress wins (later ones are reported as conflicts). The first Ingress
to name a host gives that host its fallback (its ``defaultBackend``); the oldest
Ingress with a ``defaultBackend`` gives the catch-all Server its fallback.

ingress-nginx annotations that change matching (see docs/ingress.md):

* ``use-regex: "true"`` or a ``rewrite-target`` on any route of a host turns
  every path of that host into a case-insensitive regular expression anchored at
  the start (``^path``), tried longest path first, as ingress-nginx does.
* ``rewrite-target``: the upstream path becomes the target with ``$1``..``$9``
  filled from the path regex (searched in the request path), query kept.
* ``ssl-redirect`` (default true for hosts in the Ingress's ``spec.tls``) and
  ``force-ssl-redirect``: plain-HTTP requests get a 308 to https.
Canary Ingresses (canary.py) attach a second backend to a route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .canary import PREFIX, CanaryPolicy, Roll, parse_bool, pcre_to_python

Obj = dict[str, Any]

USE_REGEX = PREFIX + "use-regex"
REWRITE_TARGET = PREFIX + "rewrite-target"
SSL_REDIRECT = PREFIX + "ssl-redirect"
FORCE_SSL_REDIRECT = PREFIX + "force-ssl-redirect"


@dataclass(frozen=True)
class BackendRef:
    """A Service port an Ingress sends traffic to: its ``port`` number, or port name."""

    namespace: str
    service: str
    port: int | str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


def backend_ref(namespace: str, backend: Obj | None) -> BackendRef | None:
    """The Service backend of an IngressBackend; None for resource backends (unsupported)."""
    service = (backend or {}).get("service")
    if not service or not service.get("name"):
        return None
    port = service.get("port") or {}
    return BackendRef(namespace, str(service["name"]), port.get("number") or str(port.get("name") or ""))


@dataclass(frozen=True)
class Canary:
    backend: BackendRef
    policy: CanaryPolicy
    ingress: str                          # namespace/name of the canary Ingress


@dataclass(frozen=True)
class Route:
    """One path of one rule (or a defaultBackend, with ``path == ""``)."""

    host: str                             # "" (any host), "a.example.com" or "*.example.com"
    path: str
    path_type: str                        # Exact | Prefix | ImplementationSpecific
    backend: BackendRef
    ingress: str                          # namespace/name of the Ingress it comes from
    canary: Canary | None = None
    rewrite_target: str = ""
    use_regex: bool = False
    ssl_redirect: bool = False
    regex: re.Pattern[str] | None = None  # set when its host is in regex mode

    def matches(self, path: str) -> bool:
        if self.regex is not None:
            return self.regex.match(path) is not None
        if not self.path:                 # a defaultBackend
            return True
        if self.path_type == "Exact":
            return path == self.path
        prefix = self.path.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def choose(self, headers: Mapping[str, str], cookies: Mapping[str, str], roll: Roll) -> BackendRef:
        """The backend for this request: the canary's when its policy selects it."""
        if self.canary is not None and self.canary.policy.selects(headers, cookies, roll):
            return self.canary.backend
        return self.backend

    def rewrite(self, path: str) -> str | None:
        """The upstream path under ``rewrite-target``; None when the path is sent unchanged."""
        if not self.rewrite_target or self.rewrite_target == self.path:
            return None
        try:
            found = re.search("(?i)" + pcre_to_python(self.path or "/"), path)
        except re.error:
            return None
        if found is None:
            return None
        groups = found.groups()
        return re.sub(r"\$(\d)", lambda m: _group(groups, int(m.group(1))), self.rewrite_target)

    @property
    def precedence(self) -> tuple[int, int]:
        """Sort key, best first: longer path, then Exact before Prefix."""
        if self.regex is not None:
            return (-len(self.path), 0)
        length = len(self.path) if self.path_type == "Exact" else len(self.path.rstrip("/"))
        return (-length, 0 if self.path_type == "Exact" else 1)


def _group(groups: tuple[str | Any, ...], index: int) -> str:
    if index == 0 or index > len(groups):
        return ""
    return groups[index - 1] or ""


@dataclass
class Server:
    """Everything served for one host pattern."""

    host: str
    routes: list[Route] = field(default_factory=list)
    fallback: Route | None = None

    def match(self, path: str) -> Route | None:
        for route in self.routes:
            if route.matches(path):
                return route
        return self.fallback


@dataclass(frozen=True)
class Conflict:
    """A rule left out because an older Ingress already serves the same host + path."""

    ingress: str
    host: str
    path: str
    winner: str

    def __str__(self) -> str:
        return (f'host "{self.host or "*"}" and path "{self.path}" is already defined in '
                f"ingress {self.winner}")


@dataclass
class RouteTable:
    exact: dict[str, Server] = field(default_factory=dict)
    wildcard: dict[str, Server] = field(default_factory=dict)   # ".example.com" → Server
    catch_all: Server = field(default_factory=lambda: Server(""))
    conflicts: list[Conflict] = field(default_factory=list)

    def server_for(self, host: str) -> Server:
        host = normalize_host(host)
        server = self.exact.get(host)
        if server is not None:
            return server
        dot = host.find(".")
        if dot > 0:
            server = self.wildcard.get(host[dot:])
            if server is not None:
                return server
        return self.catch_all

    def match(self, host: str, path: str) -> Route | None:
        """The route serving ``path`` on ``host`` (a Host header: a port is ignored)."""
        return self.server_for(host).match(path or "/")

    def servers(self) -> list[Server]:
        return [*self.exact.values(), *self.wildcard.values(), self.catch_all]


def normalize_host(host: str) -> str:
    """A Host header's name: lower case, without port or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):                      # [::1]:8080
        return host[:host.find("]") + 1] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def ingress_age(ingress: Obj) -> tuple[str, str, str]:
    meta = ingress.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""),
            str(meta.get("name") or ""))


def ingress_key(ingress: Obj) -> str:
    meta = ingress.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def tls_hosts(ingress: Obj) -> set[str]:
    return {str(h).lower() for tls in (ingress.get("spec") or {}).get("tls") or []
            for h in tls.get("hosts") or []}


@dataclass(frozen=True)
class _Options:
    rewrite_target: str
    use_regex: bool
    ssl_redirect: bool          # for hosts listed in spec.tls
    force_ssl_redirect: bool

    @classmethod
    def of(cls, ingress: Obj) -> "_Options":
        notes = (ingress.get("metadata") or {}).get("annotations") or {}
        return cls(rewrite_target=str(notes.get(REWRITE_TARGET, "")),
                   use_regex=bool(parse_bool(notes.get(USE_REGEX, ""))),
                   ssl_redirect=parse_bool(notes.get(SSL_REDIRECT, "true")) is not False,
                   force_ssl_redirect=bool(parse_bool(notes.get(FORCE_SSL_REDIRECT, ""))))


class _Builder:
    def __init__(self) -> None:
        self.table = RouteTable()

    def server(self, host: str, create: bool) -> tuple[Server | None, bool]:
        if not host:
            return self.table.catch_all, False
        if host.startswith("*."):
            servers, key = self.table.wildcard, host[1:]
        else:
            servers, key = self.table.exact, host
        if key in servers or not create:
            return servers.get(key), False
        servers[key] = Server(host)
        return servers[key], True

    def add_ingress(self, ingress: Obj) -> None:
        key, namespace = ingress_key(ingress), str((ingress.get("metadata") or {}).get("namespace", ""))
        spec = ingress.get("spec") or {}
        options = _Options.of(ingress)
        secure = tls_hosts(ingress)
        default_ref = backend_ref(namespace, spec.get("defaultBackend"))
        default = (Route("", "", "ImplementationSpecific", default_ref, key)
                   if default_ref is not None else None)
        if default is not None and self.table.catch_all.fallback is None:
            self.table.catch_all.fallback = default
        for rule in spec.get("rules") or []:
            host = str(rule.get("host") or "").lower()
            server, created = self.server(host, create=True)
            assert server is not None
            if created and default is not None:
                server.fallback = replace(default, host=host)
            redirect = options.force_ssl_redirect or (options.ssl_redirect and bool(host) and host in secure)
            for entry in (rule.get("http") or {}).get("paths") or []:
                ref = backend_ref(namespace, entry.get("backend"))
                if ref is None:
                    continue
                path, path_type = str(entry.get("path") or "/"), str(entry.get("pathType") or "Prefix")
                winner = next((r.ingress for r in server.routes
                               if r.path == path and r.path_type == path_type), None)
                if winner is not None:
                    if winner != key:
                        self.table.conflicts.append(Conflict(key, host, path, winner))
                    continue
                server.routes.append(Route(host, path, path_type, ref, key,
                                           rewrite_target=options.rewrite_target,
                                           use_regex=options.use_regex, ssl_redirect=redirect))

    def add_canary(self, ingress: Obj, policy: CanaryPolicy) -> None:
        key, namespace = ingress_key(ingress), str((ingress.get("metadata") or {}).get("namespace", ""))
        spec = ingress.get("spec") or {}
        default_ref = backend_ref(namespace, spec.get("defaultBackend"))
        if default_ref is not None:
            canary = Canary(default_ref, policy, key)
            catch_all = self.table.catch_all
            catch_all.routes = [_with_canary(r, canary) for r in catch_all.routes]
            if catch_all.fallback is not None:
                catch_all.fallback = _with_canary(catch_all.fallback, canary)
        for rule in spec.get("rules") or []:
            server, _ = self.server(str(rule.get("host") or "").lower(), create=False)
            if server is None:
                continue                    # a canary of a host nobody serves: ignored
            for entry in (rule.get("http") or {}).get("paths") or []:
                ref = backend_ref(namespace, entry.get("backend"))
                if ref is None:
                    continue
                path, path_type = str(entry.get("path") or "/"), str(entry.get("pathType") or "Prefix")
                canary = Canary(ref, policy, key)
                server.routes = [_with_canary(r, canary) if (r.path, r.path_type) == (path, path_type)
                                 else r for r in server.routes]

    def finish(self) -> RouteTable:
        for server in self.table.servers():
            if any(r.use_regex or (r.rewrite_target and r.rewrite_target != r.path)
                   for r in server.routes):
                server.routes = [compiled for r in server.routes
                                 if (compiled := _compile(r)) is not None]
            server.routes.sort(key=lambda r: r.precedence)
        return self.table


def _with_canary(route: Route, canary: Canary) -> Route:
    """Attach ``canary`` unless the route has one already or would send to itself."""
    if route.canary is not None or route.backend == canary.backend:
        return route
    return replace(route, canary=canary)


def _compile(route: Route) -> Route | None:
    try:
        return replace(route, regex=re.compile("^" + pcre_to_python(route.path), re.IGNORECASE))
    except re.error:
        return None                         # an invalid expression serves nothing


def build_table(ingresses: Iterable[Obj]) -> RouteTable:
    """The route table of the Ingresses this controller serves (see module docstring)."""
    builder = _Builder()
    canaries: list[tuple[Obj, CanaryPolicy]] = []
    for ingress in sorted(ingresses, key=ingress_age):
        policy = CanaryPolicy.from_annotations((ingress.get("metadata") or {}).get("annotations") or {})
        if policy is None:
            builder.add_ingress(ingress)
        else:
            canaries.append((ingress, policy))
    for ingress, policy in canaries:
        builder.add_canary(ingress, policy)
    return builder.finish()
