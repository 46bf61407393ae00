"""Templates: HIL interpolation of every Service string, RE2 regexps, Consul's messages."""

from __future__ import annotations

import msgspec
import pytest

from waypost.query.definition import QueryError, decode_definition
from waypost.query.template import compile_template
from waypost.state.model import PreparedQuery

GEO = {
    "Name": "geo-db",
    "Template": {"Type": "name_prefix_match", "Regexp": "^geo-db-(.*?)-([^\\-]+?)$"},
    "Service": {
        "Service": "mysql-${match(1)}",
        "Tags": ["${match(2)}", "${match(9)}", "${name.suffix}"],
        "NodeMeta": {"full": "${name.full}"},
        "Failover": {"Datacenters": ["${name.prefix}-dc"]},
    },
}


def _template(**changes: object) -> PreparedQuery:
    body = {**GEO, **changes}
    return decode_definition(body)


def test_the_consul_docs_example_renders() -> None:
    rendered = compile_template(_template()).render("geo-db-customer-primary")
    svc = rendered.Service
    assert svc.Service == "mysql-customer"
    assert svc.Tags == ["primary", "", "-customer-primary"]
    assert svc.NodeMeta == {"full": "geo-db-customer-primary"}
    assert svc.Failover.Datacenters == ["geo-db-dc"]


def test_remove_empty_tags_drops_the_empty_interpolations() -> None:
    query = _template(Template={**GEO["Template"], "RemoveEmptyTags": True})  # type: ignore[dict-item]
    assert compile_template(query).render("geo-db-customer-primary").Service.Tags == [
        "primary",
        "-customer-primary",
    ]


def test_a_name_the_regexp_does_not_match_renders_empty_groups() -> None:
    assert compile_template(_template()).render("geo-dbx").Service.Service == "mysql-"


def test_escapes_literals_and_text_around_interpolations() -> None:
    query = _template(Service={"Service": 'a$${x}-${"lit"}-${match(0)}'})
    assert compile_template(query).render("geo-db-a-b").Service.Service == "a${x}-lit-geo-db-a-b"


@pytest.mark.parametrize(
    ("regexp", "reason"),
    [
        ("(", "missing ): ("),
        ("(?=x)y", "invalid perl operator: (?="),
        ("(a)\\1", "invalid escape sequence: \\1"),
        ("a++", "bad repetition operator: ++"),
    ],
)
def test_a_regexp_go_would_refuse_is_refused_naming_it(regexp: str, reason: str) -> None:
    with pytest.raises(QueryError) as err:
        compile_template(_template(Template={"Type": "name_prefix_match", "Regexp": regexp}))
    assert str(err.value) == (
        f"failed compiling template: Bad Regexp: error parsing regexp: {reason}: `{regexp}`"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${", "Bad format '${' in Service.Service"),
        ("${match(1}", "Bad format '${match(1}' in Service.Service"),
        ("${nope}", "Bad evaluation for '${nope}' in Service.Service: unknown variable accessed: nope"),
        ("${f(1)}", "unknown function called: f"),
        ('${match("1")}', "match: argument 1 should be type int"),
        ("${1}", "Expected Service.Service field to be a string, got TypeInt"),
    ],
)
def test_bad_interpolations_are_refused_at_compile_time(text: str, message: str) -> None:
    with pytest.raises(QueryError, match="failed compiling template") as err:
        compile_template(_template(Service={"Service": text}))
    assert message in str(err.value)


def test_only_name_prefix_match_templates_exist() -> None:
    query = msgspec.structs.replace(
        _template(), Template=msgspec.structs.replace(_template().Template, Type="x")
    )
    with pytest.raises(QueryError, match=r"Bad Template\.Type 'x'"):
        compile_template(query)
