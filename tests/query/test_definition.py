"""Decoding and checking a definition as Consul's parseQuery does."""

from __future__ import annotations

import pytest

from waypost.query.definition import QueryError, acl_prefix, decode_definition, validate


def test_keys_match_case_blind_and_nulls_are_zero_values() -> None:
    query = decode_definition(
        {"name": "q", "service": {"SERVICE": "web", "failover": {"nearestn": 2}, "Tags": None}, "dns": None}
    )
    assert (query.Name, query.Service.Service, query.Service.Failover.NearestN) == ("q", "web", 2)
    assert query.Service.Tags is None
    assert decode_definition({"Near": "_agent", "Service": {"Service": "w"}}).Service.Near == ""
    assert query.DNS.TTL == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Service": {"Service": "w", "OnlyPasing": True}}, 'unknown field "Service.OnlyPasing"'),
        ({"Service": {"Service": "w", "Failover": {"NearestN": "2"}}}, "$.Service.Failover.NearestN"),
        ({"Service": "web"}, "Service must be a JSON object"),
        ([], "body must be a JSON object"),
    ],
)
def test_a_malformed_body_names_the_field(body: object, message: str) -> None:
    with pytest.raises(QueryError, match="Request decode failed") as err:
        decode_definition(body)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Service": {"Service": "w"}}, "Must be bound to a session"),
        ({"Name": "q", "Service": {}}, "Must provide a Service name to query"),
        ({"Name": "q", "Service": {"Service": "w", "Failover": {"NearestN": -1}}}, "Bad NearestN '-1'"),
        ({"Name": "q", "Token": "<hidden>", "Service": {"Service": "w"}}, "redacted token"),
        ({"Name": "q", "Service": {"Service": "w"}, "DNS": {"TTL": "10"}}, "Bad DNS TTL '10'"),
        ({"Name": "q", "Service": {"Service": "w"}, "DNS": {"TTL": "-1s"}}, "must be >=0"),
        (
            {
                "Name": "q",
                "Service": {"Service": "w", "Failover": {"NearestN": 1, "Targets": [{"Datacenter": "d"}]}},
            },
            "Targets cannot be populated with NearestN or Datacenters",
        ),
    ],
)
def test_consuls_checks_refuse_with_consuls_words(body: object, message: str) -> None:
    with pytest.raises(QueryError, match="Invalid prepared query") as err:
        validate(decode_definition(body))
    assert message in str(err.value)


def test_the_acl_prefix_is_the_name_of_a_named_query_or_any_template() -> None:
    assert acl_prefix(decode_definition({"Name": "n", "Service": {"Service": "w"}})) == "n"
    assert acl_prefix(decode_definition({"Template": {"Type": "name_prefix_match"}})) == ""
    assert acl_prefix(decode_definition({"Session": "s", "Service": {"Service": "w"}})) is None
