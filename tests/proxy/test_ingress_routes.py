"""Ingress routing as pure functions: matching, precedence, canaries, classes, endpoints."""

from __future__ import annotations

from typing import Any

from multidict import CIMultiDict

from skiff.proxy.ingress.backends import RoundRobin, host_port, ready_endpoints
from skiff.proxy.ingress.canary import CanaryPolicy
from skiff.proxy.ingress.classes import OurClasses, our_classes, skiff_ingress_class
from skiff.proxy.ingress.routes import BackendRef, RouteTable, build_table, normalize_host

Obj = dict[str, Any]
NOTES = "nginx.ingress.kubernetes.io/"


def path(p: str, service: str, path_type: str = "Prefix", port: int | str = 80) -> Obj:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"path": p, "pathType": path_type, "backend": {"service": {"name": service, "port": ref}}}


def ingress(name: str, *rules: Obj, created: str = "2024-01-01T00:00:00Z", default: str | None = None,
            annotations: dict[str, str] | None = None, tls: list[Obj] | None = None,
            namespace: str = "default") -> Obj:
    spec: Obj = {"rules": list(rules)}
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    if tls:
        spec["tls"] = tls
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "annotations": annotations or {}}, "spec": spec}


def rule(*paths: Obj, host: str | None = None) -> Obj:
    out: Obj = {"http": {"paths": list(paths)}}
    if host is not None:
        out["host"] = host
    return out


def served_by(table: RouteTable, host: str, p: str) -> str | None:
    route = table.match(host, p)
    return route.backend.service if route is not None else None


def never(n: int) -> int:
    raise AssertionError("no roll expected")


def test_prefix_matching_is_element_wise_and_exact_is_exact() -> None:
    table = build_table([ingress("web", rule(path("/foo", "foo"), path("/exact", "exact", "Exact"),
                                             path("/slash/", "slash")))])
    assert served_by(table, "any", "/foo") == "foo"
    assert served_by(table, "any", "/foo/") == "foo"
    assert served_by(table, "any", "/foo/bar") == "foo"
    assert served_by(table, "any", "/foobar") is None
    assert served_by(table, "any", "/exact") == "exact"
    assert served_by(table, "any", "/exact/") is None
    assert served_by(table, "any", "/slash") == "slash"     # a trailing slash in the rule is ignored
    assert served_by(table, "any", "/slash/x") == "slash"
    assert served_by(table, "any", "/") is None


def test_longest_path_wins_and_exact_beats_prefix_at_equal_length() -> None:
    table = build_table([ingress("web", rule(path("/", "root"), path("/aaa", "aaa"),
                                             path("/aaa/bbb", "bbb"), path("/aaa", "aaa-exact", "Exact"),
                                             path("/ccc", "ccc", "ImplementationSpecific")))])
    assert served_by(table, "h", "/aaa/bbb/c") == "bbb"
    assert served_by(table, "h", "/aaa/b") == "aaa"
    assert served_by(table, "h", "/aaa") == "aaa-exact"
    assert served_by(table, "h", "/ccc/d") == "ccc"          # ImplementationSpecific acts as Prefix
    assert served_by(table, "h", "/zzz") == "root"


def test_hosts_exact_then_wildcard_of_one_label_then_hostless_then_default() -> None:
    table = build_table([
        ingress("a", rule(path("/", "exact-host"), host="x.example.com"),
                rule(path("/", "wild"), host="*.example.com"),
                rule(path("/a", "hostless-a"))),
        ingress("b", rule(path("/only", "b-host"), host="b.test"), default="b-default",
                created="2024-01-02T00:00:00Z"),
        ingress("c", rule(path("/z", "c-host"), host="c.test"), default="c-default",
                created="2024-01-03T00:00:00Z"),
    ])
    assert served_by(table, "X.Example.com:8080", "/p") == "exact-host"   # case and port ignored
    assert served_by(table, "y.example.com", "/p") == "wild"
    assert served_by(table, "a.y.example.com", "/a") == "hostless-a"      # one label only
    assert served_by(table, "example.com", "/a") == "hostless-a"
    # The catch-all server's fallback is the oldest defaultBackend; b.test's is b's own.
    assert served_by(table, "nowhere", "/x") == "b-default"
    assert served_by(table, "b.test", "/else") == "b-default"
    assert served_by(table, "c.test", "/else") == "c-default"
    # A host's server does not fall through to hostless rules (as in ingress-nginx).
    assert served_by(table, "b.test", "/a") == "b-default"


