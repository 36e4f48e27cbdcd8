"""The agent's nft text: what a pod's chain looks like, what an incremental
transaction touches, and (as root, in a namespace of its own with nothing in it)
that a chain of incremental transactions ends where a fresh full table does."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from skiff.proxy.netpol.compiler import Compiled, compile_policies
from skiff.proxy.netpol.inventory import namespace_labels, pod_info
from skiff.proxy.netpol.policy import parse_policy
from skiff.proxy.netpol.ruleset import Ruleset, build, full_text, transaction
from test_netpol_compile import NODE, namespace, pod, policy
from test_proxy_support import add_namespace, assert_root, delete_namespace, nft_json

Obj = dict[str, Any]
TABLE = "skiff-netpol-t"


def compiled_from(policies: list[Obj], pods: list[Obj], namespaces: Sequence[Obj] = ()) -> Compiled:
    infos = [info for p in pods if (info := pod_info(p))]
    labels = {n["metadata"]["name"]: namespace_labels(n) for n in namespaces}
    return compile_policies([parse_policy(p) for p in policies], infos, labels, NODE)


ALLOW_DB = policy("allow-db", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
    {"from": [{"podSelector": {"matchLabels": {"access": "true"}}}],
     "ports": [{"port": 5432}, {"port": 9000, "endPort": 9100}, {"protocol": "UDP", "port": 53}]}]})


def test_a_pod_chain_reads_like_the_policy() -> None:
    ruleset = build(compiled_from([ALLOW_DB], [pod("a", "10.244.0.2", {"access": "true"}),
                                               pod("b", "10.244.0.3", {"app": "db"})]))
    assert ruleset.ingress == {"10.244.0.3": "ingress-10.244.0.3"} and ruleset.egress == {}
    assert ruleset.chains["ingress-10.244.0.3"] == (
        'ip saddr 10.244.0.3 accept comment "the pod itself"',
        'ip saddr @from-default/allow-db/0 meta l4proto tcp th dport { 5432, 9000-9100 } '
        'accept comment "default/allow-db"',
        'ip saddr @from-default/allow-db/0 meta l4proto udp th dport 53 accept comment "default/allow-db"',
        'counter name ingress-denied reject with icmpx admin-prohibited comment "default/b"')
    assert ruleset.sets["from-default/allow-db/0"].elements == ("10.244.0.2",)


def test_egress_chain_returns_to_let_the_receivers_rules_decide() -> None:
    out = policy("out", {"podSelector": {}, "policyTypes": ["Egress"],
                         "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/24"}}]}]})
    ruleset = build(compiled_from([out], [pod("a", "10.244.0.2")]))
    assert ruleset.chains["egress-10.244.0.2"] == (
        'ip daddr 10.244.0.2 return comment "the pod itself"',
        'ip daddr @to-default/out/0 return comment "default/out"',
        'counter name egress-denied reject with icmpx admin-prohibited comment "default/a"')
    assert ruleset.sets["to-default/out/0"].elements == ("10.244.0.0/24",)
    text = full_text(TABLE, ruleset, "t")
    assert "type filter hook forward priority filter; policy accept;" in text
    assert text.index("ct state established,related accept") < text.index("ip saddr vmap @egress-pods") \
        < text.index("ip daddr vmap @ingress-pods")


def test_transactions_touch_only_what_changed() -> None:
    pods = [pod("a", "10.244.0.2", {"access": "true"}), pod("b", "10.244.0.3", {"app": "db"})]
    before = build(compiled_from([ALLOW_DB], pods))
    assert transaction(TABLE, before, build(compiled_from([ALLOW_DB], pods))) == ""
    # A new peer: the set's elements, nothing else.
    text = transaction(TABLE, before, build(compiled_from(
        [ALLOW_DB], pods + [pod("c", "10.244.0.9", {"access": "true"}, node="node-b")])))
    assert text.splitlines() == [f"add element inet {TABLE} from-default/allow-db/0 {{ 10.244.0.9 }}"]
    # A pod leaving from inside a block changes nothing; a wider block replaces the
    # narrower one and the pod it now covers (deletions first: never an overlap).
    def allow_block(cidr: str) -> Obj:
        return policy("allow-db", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
            {"from": [{"ipBlock": {"cidr": cidr}}, {"podSelector": {"matchLabels": {"access": "true"}}}]}]})

    assert transaction(TABLE, build(compiled_from([allow_block("10.244.0.0/28")], pods)),
                       build(compiled_from([allow_block("10.244.0.0/28")], pods[1:]))) == ""
    more = pods + [pod("x", "10.244.0.20", {"access": "true"})]
    text = transaction(TABLE, build(compiled_from([allow_block("10.244.0.0/28")], more)),
                       build(compiled_from([allow_block("10.244.0.0/24")], more)))
    assert text.splitlines() == [
        f"delete element inet {TABLE} from-default/allow-db/0 {{ 10.244.0.0/28, 10.244.0.20 }}",
        f"add element inet {TABLE} from-default/allow-db/0 {{ 10.244.0.0/24 }}"]
    # A second pod to protect: its chain and its map element.
    text = transaction(TABLE, before, build(compiled_from([ALLOW_DB], pods + [
        pod("b2", "10.244.0.4", {"app": "db"})])))
    lines = text.splitlines()
    assert lines[0] == f"add chain inet {TABLE} ingress-10.244.0.4"
    assert all(line.startswith(f"add rule inet {TABLE} ingress-10.244.0.4 ") for line in lines[1:5])
    assert lines[5:] == [f"add element inet {TABLE} ingress-pods {{ 10.244.0.4 : jump ingress-10.244.0.4 }}"]
    # The policy goes: map element, then the chain, then the set.
    assert transaction(TABLE, before, build(compiled_from([], pods))).splitlines() == [
        f"delete element inet {TABLE} ingress-pods {{ 10.244.0.3 }}",
        f"flush chain inet {TABLE} ingress-10.244.0.3", f"delete chain inet {TABLE} ingress-10.244.0.3",
        f"delete set inet {TABLE} from-default/allow-db/0"]


# -- against the kernel -----------------------------------------------------------------

@pytest.fixture
def netns() -> Iterator[Path]:
    assert_root()
    path = add_namespace()          # loopback only: nothing can leave it
    try:
        yield path
    finally:
        delete_namespace(path)


def random_cluster(rng: random.Random) -> tuple[list[Obj], list[Obj], list[Obj]]:
    labels = [{}, {"app": "db"}, {"app": "web"}, {"access": "true"}, {"app": "web", "access": "true"}]
    pods = [pod(f"p{i}", f"10.244.{rng.choice((0, 0, 1))}.{i + 2}", rng.choice(labels),
                ns=rng.choice(("default", "team-b")),
                node=NODE if rng.random() < 0.7 else "node-b",
                ports=(("http", rng.choice((80, 8080)), "TCP"),))
            for i in range(rng.randint(3, 14))]
    namespaces = [namespace("default"), namespace("team-b", team=rng.choice(("b", "c")))]
    peers = [{"podSelector": {"matchLabels": {"access": "true"}}},
             {"namespaceSelector": {"matchLabels": {"team": "b"}}},
             {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}},
             {"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"10.244.0.{rng.randint(0, 15) * 16}/28"]}}]
    ports = [{"port": 80}, {"port": "http"}, {"protocol": "UDP", "port": 53, "endPort": rng.choice((53, 60))},
             {"protocol": "SCTP"}]
    policies = []
    for i in range(rng.randint(1, 6)):
        rules = [{k: v for k, v in (("from", rng.sample(peers, rng.randint(0, 2))),
                                    ("ports", rng.sample(ports, rng.randint(0, 2)))) if v}
                 for _ in range(rng.randint(0, 3))]
        direction = rng.choice(("ingress", "egress"))
        if direction == "egress":
            rules = [{("to" if k == "from" else k): v for k, v in rule.items()} for rule in rules]
        policies.append(policy(f"pol{i}", {"podSelector": rng.choice(
            ({}, {"matchLabels": {"app": "db"}}, {"matchLabels": {"access": "true"}})),
            direction: rules, "policyTypes": [direction.capitalize()]},
            ns=rng.choice(("default", "team-b"))))
    return policies, pods, namespaces


def listing(netns: Path, table: str) -> dict[str, Any]:
    """The table's objects by kind and name (rules in order, per chain), without
    handles, the table's name and counter values; set elements sorted."""
    found: dict[str, Any] = {}
    for entry in nft_json(netns, "list", "table", "inet", table):
        for kind, body in entry.items():
            if kind in ("metainfo", "table"):
                continue
            body = {k: v for k, v in body.items() if k not in ("handle", "table", "packets", "bytes")}
            if "elem" in body:
                body["elem"] = sorted(body["elem"], key=json.dumps)
            if kind == "rule":
                found.setdefault(f"rules of {body['chain']}", []).append(body)
            else:
                found[f"{kind} {body['name']}"] = body
    return found


def apply(netns: Path, text: str) -> None:
    done = subprocess.run(["nsenter", f"--net={netns}", "nft", "-f", "-"], input=text,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (done.stderr, text)


def test_incremental_transactions_end_where_a_full_table_does(netns: Path) -> None:
    rng = random.Random(20250601)
    applied = Ruleset()
    apply(netns, full_text(TABLE, applied, "t"))
    for _ in range(20):
        wanted = build(compiled_from(*random_cluster(rng)))
        apply(netns, transaction(TABLE, applied, wanted) or "\n")
        applied = wanted
        apply(netns, full_text("skiff-netpol-fresh", wanted, "t"))
        assert listing(netns, TABLE) == listing(netns, "skiff-netpol-fresh")
