"""The rules language: HCL and JSON read to the same rules; bad rules name their line."""

from __future__ import annotations

import pytest

from waypost.acl.rules import Rule, RulesError, parse_rules

HCL = """
# comment
key_prefix "app/" {
  policy = "write"
}
service "web" { policy = "read", intentions = "read" }
node_prefix { "" { policy = "read" } }
/* block
   comment */
operator = "read"
"""

JSON = """{
  "key_prefix": {"app/": {"policy": "write"}},
  "service": [{"web": {"policy": "read", "intentions": "read"}}],
  "node_prefix": {"": {"policy": "read"}},
  "operator": "read"
}"""


def _shape(text: str) -> tuple[set[tuple[str, str, bool, str]], dict[str, str]]:
    rules = parse_rules(text)
    return {(r.kind, r.name, r.prefix, r.policy) for r in rules.rules}, rules.scalars


def test_hcl_and_json_agree() -> None:
    expected = (
        {
            ("key", "app/", True, "write"),
            ("service", "web", False, "read"),
            ("intention", "web", False, "read"),
            ("node", "", True, "read"),
        },
        {"operator": "read"},
    )
    assert _shape(HCL) == expected
    assert _shape(JSON) == expected


def test_lines_are_kept() -> None:
    rules = parse_rules(HCL)
    assert Rule("key", "app/", True, "write", 3) in rules.rules
    assert Rule("service", "web", False, "read", 6) in rules.rules


@pytest.mark.parametrize(
    ("body", "level"),
    [('policy = "write"', "read"), ('policy = "read"', "read"), ('policy = "deny"', "deny"),
     ('policy = "read"\n  intentions = "write"', "write")],
)  # fmt: skip
def test_a_service_rule_carries_its_intentions_level(body: str, level: str) -> None:
    """Consul: ``intentions`` when given, else read for the service's readers and writers."""
    rules = parse_rules(f'service_prefix "api" {{\n  {body}\n}}').rules
    assert Rule("intention", "api", True, level, 1) in rules


def test_empty_rules() -> None:
    assert parse_rules("  \n").rules == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'key "a" { policy = "read" }\nkey "b" { policy = "bogus" }',
            "Invalid key policy: 'b' has policy 'bogus' (line 2)",
        ),
        ('\n\nservice "a" { policy = "list" }', "Invalid service policy: 'a' has policy 'list' (line 3)"),
        ('key "a" {\n  policy = "read"\n', "At 3:1: expected a rule name, got end of input"),
        ('key "a" { policy "read" }', "At 1:25: expected '=' or '{', got '}'"),
        ('\noperator = "sudo"', "Invalid operator policy: 'sudo' (line 2)"),
        ('\n\n\nbogus "x" { policy = "read" }', "line 4: unknown rule 'bogus'"),
        ('key "a" {\n policy = "read"\n colour = "red" }', "unknown field 'colour'"),
        ('key "a" { policy = "read" } @', "At 1:29: illegal char '@'"),
        ('{\n "key": {"a": {"policy": "read"}},\n}', "At 3:1"),
        ('{"key": "a"}', "expected a block"),
    ],
)
def test_bad_rules_name_the_line(text: str, message: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(text)
    assert message in str(err.value)


def test_deep_nesting_is_refused_not_recursed() -> None:
    with pytest.raises(RulesError, match="nested blocks"):
        parse_rules("key " + "{ a " * 5000 + "}" * 5000)
    with pytest.raises(RulesError, match="nested blocks"):
        parse_rules('{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(RulesError, match="nested blocks"):
        parse_rules('{"a": ' * 20 + "1" + "}" * 20)
