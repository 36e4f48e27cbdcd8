"""From kubelet scrapes to usage rates (skiff.metrics.points): what ``kubectl top`` shows."""

from __future__ import annotations

import pytest

from skiff.kubelet.resourcemetrics import ContainerUsage, NodeUsage, render
from skiff.metrics.points import MIN_WINDOW_SECONDS, Point, Scrape, Usage, parse_scrape, pod_usage, rate

T0 = 1_700_000_000.0
STARTED = T0 - 3600.0
MiB = 1024 * 1024

# A kubelet's /metrics/resource body, as a real kubelet (v1.28) writes it: HELP/TYPE
# lines, labels in alphabetical order, float values, millisecond timestamps, the start
# time with a timestamp of its own and series the metrics server does not use.
KUBELET_BODY = """\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-6d4b"} 2.063 1700000000123
container_cpu_usage_seconds_total{container="etcd",namespace="kube-system",pod="etcd-node1"} 151.718924 1700000000456
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-6d4b"} 1.2529664e+07 1700000000123
container_memory_working_set_bytes{container="etcd",namespace="kube-system",pod="etcd-node1"} 4.3184128e+07 1700000000456
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-6d4b"} 1.6999999e+09 1699999900000
container_start_time_seconds{container="etcd",namespace="kube-system",pod="etcd-node1"} 1.69999e+09 1699990000000
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 3542.104 1700000000789
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.073741824e+09 1700000000789
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="kube-system",pod="coredns-6d4b"} 2.1 1700000000123
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="kube-system",pod="coredns-6d4b"} 1.3e+07 1700000000123
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"""


def point(cpu: float, at: float, memory: int = 8 * MiB, started: float = STARTED) -> Point:
    return Point(cpu_seconds=cpu, memory_bytes=memory, timestamp=at, started_at=started)


def scrape(containers: dict[tuple[str, str, str], Point], node: Point | None = None) -> Scrape:
    return Scrape(node=node, containers=containers)


# -- rate ---------------------------------------------------------------------------------


def test_rate_is_cpu_used_over_the_window_with_the_newer_memory() -> None:
    usage = rate(point(12.40, T0, memory=6 * MiB), point(12.65, T0 + 1.0, memory=8 * MiB))
    assert usage == Usage(nanocores=250_000_000, memory_bytes=8 * MiB, timestamp=T0 + 1.0, window=1.0)


def test_rate_over_a_longer_window_is_an_average() -> None:
    usage = rate(point(100.0, T0), point(103.0, T0 + 15.0))
    assert usage is not None
    assert usage.nanocores == 200_000_000          # 3 s of CPU in 15 s: 200m
    assert usage.window == 15.0 and usage.timestamp == T0 + 15.0


def test_rate_of_more_than_one_core() -> None:
    usage = rate(point(0.0, T0), point(7.5, T0 + 2.5))
    assert usage is not None and usage.nanocores == 3_000_000_000


def test_an_idle_container_has_a_zero_rate_not_none() -> None:
    usage = rate(point(5.0, T0), point(5.0, T0 + 10.0))
    assert usage is not None and usage.nanocores == 0


def test_no_rate_without_an_older_point() -> None:
    assert rate(None, point(1.0, T0)) is None


def test_no_rate_when_the_counter_went_backwards() -> None:
    assert rate(point(12.0, T0), point(11.9, T0 + 10.0)) is None


def test_no_rate_across_a_restart_even_when_the_counter_grew() -> None:
    older = point(1.0, T0, started=STARTED)
    newer = point(5.0, T0 + 10.0, started=T0 + 5.0)
    assert rate(older, newer) is None


def test_no_rate_for_samples_closer_than_the_minimum_window() -> None:
    older = point(1.0, T0)
    assert rate(older, point(1.1, T0 + MIN_WINDOW_SECONDS / 2)) is None
    assert rate(older, point(1.1, T0)) is None
    assert rate(older, point(1.1, T0 - 5.0)) is None        # out of order
    at_minimum = rate(older, point(1.1, T0 + MIN_WINDOW_SECONDS))
    assert at_minimum is not None and at_minimum.window == MIN_WINDOW_SECONDS
    assert at_minimum.nanocores == round(0.1 / MIN_WINDOW_SECONDS * 1e9)


def test_node_points_have_no_start_time_and_still_get_a_rate() -> None:
    older = Point(cpu_seconds=1000.0, memory_bytes=MiB, timestamp=T0)
    newer = Point(cpu_seconds=1004.0, memory_bytes=2 * MiB, timestamp=T0 + 2.0)
    assert rate(older, newer) == Usage(2_000_000_000, 2 * MiB, T0 + 2.0, 2.0)


