from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waypost.api.filter import FilterError, compile_filter

# Shaped like a /v1/health/service entry flattened with an agent service, as msgspec.to_builtins
# renders the API structs.
DOC: dict[str, Any] = {
    "ID": "web-1",
    "Service": "web",
    "Tags": ["primary", "v1"],
    "Meta": {"env": "prod", "dotted.key": "yes", "with space": "ok", "empty": ""},
    "Port": 8080,
    "Legacy": 15,
    "Offset": -3,
    "Score": 1.5,
    "Ports": [80, 443],
    "EnableTagOverride": False,
    "Address": "",
    "Escaped": "tab\there",
    "Word": "and",
    "Weights": {"Passing": 1, "Warning": 1},
    "TaggedAddresses": None,
    "Node": {"Node": "node-1", "Meta": {"rack": "r1"}},
    "Checks": [
        {"CheckID": "serfHealth", "Status": "passing", "ServiceTags": []},
        {"CheckID": "service:web-1", "Status": "critical", "ServiceTags": ["primary"]},
    ],
    "NoChecks": [],
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # == and != against strings; bare words, double quotes and backticks are the same value
        ("Service == web", True),
        ('Service == "web"', True),
        ("Service == `web`", True),
        ("Service==web", True),
        ("Service != web", False),
        ("Service != db", True),
        ('Address == ""', True),
        # nested selectors, dotted and indexed
        ('Node.Node == "node-1"', True),
        ("Node.Meta.rack == r1", True),
        ('Meta["env"] == prod', True),
        ("Meta[`env`] == prod", True),
        ('Meta[ "with space" ] == ok', True),
        ('Meta["dotted.key"] == yes', True),
        ("Weights.Passing == 1", True),
        # in / not in / contains / not contains on lists, map keys and substrings
        ("primary in Tags", True),
        ('"v2" in Tags', False),
        ("v2 not in Tags", True),
        ("Tags contains v1", True),
        ("Tags not contains v1", False),
        ("env in Meta", True),
        ("Meta contains nope", False),
        ('"ro" in Meta.env', True),
        ("Service contains eb", True),
        ("Service not contains xyz", True),
        ("443 in Ports", True),
        ("8443 in Ports", False),
        # matches / not matches use Go's (RE2) syntax, unanchored
        ('Service matches "^w.b$"', True),
        ("Service matches `e`", True),
        ("ID matches `^web-[[:digit:]]+\\z`", True),
        ("Service matches `(?i)WEB`", True),
        ('Service not matches "^db"', True),
        # is empty / is not empty on strings, lists and maps
        ("Address is empty", True),
        ("Tags is empty", False),
        ("Tags is not empty", True),
        ("Meta.empty is empty", True),
        ("Weights is not empty", True),
        # a null (Go nil map or slice) is empty and contains nothing
        ("TaggedAddresses is empty", True),
        ("lan in TaggedAddresses", False),
        ("lan not in TaggedAddresses", True),
        # missing map keys: nothing equals, contains or matches them, and they are empty
        ("Meta.missing == x", False),
        ("Meta.missing != x", True),
        ("Meta.missing is empty", True),
        ("Meta.missing is not empty", False),
        ("x in Meta.missing", False),
        ("x not in Meta.missing", True),
        ("Meta.missing matches `.*`", False),
        ("Meta.missing not matches `.*`", True),
        # the literal is coerced to the type of the value it meets
        ("Port == 8080", True),
        ('Port == "8080"', True),
        ('Port == "0x1F90"', True),
        ('Port == "8_080"', True),
        ('Legacy == "017"', True),
        ("Offset == -3", True),
        ("Port != 8081", True),
        ("Score == 1.5", True),
        ('Score == "1.50"', True),
        ("EnableTagOverride == false", True),
        ("EnableTagOverride == F", True),
        ("EnableTagOverride == 0", True),
        ('EnableTagOverride != "true"', True),
        # selecting through a list of structs matches when any element does, for every operator
        ("Checks.Status == passing", True),
        ("Checks.Status == warning", False),
        ("Checks.Status != passing", True),
        ("not Checks.Status == critical", False),
        ("primary in Checks.ServiceTags", True),
        ("Checks.ServiceTags is empty", True),
        ("NoChecks.Status is empty", False),
        ("NoChecks.Status != passing", False),
        # string escapes follow Go's strconv.Unquote; backtick strings are raw
        ('Escaped == "tab\\there"', True),
        ("Escaped == `tab\\there`", False),
        ('Service == "w\\x65b"', True),
        ('Service == "\\167eb"', True),
        ('Service == "we\\u0062"', True),
        ('Meta.env == "pr\\U0000006Fd"', True),
        # keywords are only keywords between whitespace
        ("Word == and", True),
        ("Service == web\nand\tPort == 8080", True),
        # boolean logic and precedence: not > and > or
        ("Service == web and Port == 8080", True),
        ("Service == web and Port == 1", False),
        ("Service == db or Port == 8080", True),
        ("Service == db or Port == 1", False),
        ("not Service == db", True),
        ("not not Service == web", True),
        ("Service == web or Service == db and Port == 1", True),
        ("(Service == web or Service == db) and Port == 1", False),
        ("not Service == web or Port == 8080", True),
        ("not (Service == web or Port == 8080)", False),
        ("not Service == db and Port == 1", False),
        ("Service == db and Port == 1 or Tags is not empty", True),
        ("((Service == web))", True),
        ("( Service == web )", True),
    ],
)
def test_matches(expression: str, expected: bool) -> None:
    assert compile_filter(expression).matches(DOC) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "Filter expression is empty"),
        ("   ", "Filter expression is empty"),
        ("(Service == web", 'Syntax error: unexpected end of expression; expected ")"'),
        ("Service == web)", "column 15: unexpected ')'; expected the end of the expression"),
        ("((Service == web)", 'unexpected end of expression; expected ")"'),
        ("Service ~ web", "column 9: unexpected character '~'"),
        ("Service = web", "column 9: unexpected character '='"),
        ("Service === web", "column 11: unexpected character '='"),
        ("Service equals web", "column 9: unexpected 'equals'"),
        ("Service ==", "unexpected end of expression; expected a number, a selector, a string"),
        ("Service == web and", "unexpected end of expression"),
        ("Service", "unexpected end of expression"),
        ("Service is", "unexpected 'is'"),
        ("and Service == web", "column 5: unexpected 'Service'"),
        ("(Service == web)and(Port == 8080)", "column 17: unexpected 'and'"),
        ("Service == web andPort == 8080", "unexpected 'andPort'"),
        ('"web"in Service', "unexpected 'in'"),
        ('web in "Service"', "unexpected '\"Service\"'; expected a selector"),
        ("Port == 08080", "unexpected character '0'"),
        ("Node.Node == node-1", "unexpected '-1'"),
        ("Port == 1.", "unexpected character '1'"),
        ('Service == "web', "column 12: unterminated string literal"),
        ("Service == `web", "column 12: unterminated string literal"),
        ('Meta["env" == x', 'expected "]"'),
        ("Meta[env] == x", "unexpected 'env'; expected a string"),
        ('Service == "a\\q"', "Invalid escape sequence '\\\\q' in string literal at line 1, column 12"),
        ('Service == "a\\"', "Invalid escape sequence '\\\\' in string literal"),
        ('Service == "\\400"', "Invalid escape sequence '\\\\400'"),
        ('Service == "\\ud800"', "Invalid escape sequence '\\\\ud800'"),
        ('Service == "\\U00110000"', "Invalid escape sequence"),
        ('Service == "a\nb"', "Newline in string literal at line 1, column 12"),
        ('Service matches "("', 'Failed to compile regular expression "(": missing ): ('),
        ("Service matches `(a)\\1`", "Failed to compile regular expression"),
        ("Service matches `(?=a)`", "Failed to compile regular expression"),
    ],
)
def test_compile_errors(expression: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(expression)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("Port == abc", 'Failed to coerce value "abc" for selector "Port" to int'),
        ("Port == 8080.0", 'Failed to coerce value "8080.0" for selector "Port" to int'),
        ("EnableTagOverride == yes", 'Failed to coerce value "yes" for selector "EnableTagOverride" to bool'),
        ("Score == high", 'Failed to coerce value "high" for selector "Score" to float'),
        ("abc in Ports", 'Failed to coerce value "abc" for selector "Ports" to int'),
        ("Tags == primary", 'Invalid match operator "==" for selector "Tags"'),
        ("Meta == x", 'Invalid match operator "==" for selector "Meta"'),
        ("Port contains 8", 'Invalid match operator "contains" for selector "Port"'),
        ("8 not in Port", 'Invalid match operator "not in" for selector "Port"'),
        ("Port is   not empty", 'Invalid match operator "is not empty" for selector "Port"'),
        ("Port matches 8", 'Invalid match operator "matches" for selector "Port"'),
        ("Tags matches x", 'Invalid match operator "matches" for selector "Tags"'),
        ("x in Checks", 'Invalid match operator "in" for selector "Checks"'),
        ("Port.Value == 1", 'Selector "Port.Value" is not valid'),
        ("Meta.env.x == 1", 'Selector "Meta.env.x" is not valid'),
    ],
)
def test_evaluation_errors(expression: str, message: str) -> None:
    compiled = compile_filter(expression)
    with pytest.raises(FilterError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        compiled.matches(DOC)


def test_evaluation_short_circuits_like_consul() -> None:
    # bexpr stops at the first deciding operand, so a later type clash goes unnoticed.
    assert compile_filter("Service == web or Port == abc").matches(DOC)
    assert not compile_filter("Service == db and Port == abc").matches(DOC)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("Bogus == 1", 'Selector "Bogus" is not valid'),
        ("Service == web and Nope.x is empty", 'Selector "Nope" is not valid'),
        ('"x" in Unknown', 'Selector "Unknown" is not valid'),
    ],
)
def test_allowed_roots_rejects_unknown_selectors(expression: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        compile_filter(expression, allowed_roots={"Service", "Tags", "Port"})


def test_allowed_roots_ignores_bare_word_values() -> None:
    compiled = compile_filter("Service == passing and primary in Tags", allowed_roots=["Service", "Tags"])
    assert compiled.selectors == (("Service",), ("Tags",))
    assert not compiled.matches(DOC)


def test_selectors_keep_indexed_keys_whole() -> None:
    assert compile_filter('Meta["dotted.key"] == yes').selectors == (("Meta", "dotted.key"),)


@pytest.mark.parametrize(
    "expression",
    ["not " * 5000 + "Port == 1", "Port == 1 and (" * 5000 + "Port == 1" + ")" * 5000],
)
def test_hostile_nesting_is_refused_not_a_crash(expression: str) -> None:
    with pytest.raises(FilterError, match="nested more than 64 levels deep"):
        compile_filter(expression)


def test_reasonable_nesting_is_fine() -> None:
    assert compile_filter("not " * 20 + "Port == 8080").matches(DOC)
    assert compile_filter("Port == 8080 and (" * 20 + "Service == web" + ")" * 20).matches(DOC)


def test_matching_runs_in_linear_time() -> None:
    # Python's re would backtrack exponentially here; RE2, like Go's regexp, does not.
    assert not compile_filter('Service matches "(a+)+$"').matches({"Service": "a" * 100_000 + "b!"})


def test_compiled_filters_are_cached() -> None:
    assert compile_filter("Service == web") is compile_filter("Service == web")
    assert compile_filter("Service == web", allowed_roots=["Service"]) is compile_filter("Service == web")


def test_apply_keeps_order_and_identity() -> None:
    items = [{"Service": "web", "Port": 1}, {"Service": "db", "Port": 2}, {"Service": "web", "Port": 3}]
    kept = compile_filter("Service == web").apply(items)
    assert kept == [items[0], items[2]]
    assert kept[0] is items[0]


def test_apply_map_filters_values() -> None:
    services = {"redis1": {"Meta": {"env": "production"}}, "redis3": {"Meta": {"env": "qa"}}}
    assert compile_filter('Meta.env == "qa"').apply_map(services) == {"redis3": {"Meta": {"env": "qa"}}}


_ATOMS = {
    "Service == web": True,
    "Port == 1": False,
    "primary in Tags": True,
    "Tags is empty": False,
}


@st.composite
def _boolean_expressions(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(sorted(_ATOMS)))
    kind = draw(st.sampled_from(["and", "or", "not", "parens"]))
    left = draw(_boolean_expressions(depth - 1))
    if kind == "not":
        return f"not {left}"
    if kind == "parens":
        return f"({left})"
    return f"{left} {kind} {draw(_boolean_expressions(depth - 1))}"


@given(_boolean_expressions())
def test_boolean_logic_has_pythons_precedence(expression: str) -> None:
    # Python's not/and/or bind exactly as bexpr's do, so replacing each match
    # expression by its truth value gives a Python expression that must agree.
    python = expression
    for atom, value in _ATOMS.items():
        python = python.replace(atom, str(value))
    assert compile_filter(expression).matches(DOC) is eval(python)


_TOKENS = [
    "Service", "Tags", "Meta", ".", "env", "[", "]", '"env"', "`x`", '"\\x"', "(", ")", "==", "!=", "in",
    "not", "contains", "matches", "is", "empty", "and", "or", "-1", "0", "1.5", "Checks", "Status", '"(["',
]  # fmt: skip


@given(st.text(max_size=60) | st.lists(st.sampled_from(_TOKENS), max_size=12).map(" ".join))
def test_garbage_only_ever_raises_filter_error(expression: str) -> None:
    with contextlib.suppress(FilterError):
        compile_filter(expression).matches(DOC)
