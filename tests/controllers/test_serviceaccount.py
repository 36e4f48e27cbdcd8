"""The ``default`` ServiceAccount and ``kube-root-ca.crt`` in every namespace."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import AsyncIterator

import pytest

from housekeeping_support import ApiServer, meta, running_controllers, watch_until
from skiff.client.resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS
from skiff.controllers.serviceaccount import RootCACertPublisher, ServiceAccountsController

CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        async with running_controllers(server.client, [
                ("serviceaccount", ServiceAccountsController),
                ("root-ca-cert-publisher", functools.partial(RootCACertPublisher, ca_pem=CA))]):
            yield server


def named(name: str):  # type: ignore[no-untyped-def]
    return lambda type_, obj: type_ != "DELETED" and meta(obj)["name"] == name


async def test_every_existing_namespace_gets_a_default_service_account(api: ApiServer) -> None:
    namespaces = [meta(n)["name"] for n in (await api.client.list(NAMESPACES)).items]
    assert {"default", "kube-system"} <= set(namespaces)
    for ns in namespaces:
        sa = await watch_until(api.client, SERVICEACCOUNTS, named("default"), namespace=ns)
        assert meta(sa)["namespace"] == ns


async def test_a_new_namespace_gets_one_and_kubectl_sees_it(api: ApiServer) -> None:
    code, _, err = await api.kubectl("create", "namespace", "team-a")
    assert code == 0, err
    await watch_until(api.client, SERVICEACCOUNTS, named("default"), namespace="team-a")
    code, out, err = await api.kubectl("get", "serviceaccount", "default", "-n", "team-a",
                                       "-o", "jsonpath={.metadata.name}")
    assert (code, out) == (0, "default"), err


async def test_a_deleted_default_service_account_comes_back(api: ApiServer) -> None:
    first = await watch_until(api.client, SERVICEACCOUNTS, named("default"), namespace="default")
    since = (await api.client.list(SERVICEACCOUNTS, namespace="default")).resource_version
    await api.client.delete(SERVICEACCOUNTS, "default", namespace="default")
    again = await watch_until(api.client, SERVICEACCOUNTS,
                              lambda t, o: t == "ADDED" and meta(o)["name"] == "default",
                              namespace="default", since=since)
    assert meta(again)["uid"] != meta(first)["uid"]


async def test_root_ca_configmap_is_published_and_kept(api: ApiServer) -> None:
    await api.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "team-b"}})
    cm = await watch_until(api.client, CONFIGMAPS, named("kube-root-ca.crt"), namespace="team-b")
    assert cm["data"] == {"ca.crt": CA}
    since = meta(cm)["resourceVersion"]
    await api.client.patch(CONFIGMAPS, "kube-root-ca.crt", {"data": {"ca.crt": "tampered"}},
                           namespace="team-b")
    fixed = await watch_until(api.client, CONFIGMAPS,
                              lambda _t, o: (o.get("data") or {}).get("ca.crt") == CA
                              and meta(o)["resourceVersion"] != since,
                              namespace="team-b", since=since)
    assert fixed["data"] == {"ca.crt": CA}
