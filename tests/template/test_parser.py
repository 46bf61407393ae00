"""Parse errors carry Go's message and the template's name and line."""

from __future__ import annotations

import pytest

from waypost.template.builtins import BUILTINS
from waypost.template.errors import TemplateError
from waypost.template.evaluate import Template
from waypost.template.lexer import Kind, lex
from waypost.template.parser import go_unquote, parse


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x\n{{ if }}", "template: f.ctmpl:2: missing value for if"),
        ("{{ foo }}", 'template: f.ctmpl:1: function "foo" not defined'),
        ("a\nb\n{{ range .L }}", "template: f.ctmpl:3: unexpected EOF"),
        ("{{ end }}", "template: f.ctmpl:1: unexpected {{end}}"),
        ("{{ $u }}", 'template: f.ctmpl:1: undefined variable "$u"'),
        ("{{ .A", "template: f.ctmpl:1: unclosed action"),
        ('{{ "abc }}', "template: f.ctmpl:1: unterminated quoted string"),
        ("{{ break }}", "template: f.ctmpl:1: {{break}} outside {{range}}"),
        ("{{ 1 | 2 }}", "template: f.ctmpl:1: non executable command in pipeline stage 2"),
        ("{{ (1 }}", "template: f.ctmpl:1: unclosed left paren"),
        ("{{ if 1 }}{{ else }}{{ else }}{{ end }}", "template: f.ctmpl:1: expected end; found {{else}}"),
        ("{{ /* x */ }}", 'template: f.ctmpl:1: unexpected "/" in command'),
        ("{{ 3x }}", 'template: f.ctmpl:1: bad number syntax: "3x"'),
        ("{{ else }}", "template: f.ctmpl:1: unexpected {{else}}"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        parse("f.ctmpl", text, BUILTINS)
    assert str(err.value).startswith(message)
    assert err.value.name == "f.ctmpl"


def test_trim_markers_need_a_space() -> None:
    kinds = [(i.kind, i.val) for i in lex("a {{-3}} b")]
    assert (Kind.NUMBER, "-3") in kinds
    assert (Kind.TEXT, "a ") in kinds


def test_define_and_block_make_named_trees() -> None:
    trees = parse("f", '{{ define "a" }}A{{ end }}{{ block "b" . }}B{{ end }}x', BUILTINS)
    assert set(trees) == {"f", "a", "b"}


def test_go_unquote() -> None:
    assert go_unquote(r'"a\tb\x41\u00e9\101"') == "a\tbAéA"
    assert go_unquote("`a\\n`") == "a\\n"
    assert go_unquote("'x'") == "x"
    with pytest.raises(ValueError, match="invalid syntax"):
        go_unquote(r'"\q"')


@pytest.mark.parametrize(
    "text", ["{{" + "(" * 5000 + "1" + ")" * 5000 + "}}", "{{ if 1 }}" * 3000 + "{{ end }}" * 3000]
)
def test_deep_nesting_is_an_error_not_a_crash(text: str) -> None:
    with pytest.raises(TemplateError, match="nested too deeply"):
        parse("f", text, BUILTINS)


def test_custom_delimiters() -> None:
    tmpl = Template("t", "{{ literal }} [[- .A -]] [[/* c */]]x", delims=("[[", "]]"))
    assert tmpl.execute({"A": 1}) == "{{ literal }}1x"
