"""Go's text/template semantics, checked against outputs and messages Go itself gives."""

from __future__ import annotations

from typing import Any

import pytest

from waypost.template.errors import TemplateError
from waypost.template.evaluate import Template
from waypost.template.gofmt import StringMap


def render(text: str, data: Any = None, *, missing_key_error: bool = False) -> str:
    tmpl = Template("t", text)
    tmpl.missing_key_error = missing_key_error
    return tmpl.execute(data)


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("{{ range $i, $e := .L }}{{ $i }}={{ $e }},{{ else }}none{{ end }}", {"L": ["a", "b"]}, "0=a,1=b,"),
        ("{{ range .L }}x{{ else }}none{{ end }}", {"L": []}, "none"),
        ("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}", {"M": {"b": 2, "a": 1}}, "a1b2"),
        ("{{ range 3 }}{{ . }}{{ end }}", None, "012"),
        (
            "{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}"
            "{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}",
            {"L": [1, 2, 3, 4, 5]},
            "13",
        ),
        ("{{ if eq .A 1 }}one{{ else if eq .A 2 }}two{{ else }}other{{ end }}", {"A": 2}, "two"),
        ("{{ with .M.x }}[{{ . }}]{{ else }}empty{{ end }}", {"M": {"x": ""}}, "empty"),
        ("{{ with $v := .A }}{{ $v }}{{ end }}", {"A": "z"}, "z"),
        ('{{ define "t1" }}[{{ . }}]{{ end }}{{ template "t1" .A }}', {"A": 5}, "[5]"),
        ('{{ block "b" 3 }}<{{ . }}>{{ end }}', None, "<3>"),
        ("a  {{- 1 -}}  b", None, "a1b"),
        ("a \n {{- /* a comment */ -}} \n b", None, "ab"),
        ("{{/* x */}}y", None, "y"),
        ("{{ $x := 1 }}{{ range .L }}{{ $x = . }}{{ end }}{{ $x }}", {"L": [7, 8]}, "8"),
        (
            '{{ and 1 0 }} {{ or 0 "" "z" }} {{ not .A }} {{ len .L }} {{ index .L 1 }}',
            {"A": 0, "L": [1, 2]},
            "0 z true 2 2",
        ),
        ("{{ .Missing }}", {}, "<no value>"),
        ("{{ .Missing }}", StringMap(), ""),
        ('{{ index .M "nope" }}', {"M": {}}, "<no value>"),
        ("{{ 1.5 }} {{ 1e6 }} {{ 'a' }} {{ 0x10 }} {{ -3 }}", None, "1.5 1e+06 97 16 -3"),
        (
            '{{ printf "%05.1f|%v|%q|%x|%5s|%-3d|" 3.14159 .L "q" 255 "ab" 7 }}',
            {"L": [1, "x"]},
            '003.1|[1 x]|"q"|ff|   ab|7  |',
        ),
        (
            '{{ printf "%d" }} {{ printf "%d" "s" }} {{ printf "%s" 1 2 }}',
            None,
            "%!d(MISSING) %!d(string=s) %!s(int=1)%!(EXTRA int=2)",
        ),
        ('{{ print 1 2 "a" 3 }} {{ println 1 "a" }}', None, "1 2a3 1 a\n"),
        (
            "{{ .M }} {{ .L }} {{ print nil }}",
            {"M": {"b": [1], "a": True}, "L": []},
            "map[a:true b:[1]] [] <nil>",
        ),
        ('{{ "a" | printf "%s-%s" "b" }}', None, "b-a"),
        ("{{ (index .L 0).K }}", {"L": [{"K": "v"}]}, "v"),
        (
            '{{ html "<a href=\'x\'>" }} {{ urlquery "a b&c" }} {{ js "it\'s" }}',
            None,
            "&lt;a href=&#39;x&#39;&gt; a+b%26c it\\'s",
        ),
        ("{{ slice .S 1 3 }} {{ slice .L 1 }}", {"S": "abcd", "L": [1, 2, 3]}, "bc [2 3]"),
        (
            '{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 2.5 }} {{ ge "b" "a" }} {{ ne 1 2 }} {{ eq 1 3 2 1 }}',
            None,
            "true true false true true true",
        ),
        ("{{ `raw\\n` }}", None, "raw\\n"),
        ('{{ "tab\\there" }}', None, "tab\there"),
    ],
)
def test_go_semantics(text: str, data: Any, expected: str) -> None:
    assert render(text, data) == expected


def test_truthiness_follows_go() -> None:
    data = {"zero": 0, "empty": "", "none": None, "list": [], "map": {}, "f": 0.0, "s": "x", "n": 3, "l": [0]}
    text = "".join(f"{{{{ if .{k} }}}}{k} {{{{ end }}}}" for k in data)
    assert render(text, data) == "s n l "


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        (
            "x\n  {{ .A.B }}",
            {"A": 3},
            'template: t:2:7: executing "t" at <.A.B>: can\'t evaluate field B in type interface {}',
        ),
        (
            '{{ eq 1 "a" }}',
            None,
            'template: t:1:3: executing "t" at <eq 1 "a">: '
            "error calling eq: incompatible types for comparison: int and string",
        ),
        (
            "{{ len 3 }}",
            None,
            'template: t:1:3: executing "t" at <len 3>: error calling len: len of type int',
        ),
        (
            "{{ index .L 5 }}",
            {"L": []},
            'template: t:1:3: executing "t" at <index .L 5>: error calling index: index out of range: 5',
        ),
        (
            "{{ .A.B }}",
            {"A": None},
            'template: t:1:5: executing "t" at <.A.B>: nil pointer evaluating interface {}.B',
        ),
        (
            "{{ range .S }}{{ end }}",
            {"S": "abc"},
            'template: t:1:9: executing "t" at <.S>: range can\'t iterate over abc',
        ),
        (
            "{{ printf 1 }}",
            None,
            'template: t:1:10: executing "t" at <1>: expected string; found 1',
        ),
        (
            '{{ template "nope" }}',
            None,
            'template: t:1:12: executing "t" at <{{template "nope"}}>: template "nope" not defined',
        ),
    ],
)
def test_execution_errors_name_line_and_column(text: str, data: Any, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        render(text, data)
    assert str(err.value) == message
    assert err.value.line >= 1
    assert err.value.column is not None


def test_missing_key_error_is_consul_templates_error_on_missing_key() -> None:
    assert render("{{ .a }}", {"a": 1}, missing_key_error=True) == "1"
    with pytest.raises(TemplateError, match='map has no entry for key "b"'):
        render("{{ .b }}", {"a": 1}, missing_key_error=True)


def test_methods_are_called_with_arguments() -> None:
    class Tags(list[str]):
        def Contains(self, tag: str) -> bool:
            return tag in self

    assert render('{{ if .T.Contains "a" }}yes{{ end }}', {"T": Tags(["a"])}) == "yes"


def test_recursion_is_bounded() -> None:
    with pytest.raises(TemplateError, match="exceeded maximum template depth"):
        render('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}')