def test_no_default_backend_means_no_route_and_oldest_ingress_wins_a_conflict() -> None:
    older = ingress("older", rule(path("/", "old"), host="h.test"), created="2024-01-01T00:00:00Z")
    newer = ingress("newer", rule(path("/", "new"), path("/extra", "extra"), host="h.test"),
                    created="2024-02-01T00:00:00Z")
    table = build_table([newer, older])
    assert served_by(table, "h.test", "/x") == "old"
    assert served_by(table, "h.test", "/extra") == "extra"   # the rest of the newer one still counts
    assert [str(c) for c in table.conflicts] == [
        'host "h.test" and path "/" is already defined in ingress default/older']
    assert build_table([ingress("none", rule(path("/a", "a"), host="h"))]).match("other", "/a") is None


def test_backend_ports_by_number_or_name_and_normalized_hosts() -> None:
    table = build_table([ingress("web", rule(path("/n", "svc"), path("/s", "svc", port="http")))])
    assert table.match("h", "/n").backend == BackendRef("default", "svc", 80)   # type: ignore[union-attr]
    assert table.match("h", "/s").backend == BackendRef("default", "svc", "http")  # type: ignore[union-attr]
    assert normalize_host("[::1]:8443") == "[::1]"
    assert normalize_host("Shop.Example.COM.") == "shop.example.com"


def test_regex_paths_and_rewrite_target() -> None:
    table = build_table([ingress("rw", rule(path("/something(/|$)(.*)", "rw", "ImplementationSpecific"),
                                            path("/plain", "plain"), host="rw.test"),
                                 annotations={NOTES + "rewrite-target": "/$2"})])
    route = table.match("rw.test", "/something/new/page")
    assert route is not None and route.backend.service == "rw"
    assert route.rewrite("/something/new/page") == "/new/page"
    assert route.rewrite("/something") == "/"
    assert served_by(table, "rw.test", "/PLAIN/x") == "plain"  # regex mode: case-insensitive prefix
    simple = build_table([ingress("s", rule(path("/app", "app")), annotations={NOTES + "rewrite-target": "/"})])
    assert simple.match("h", "/app/x").rewrite("/app/x") == "/"  # type: ignore[union-attr]
    untouched = build_table([ingress("u", rule(path("/app", "app")))])
    assert untouched.match("h", "/app/x").rewrite("/app/x") is None  # type: ignore[union-attr]


def test_ssl_redirect_for_tls_hosts_unless_disabled() -> None:
    tls = [{"hosts": ["s.test"], "secretName": "s-tls"}]
    table = build_table([ingress("s", rule(path("/", "s"), host="s.test"), rule(path("/", "p"), host="p.test"),
                                 tls=tls)])
    assert table.match("s.test", "/").ssl_redirect                       # type: ignore[union-attr]
    assert not table.match("p.test", "/").ssl_redirect                   # type: ignore[union-attr]
    off = build_table([ingress("s", rule(path("/", "s"), host="s.test"), tls=tls,
                               annotations={NOTES + "ssl-redirect": "false"})])
    assert not off.match("s.test", "/").ssl_redirect                     # type: ignore[union-attr]
    forced = build_table([ingress("f", rule(path("/", "f")), annotations={NOTES + "force-ssl-redirect": "true"})])
    assert forced.match("h", "/").ssl_redirect                           # type: ignore[union-attr]


