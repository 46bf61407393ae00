"""Service definitions as an agent registers them: the address tags Consul's agent adds."""

from __future__ import annotations

import pytest

from waypost.agent.definitions import parse_service
from waypost.state.model import AddressPort


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
