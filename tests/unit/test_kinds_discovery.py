"""discovery.k8s.io/v1 EndpointSlice: port defaults, validation, table cells."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.discovery import ENDPOINTSLICES

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def slice_(addresses: list[list[str]], ports: list[dict[str, Any]], address_type: str = "IPv4") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": address_type,
            "metadata": {"name": "web-x7f2k", "namespace": "default", "creationTimestamp": "2024-01-01T00:55:00Z"},
            "endpoints": [{"addresses": a} for a in addresses], "ports": ports}


def test_port_defaults_and_valid_slice() -> None:
    obj = slice_([["10.42.0.5"]], [{"port": 8080}])
    ENDPOINTSLICES.default(obj)
    assert obj["ports"] == [{"port": 8080, "name": "", "protocol": "TCP"}]
    assert ENDPOINTSLICES.validate(obj, None) == []


@pytest.mark.parametrize("addresses, address_type, expected", [
    ([[]], "IPv4", ["endpoints[0].addresses: Required value: must contain at least 1 address"]),
    ([["fd00::1"]], "IPv4", ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address']),
    ([["web"]], "FQDN", ['endpoints[0].addresses[0]: Invalid value: "web": '
                         "should be a domain with at least two segments separated by dots"]),
    ([["10.0.0.1"]], "IP", ['addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"']),
])
def test_validation(addresses: list[list[str]], address_type: str, expected: list[str]) -> None:
    obj = slice_(addresses, [], address_type)
    assert messages(ENDPOINTSLICES.validate(obj, None)) == expected


def test_address_type_is_immutable() -> None:
    old = slice_([["10.0.0.1"]], [])
    new = copy.deepcopy(old)
    new["addressType"] = "IPv6"
    new["endpoints"] = [{"addresses": ["fd00::1"]}]
    assert messages(ENDPOINTSLICES.validate(new, old)) == ['addressType: Invalid value: "IPv6": field is immutable']


def test_row() -> None:
    obj = slice_([["10.42.0.5", "10.42.0.6"], ["10.42.0.7", "10.42.0.8"]],
                 [{"port": 8080}, {"name": "metrics"}, {}, {"port": 9090}])
    assert [c.name for c in ENDPOINTSLICES.columns] == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert ENDPOINTSLICES.row(obj, NOW) == ["web-x7f2k", "IPv4", "8080,metrics,* + 1 more...",
                                           "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more...", "5m"]
    assert ENDPOINTSLICES.row(slice_([], []), NOW)[2:4] == ["<unset>", "<unset>"]