# --- canaries -----------------------------------------------------------------------------


def canary(name: str, service: str, host: str | None = "app.test", p: str = "/",
           path_type: str = "Prefix", created: str = "2024-03-01T00:00:00Z", **notes: str) -> Obj:
    annotations = {NOTES + "canary": "true", **{NOTES + k.replace("_", "-"): v for k, v in notes.items()}}
    return ingress(name, rule(path(p, service, path_type), host=host), annotations=annotations, created=created)


def choose(table: RouteTable, headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None,
           roll: Any = never, host: str = "app.test", p: str = "/") -> str:
    route = table.match(host, p)
    assert route is not None
    return route.choose(CIMultiDict(headers or {}), cookies or {}, roll).service


MAIN = ingress("main", rule(path("/", "stable"), host="app.test"))


def test_canary_by_header_always_never_and_value_and_pattern() -> None:
    table = build_table([MAIN, canary("c", "canary", canary_by_header="X-Canary")])
    assert choose(table, {"x-canary": "always"}) == "canary"                 # header names: any case
    assert choose(table, {"X-Canary": "never"}) == "stable"
    assert choose(table, {"X-Canary": "maybe"}, roll=lambda n: n) == "stable"  # falls through to weight 0
    assert choose(table) == "stable"
    valued = build_table([MAIN, canary("c", "canary", canary_by_header="X-Version",
                                       canary_by_header_value="v2")])
    assert choose(valued, {"X-Version": "v2"}) == "canary"
    assert choose(valued, {"X-Version": "always"}) == "stable"              # the value replaces "always"
    patterned = build_table([MAIN, canary("c", "canary", canary_by_header="X-Region",
                                          canary_by_header_pattern="^eu-(west|north)")])
    assert choose(patterned, {"X-Region": "eu-west-1"}) == "canary"
    assert choose(patterned, {"X-Region": "us-east-1"}) == "stable"


def test_canary_by_cookie_then_weight() -> None:
    table = build_table([MAIN, canary("c", "canary", canary_by_cookie="beta", canary_weight="30")])
    assert choose(table, cookies={"beta": "always"}) == "canary"
    assert choose(table, cookies={"beta": "never"}) == "stable"           # never beats the weight
    assert choose(table, roll=lambda n: 30) == "canary"                   # 1..100: <= 30 is the canary
    assert choose(table, roll=lambda n: 31) == "stable"


def test_canary_weight_bounds_and_total() -> None:
    rolls = range(1, 101)
    for weight, expected in (("0", 0), ("100", 100), ("50", 50)):
        table = build_table([MAIN, canary("c", "canary", canary_weight=weight)])
        taken = sum(choose(table, roll=lambda n, r=r: r) == "canary" for r in rolls)
        assert taken == expected, weight
    policy = CanaryPolicy.from_annotations({NOTES + "canary": "true", NOTES + "canary-weight": "1",
                                            NOTES + "canary-weight-total": "1000"})
    assert policy is not None and policy.weight_total == 1000
    seen: list[int] = []
    assert policy.selects(CIMultiDict(), {}, lambda n: seen.append(n) or 1)
    assert seen == [1000]
    assert CanaryPolicy.from_annotations({NOTES + "canary": "false"}) is None


def test_canary_needs_the_same_host_path_and_type_and_the_oldest_canary_applies() -> None:
    table = build_table([MAIN, canary("other-path", "c1", p="/x"),
                         canary("other-type", "c2", path_type="Exact"),
                         canary("other-host", "c3", host="else.test"),
                         canary("first", "c4", canary_weight="100", created="2024-04-01T00:00:00Z"),
                         canary("second", "c5", canary_weight="100", created="2024-05-01T00:00:00Z")])
    route = table.match("app.test", "/")
    assert route is not None and route.canary is not None and route.canary.ingress == "default/first"
    assert choose(table, roll=lambda n: 1) == "c4"
    assert table.match("else.test", "/") is None          # a canary makes no route of its own
    # A canary default backend applies to the catch-all server.
    catch_all = build_table([ingress("main", rule(path("/", "stable")), default="stable-default"),
                             {**ingress("c", annotations={NOTES + "canary": "true",
                                                          NOTES + "canary-weight": "100"}),
                              "spec": {"defaultBackend": {"service": {"name": "canary-default",
                                                                      "port": {"number": 80}}}}}])
    assert choose(catch_all, host="h", p="/", roll=lambda n: 1) == "canary-default"