# -- parse_scrape -------------------------------------------------------------------------


def test_a_real_kubelet_body_parses() -> None:
    got = parse_scrape(KUBELET_BODY)
    assert got.node == Point(cpu_seconds=3542.104, memory_bytes=1_073_741_824,
                             timestamp=pytest.approx(1_700_000_000.789, abs=1e-6))
    assert set(got.containers) == {("kube-system", "coredns-6d4b", "coredns"),
                                   ("kube-system", "etcd-node1", "etcd")}
    coredns = got.containers[("kube-system", "coredns-6d4b", "coredns")]
    assert coredns.cpu_seconds == 2.063
    assert coredns.memory_bytes == 12_529_664
    assert coredns.timestamp == pytest.approx(1_700_000_000.123, abs=1e-6)
    assert coredns.started_at == 1.6999999e9
    etcd = got.containers[("kube-system", "etcd-node1", "etcd")]
    assert (etcd.cpu_seconds, etcd.memory_bytes, etcd.started_at) == (151.718924, 43_184_128, 1.69999e9)
    assert etcd.timestamp == pytest.approx(1_700_000_000.456, abs=1e-6)


def test_two_real_kubelet_bodies_make_pod_usage() -> None:
    later = (KUBELET_BODY
             .replace("} 2.063 1700000000123", "} 2.563 1700000002123")
             .replace("} 151.718924 1700000000456", "} 152.718924 1700000002456"))
    usage = pod_usage(parse_scrape(KUBELET_BODY), parse_scrape(later))
    assert set(usage) == {("kube-system", "coredns-6d4b"), ("kube-system", "etcd-node1")}
    coredns = usage[("kube-system", "coredns-6d4b")]["coredns"]
    assert coredns.nanocores == pytest.approx(250_000_000, abs=1000)    # 0.5 s over 2 s
    assert coredns.window == pytest.approx(2.0, abs=1e-6)
    assert usage[("kube-system", "etcd-node1")]["etcd"].nanocores == pytest.approx(500_000_000, abs=1000)


def test_a_scrape_error_body_has_no_node_and_no_containers() -> None:
    body = ("# HELP resource_scrape_error [STABLE] 1 if there was an error\n"
            "# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n")
    assert parse_scrape(body) == Scrape(node=None, containers={})
    assert parse_scrape("") == Scrape(node=None, containers={})


def test_a_container_without_both_cpu_and_memory_is_left_out() -> None:
    body = """\
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="a",namespace="ns",pod="p"} 1.5 1700000000000
container_cpu_usage_seconds_total{container="b",namespace="ns",pod="p"} 2.5 1700000000000
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="a",namespace="ns",pod="p"} 1024 1700000000000
container_memory_working_set_bytes{container="c",namespace="ns",pod="p"} 2048 1700000000000
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 10 1700000000000
"""
    got = parse_scrape(body)
    assert list(got.containers) == [("ns", "p", "a")]
    assert got.containers[("ns", "p", "a")].started_at == 0.0      # no start time series
    assert got.node is None                                        # cpu without memory


def test_render_then_parse_gives_back_the_same_numbers() -> None:
    node = NodeUsage(cpu_seconds=1234.5678, memory_bytes=812_345_678, sampled_at=T0 + 0.4569)
    containers = [
        ContainerUsage("default", "web-1", "app", 2.3141592653, 17_179_869_185, STARTED + 0.25, T0 + 0.1239),
        ContainerUsage("default", "web-1", "sidecar", 0.000125, 4096, STARTED + 7.5, T0 + 0.2),
        ContainerUsage("kube-system", "dns", "coredns", 98765.4321, 12 * MiB, 1_699_000_000.0, T0 + 1.0),
    ]
    got = parse_scrape(render(node, containers).decode())
    assert got.node is not None
    assert got.node.cpu_seconds == node.cpu_seconds
    assert got.node.memory_bytes == node.memory_bytes
    assert got.node.timestamp == pytest.approx(node.sampled_at, abs=1e-3)
    assert set(got.containers) == {(c.namespace, c.pod, c.container) for c in containers}
    for c in containers:
        p = got.containers[(c.namespace, c.pod, c.container)]
        assert p.cpu_seconds == c.cpu_seconds
        assert p.memory_bytes == c.memory_bytes
        assert p.started_at == c.started_at
        assert p.timestamp == pytest.approx(c.sampled_at, abs=1e-3)


