"""Consul's intention precedence and matching, as a table: which intention decides a
connection when wildcard and exact ones overlap."""

from __future__ import annotations

import pytest

from waypost.connect.intentions import decide, describe, matching, ordered, parse_name, precedence, problems
from waypost.state.model import Intention


def _ixn(source: str, destination: str, action: str = "allow", **fields: str) -> Intention:
    ixn = Intention(SourceName=source, DestinationName=destination, Action=action, **fields)
    ixn.Precedence = precedence(ixn)
    return ixn


@pytest.mark.parametrize(
    ("source", "destination", "expected"),
    [("web", "db", 9), ("*", "db", 8), ("web", "*", 6), ("*", "*", 5)],
)
def test_precedence_is_consuls(source: str, destination: str, expected: int) -> None:
    assert precedence(_ixn(source, destination)) == expected


# (intentions as "source=>destination:action", the connection, allowed?, the deciding rule or None)
TABLE = [
    (["*=>db:deny", "web=>db:allow"], ("web", "db"), True, "web=>db"),
    (["*=>db:allow", "web=>db:deny"], ("web", "db"), False, "web=>db"),
    (["*=>db:deny", "web=>db:allow"], ("api", "db"), False, "*=>db"),
    (["web=>*:deny", "*=>db:allow"], ("web", "db"), True, "*=>db"),
    (["*=>*:deny", "web=>*:allow"], ("web", "cache"), True, "web=>*"),
    (["*=>*:deny", "web=>*:allow"], ("api", "cache"), False, "*=>*"),
    (["*=>*:allow", "*=>db:deny"], ("web", "db"), False, "*=>db"),
    (["web=>db:deny"], ("api", "db"), True, None),
    ([], ("web", "db"), True, None),
]


@pytest.mark.parametrize(("rules", "connection", "allowed", "decider"), TABLE)
def test_the_most_precise_matching_intention_decides(
    rules: list[str], connection: tuple[str, str], allowed: bool, decider: str | None
) -> None:
    intentions = []
    for rule in rules:
        ends, action = rule.split(":")
        source, destination = ends.split("=>")
        intentions.append(_ixn(source, destination, action))
    decision = decide(intentions, *connection, default_allow=True)
    assert decision.allowed is allowed
    if decider is None:
        assert decision.intention is None
        assert decision.reason == "Default behavior configured by ACLs"
    else:
        assert decision.intention is not None
        assert f"{decision.intention.SourceName}=>{decision.intention.DestinationName}" == decider
        assert decision.reason.startswith("Matched L4 intention: ")


def test_no_match_falls_to_the_default_policy() -> None:
    assert decide([_ixn("web", "db")], "api", "db", default_allow=False).allowed is False


def test_match_lists_in_evaluation_order_with_ties_by_name() -> None:
    found = matching(
        [_ixn("*", "db"), _ixn("b", "db"), _ixn("a", "db"), _ixn("a", "*")], "destination", "default", "db"
    )
    assert [(x.SourceName, x.DestinationName) for x in found] == [
        ("a", "db"),
        ("b", "db"),
        ("*", "db"),
        ("a", "*"),
    ]
    by_source = matching([_ixn("a", "db"), _ixn("*", "x")], "source", "default", "a")
    assert [x.DestinationName for x in by_source] == ["db", "x"]
    assert ordered([]) == []


def test_the_reason_quotes_the_intention_as_consul_prints_it() -> None:
    assert describe(_ixn("web", "db", ID="abc")) == (
        "default/web => default/db (ID: abc, Precedence: 9, Action: ALLOW)"
    )
    assert describe(_ixn("*", "db", "deny")) == "default/* => default/db (Precedence: 8, Action: DENY)"


@pytest.mark.parametrize(
    ("source", "destination", "action", "problem"),
    [
        ("", "db", "allow", "SourceName must be set"),
        ("web", "", "allow", "DestinationName must be set"),
        ("we*", "db", "allow", "SourceName: wildcard character '*' cannot be used with partial values"),
        ("web", "d*", "allow", "DestinationName: wildcard character '*' cannot be used with partial values"),
        ("web", "db", "maybe", "Action must be set to 'allow' or 'deny'"),
    ],
)
def test_invalid_intentions_are_named_in_consuls_words(
    source: str, destination: str, action: str, problem: str
) -> None:
    assert problem in problems(Intention(SourceName=source, DestinationName=destination, Action=action))


def test_names_take_an_optional_namespace() -> None:
    assert parse_name("web") == ("default", "web")
    assert parse_name("default/web") == ("default", "web")
    with pytest.raises(ValueError, match="at most one '/'"):
        parse_name("a/b/c")
