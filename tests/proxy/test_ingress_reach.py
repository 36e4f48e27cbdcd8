"""The ingress proxy dials only endpoint addresses this host routes itself."""

from __future__ import annotations

from typing import Any

from skiff.proxy.ingress.reach import LocalRoutes, local_networks, read_main_routes

ROUTES = [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
          {"dst": "10.244.0.0/16", "dev": "skiff0"},
          {"dst": "192.0.2.0/24", "dev": "eth0"},
          {"dst": "10.96.0.0/12", "type": "unreachable"},
          {"dst": "fd00::/64", "dev": "eth0"},
          {"dst": "198.51.100.7", "dev": "eth0"}]


class Reader:
    def __init__(self, *tables: list[dict[str, Any]]) -> None:
        self.tables = list(tables)
        self.calls = 0

    async def __call__(self) -> list[dict[str, Any]]:
        table = self.tables[min(self.calls, len(self.tables) - 1)]
        self.calls += 1
        return table


def test_local_networks_leave_out_default_and_non_forwarding_routes() -> None:
    assert [str(n) for n in local_networks(ROUTES)] == ["10.244.0.0/16", "192.0.2.0/24", "fd00::/64",
                                                       "198.51.100.7/32"]


async def test_only_loopback_and_locally_routed_addresses_are_allowed() -> None:
    reader = Reader(ROUTES)
    routes = LocalRoutes(reader, clock=lambda: 0.0)
    assert await routes.allows("127.0.0.2") and await routes.allows("::1")
    assert reader.calls == 0                                  # loopback needs no routes
    assert await routes.allows("10.244.3.4")
    assert await routes.allows("fd00::5") and await routes.allows("198.51.100.7")
    assert not await routes.allows("10.96.0.10")              # unreachable route: not ours to dial
    assert not await routes.allows("203.0.113.9")             # only the default route: never
    assert not await routes.allows("fd01::1") and not await routes.allows("not-an-ip")
    assert reader.calls == 1                                  # read once, refusals within max_age


async def test_routes_are_read_again_after_max_age_when_an_address_is_refused() -> None:
    now = [0.0]
    reader = Reader([{"dst": "default"}], [{"dst": "default"}, {"dst": "10.244.0.0/16"}])
    routes = LocalRoutes(reader, max_age=5.0, clock=lambda: now[0])
    assert not await routes.allows("10.244.0.2")
    now[0] = 4.9
    assert not await routes.allows("10.244.0.2") and reader.calls == 1
    now[0] = 5.0                                              # the node's bridge has come up meanwhile
    assert await routes.allows("10.244.0.2") and reader.calls == 2
    now[0] = 100.0
    assert await routes.allows("10.244.0.3") and reader.calls == 2   # allowed answers need no re-read


async def test_this_hosts_routes_can_be_read() -> None:
    routes = await read_main_routes()
    assert routes and all("dst" in route for route in routes)
    assert "default" not in [str(n) for n in local_networks(routes)]