def test_render_of_nothing_parses_to_nothing() -> None:
    assert parse_scrape(render(None, []).decode()) == Scrape(node=None, containers={})


# -- pod_usage ----------------------------------------------------------------------------


def test_pod_usage_per_pod_and_container() -> None:
    older = scrape({("ns", "web", "app"): point(10.0, T0), ("ns", "web", "log"): point(1.0, T0),
                    ("ns", "db", "pg"): point(50.0, T0)})
    newer = scrape({("ns", "web", "app"): point(10.5, T0 + 1.0, memory=30 * MiB),
                    ("ns", "web", "log"): point(1.1, T0 + 1.0, memory=2 * MiB),
                    ("ns", "db", "pg"): point(52.0, T0 + 1.0)})
    usage = pod_usage(older, newer)
    assert usage == {
        ("ns", "web"): {"app": Usage(500_000_000, 30 * MiB, T0 + 1.0, 1.0),
                        "log": Usage(100_000_000, 2 * MiB, T0 + 1.0, 1.0)},
        ("ns", "db"): {"pg": Usage(2_000_000_000, 8 * MiB, T0 + 1.0, 1.0)},
    }


def test_the_first_scrape_reports_no_pods() -> None:
    newer = scrape({("ns", "web", "app"): point(10.0, T0)})
    assert pod_usage(None, newer) == {}


def test_a_pod_with_a_new_container_is_not_reported_half_measured() -> None:
    older = scrape({("ns", "web", "app"): point(10.0, T0), ("ns", "db", "pg"): point(1.0, T0)})
    newer = scrape({("ns", "web", "app"): point(11.0, T0 + 2.0),
                    ("ns", "web", "sidecar"): point(0.5, T0 + 2.0),     # not seen before
                    ("ns", "db", "pg"): point(2.0, T0 + 2.0)})
    usage = pod_usage(older, newer)
    assert ("ns", "web") not in usage
    assert usage == {("ns", "db"): {"pg": Usage(500_000_000, 8 * MiB, T0 + 2.0, 2.0)}}


def test_a_pod_with_a_restarted_container_is_not_reported() -> None:
    older = scrape({("ns", "web", "app"): point(10.0, T0), ("ns", "web", "log"): point(1.0, T0)})
    newer = scrape({("ns", "web", "app"): point(0.2, T0 + 5.0, started=T0 + 4.0),   # restarted
                    ("ns", "web", "log"): point(1.5, T0 + 5.0)})
    assert pod_usage(older, newer) == {}


def test_a_restart_is_seen_by_start_time_even_when_the_counter_did_not_go_back() -> None:
    older = scrape({("ns", "web", "app"): point(0.1, T0)})
    newer = scrape({("ns", "web", "app"): point(3.0, T0 + 5.0, started=T0 + 1.0)})
    assert pod_usage(older, newer) == {}


def test_a_pod_whose_counter_went_backwards_is_not_reported() -> None:
    older = scrape({("ns", "web", "app"): point(10.0, T0)})
    newer = scrape({("ns", "web", "app"): point(9.0, T0 + 5.0)})
    assert pod_usage(older, newer) == {}


def test_scrapes_too_close_together_report_no_pods() -> None:
    older = scrape({("ns", "web", "app"): point(10.0, T0)})
    newer = scrape({("ns", "web", "app"): point(10.1, T0 + MIN_WINDOW_SECONDS * 0.9)})
    assert pod_usage(older, newer) == {}


def test_a_container_gone_since_the_older_scrape_does_not_hide_its_pod() -> None:
    older = scrape({("ns", "web", "app"): point(10.0, T0), ("ns", "web", "init"): point(3.0, T0)})
    newer = scrape({("ns", "web", "app"): point(10.4, T0 + 2.0)})
    assert pod_usage(older, newer) == {("ns", "web"): {"app": Usage(200_000_000, 8 * MiB, T0 + 2.0, 2.0)}}


def test_same_pod_name_in_two_namespaces_are_two_pods() -> None:
    older = scrape({("a", "web", "app"): point(1.0, T0), ("b", "web", "app"): point(1.0, T0)})
    newer = scrape({("a", "web", "app"): point(2.0, T0 + 1.0), ("b", "web", "app"): point(1.5, T0 + 1.0)})
    usage = pod_usage(older, newer)
    assert usage[("a", "web")]["app"].nanocores == 1_000_000_000
    assert usage[("b", "web")]["app"].nanocores == 500_000_000
