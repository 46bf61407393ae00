"""Service definitions as an agent registers them: the address tags Consul's agent adds, and the
Connect blocks (Kind, Proxy, Connect, Locality) decoded and checked as Consul checks them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from waypost.agent.definitions import DefinitionError, parse_service
from waypost.state.model import AddressPort, Locality


@pytest.mark.parametrize(
    ("address", "version"),
    [("10.0.0.1", "ipv4"), ("2001:db8::1", "ipv6"), ("::ffff:10.0.0.1", "ipv4")],
)
def test_an_agent_service_at_an_ip_is_tagged_with_it_for_lan_and_wan(address: str, version: str) -> None:
    svc = parse_service({"Name": "web", "Address": address, "Port": 80}).service
    here = AddressPort(address, 80)
    assert svc.TaggedAddresses == {f"lan_{version}": here, f"wan_{version}": here}


@pytest.mark.parametrize("address", ["", "web.example.com", "fe80::1%eth0"])
def test_an_agent_service_without_an_ip_address_gets_no_tags(address: str) -> None:
    assert parse_service({"Name": "web", "Address": address}).service.TaggedAddresses == {}


def test_tags_the_registration_names_are_kept() -> None:
    body = {"Name": "web", "Address": "10.0.0.1", "TaggedAddresses": {"wan_ipv4": {"Address": "1.2.3.4"}}}
    tagged = parse_service(body).service.TaggedAddresses
    assert tagged == {"lan_ipv4": AddressPort("10.0.0.1", 0), "wan_ipv4": AddressPort("1.2.3.4", 0)}


def test_a_catalog_service_is_stored_as_given() -> None:
    svc = parse_service({"Name": "web", "Address": "10.0.0.1"}, catalog=True).service
    assert svc.TaggedAddresses == {}


def test_connect_blocks_are_kept_in_any_spelling() -> None:
    body = {
        "name": "web-proxy",
        "kind": "connect-proxy",
        "port": 21000,
        "proxy": {
            "destination_service_name": "web",
            "local_service_port": 8080,
            "config": {"protocol": "tcp"},
            "upstreams": [{"destination_name": "db", "local_bind_port": 9191}],
        },
        "locality": {"region": "us-east-1"},
    }
    svc = parse_service(body).service
    assert svc.Proxy is not None
    assert (svc.Proxy.DestinationServiceName, svc.Proxy.LocalServicePort) == ("web", 8080)
    assert svc.Proxy.Config == {"protocol": "tcp"}
    assert [(u.DestinationType, u.DestinationName, u.LocalBindPort) for u in svc.Proxy.Upstreams] == [
        ("service", "db", 9191)
    ]
    assert svc.Locality == Locality(Region="us-east-1")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"Kind": "connect-proxy", "Port": 1}, "Proxy.DestinationServiceName must be non-empty"),
        ({"Kind": "connect-proxy", "Proxy": {"DestinationServiceName": "web"}}, "Port or SocketPath"),
        (
            {"Kind": "connect-proxy", "Port": 1, "Proxy": {"DestinationServiceName": "*"}},
            "must not be a wildcard",
        ),
        (
            {"Kind": "mesh-gateway", "Port": 1, "Proxy": {"DestinationServiceName": "web"}},
            "is invalid for a mesh",
        ),
        ({"Kind": "mesh-gateway"}, "Port must be non-zero for a mesh-gateway"),
        ({"Kind": "spaceship"}, 'Kind: unknown service kind "spaceship"'),
        ({"Proxy": {"Mode": "sideways"}}, "Proxy.Mode: invalid proxy mode: sideways"),
        ({"Connect": {"SidecarService": {"ID": "mine"}}}, "A SidecarService cannot specify an ID"),
        (
            {"Kind": "connect-proxy", "Port": 1, "Proxy": {"DestinationServiceName": "w", "Upstreams": [{}]}},
            "upstream destination name cannot be empty",
        ),
        (
            {
                "Kind": "connect-proxy",
                "Port": 1,
                "Proxy": {
                    "DestinationServiceName": "w",
                    "Upstreams": [{"DestinationName": "a", "LocalBindPort": 1}] * 2,
                },
            },
            'upstreams cannot contain duplicates by local bind address and port or unix path; "127.0.0.1:1"',
        ),
    ],
)
def test_an_invalid_connect_registration_is_refused_in_consuls_words(
    body: dict[str, Any], problem: str
) -> None:
    with pytest.raises(DefinitionError) as exc:
        parse_service({"Name": "x", **body})
    assert str(exc.value).startswith("Validation failed: ")
    assert problem in str(exc.value)


@pytest.mark.parametrize(
    ("proxy", "field"),
    [
        ({"LocalServicePort": "eighty"}, "Proxy: Expected `int`"),
        ({"Upstreams": [{"LocalBindPort": []}]}, "Proxy.Upstreams[0]"),
        ({"Upstreams": {"DestinationName": "db"}}, "Proxy.Upstreams must be a list"),
        ({"Config": "text"}, "Proxy: Expected `object`"),
        ({"Bogus": 1}, 'Proxy: unknown field "Bogus"'),
    ],
)
def test_a_malformed_proxy_block_names_the_field(proxy: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(field)):
        parse_service({"Name": "x", "Proxy": proxy})
