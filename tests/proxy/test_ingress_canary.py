"""Canary Ingresses through the running controller: by header, by cookie, by weight."""

from __future__ import annotations

import contextlib
from collections import Counter

import aiohttp

from apiserver_support import ApiServer
from skiff.proxy.ingress import IngressController
from skiff.proxy.ingress.controller import INGRESSES
from test_ingress_support import (Backend, create_ingress, expose, http_path, ingress, running_controller,
                                  served_by, wait_for)

NOTES = "nginx.ingress.kubernetes.io/"


async def set_weight(api: ApiServer, controller: IngressController, weight: int) -> None:
    await api.client.patch(INGRESSES, "app-canary", {"metadata": {"annotations": {
        NOTES + "canary-weight": str(weight)}}}, namespace="default")

    def applied() -> bool:
        route = controller.table.match("app.test", "/")
        return route is not None and route.canary is not None and route.canary.policy.weight == weight
    await wait_for(controller, applied)


async def tally(session: aiohttp.ClientSession, controller: IngressController, count: int,
                **kwargs: object) -> Counter[str]:
    return Counter([await served_by(session, controller, "/", host="app.test", **kwargs)
                    for _ in range(count)])


async def test_canary_by_header_cookie_and_weight(api: ApiServer) -> None:
    async with contextlib.AsyncExitStack() as stack:
        stable = await stack.enter_async_context(Backend("stable"))
        canary = await stack.enter_async_context(Backend("canary"))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await expose(api.client, "app-v1", stable)
        await expose(api.client, "app-v2", canary)
        controller = await stack.enter_async_context(running_controller(api.client))
        await create_ingress(api.client, controller, ingress("app", [
            {"host": "app.test", "http": {"paths": [http_path("/", "app-v1")]}}]))
        await create_ingress(api.client, controller, ingress("app-canary", [
            {"host": "app.test", "http": {"paths": [http_path("/", "app-v2")]}}],
            annotations={NOTES + "canary": "true", NOTES + "canary-by-header": "X-Canary",
                         NOTES + "canary-by-cookie": "beta", NOTES + "canary-weight": "0"}))

        assert await tally(session, controller, 20) == {"stable": 20}
        assert await tally(session, controller, 5, headers={"X-Canary": "always"}) == {"canary": 5}
        assert await tally(session, controller, 5, cookies={"beta": "always"}) == {"canary": 5}
        assert await tally(session, controller, 5, headers={"X-Canary": "never"},
                           cookies={"beta": "always"}) == {"stable": 5}        # the header decides first

        await set_weight(api, controller, 100)                                 # blue/green: all to v2
        assert await tally(session, controller, 20) == {"canary": 20}
        assert await tally(session, controller, 5, cookies={"beta": "never"}) == {"stable": 5}

        await set_weight(api, controller, 50)
        # 200 fair coin flips: the canary's count is 100 ± 7 (one standard deviation); these
        # bounds are more than 5 of them away, so a correct proxy fails this once in millions.
        split = await tally(session, controller, 200)
        assert set(split) == {"stable", "canary"} and 60 <= split["canary"] <= 140, split

        # Without its main Ingress a canary serves nothing: the host is unknown again.
        await api.client.delete(INGRESSES, "app", namespace="default")
        await wait_for(controller, lambda: controller.table.match("app.test", "/") is None)