# --- classes --------------------------------------------------------------------------


def test_which_ingresses_are_ours() -> None:
    ours = our_classes([skiff_ingress_class(),
                        {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}])
    assert ours == OurClasses(frozenset({"skiff"}), True)
    legacy = {"metadata": {"annotations": {"kubernetes.io/ingress.class": "skiff"}}, "spec": {}}
    assert ours.serves({"spec": {"ingressClassName": "skiff"}})
    assert not ours.serves({"spec": {"ingressClassName": "nginx"}})
    assert ours.serves({"spec": {}})                                    # no class: the default's
    assert ours.serves(legacy)
    assert not ours.serves({"metadata": {"annotations": {"kubernetes.io/ingress.class": "nginx"}},
                            "spec": {}})
    not_default = our_classes([{"metadata": {"name": "skiff"}, "spec": {"controller": "skiff.dev/ingress"}}])
    assert not not_default.serves({"spec": {}})
    assert not_default.serves({"spec": {"ingressClassName": "skiff"}})


# --- endpoints ------------------------------------------------------------------------


SERVICE = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                              {"name": "admin", "port": 9000, "targetPort": 9090}]}}


def slice_(*endpoints: tuple[str, bool | None], ports: tuple[tuple[str, int], ...] = (("http", 8080),
                                                                                    ("admin", 9090))) -> Obj:
    return {"addressType": "IPv4", "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
            "endpoints": [{"addresses": [ip], **({"conditions": {"ready": ready}} if ready is not None else {})}
                          for ip, ready in endpoints]}


def test_ready_endpoints_of_a_service_port() -> None:
    slices = [slice_(("10.0.0.2", True), ("10.0.0.1", None), ("10.0.0.3", False)),
              slice_(("10.0.0.4", True))]
    assert ready_endpoints(SERVICE, slices, 80) == [("10.0.0.1", 8080), ("10.0.0.2", 8080), ("10.0.0.4", 8080)]
    assert ready_endpoints(SERVICE, slices, "admin") == [("10.0.0.1", 9090), ("10.0.0.2", 9090),
                                                         ("10.0.0.4", 9090)]
    assert ready_endpoints(SERVICE, slices, 81) == []
    assert ready_endpoints(None, slices, 80) == []
    unnamed = {"spec": {"ports": [{"port": 80}]}}
    assert ready_endpoints(unnamed, [slice_(("10.0.0.9", True), ports=(("", 7000),))], 80) == [("10.0.0.9", 7000)]
    assert ready_endpoints({"spec": {"type": "ExternalName", "ports": [{"port": 80}]}},
                           [slice_(("10.0.0.9", True), ports=(("", 80),))], 80) == []


def test_round_robin_rotates_per_backend() -> None:
    robin, ref, other = RoundRobin(), BackendRef("d", "a", 80), BackendRef("d", "b", 80)
    endpoints = [("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 80)]
    firsts = [robin.order(ref, endpoints)[0][0] for _ in range(4)]
    assert firsts == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1"]
    assert robin.order(other, endpoints)[0][0] == "10.0.0.1"
    assert robin.order(ref, endpoints) == [("10.0.0.2", 80), ("10.0.0.3", 80), ("10.0.0.1", 80)]
    assert robin.order(ref, []) == []
    assert host_port(("fd00::1", 80)) == "[fd00::1]:80" and host_port(("10.0.0.1", 80)) == "10.0.0.1:80"
