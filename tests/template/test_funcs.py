"""consul-template's helper functions, with its argument order and results."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from waypost.template.errors import TemplateError
from waypost.template.gofmt import StringMap
from waypost.template.gotime import go_time_format
from waypost.template.render import CompiledTemplate
from waypost.template.values import HealthService, KeyPair


def render(text: str, **data: Any) -> str:
    tmpl = CompiledTemplate("t", text)
    return tmpl.template.execute(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "{{ add 1 2 }} {{ 10 | subtract 2 }} {{ multiply 3 4 }} {{ 7 | divide 2 }} {{ 7 | modulo 3 }}",
            "3 8 12 3 1",
        ),
        ("{{ divide 2 7.0 }} {{ minimum 3 1 }} {{ maximum 3 1.5 }} {{ -7 | divide 2 }}", "3.5 1 3 -3"),
        ('{{ "a,b,c" | split "," | join ";" }} {{ split "," "" }}', "a;b;c []"),
        (
            '{{ "  x  " | trimSpace }}|{{ "Hello" | toLower }}|'
            '{{ "hello world" | toTitle }}|{{ "a" | toUpper }}',
            "x|hello|Hello World|A",
        ),
        (
            '{{ replaceAll "a" "b" "banana" }} {{ regexReplaceAll "(\\\\w)@(\\\\w)" "${2}-$1" "a@b" }}',
            "bbnbnb b-a",
        ),
        (
            '{{ regexMatch "^a.c$" "abc" }} {{ "abc" | contains "b" }} {{ in (split "," "a,b") "b" }}',
            "true true true",
        ),
        (
            '{{ containsAll (split "," "a,b") (split "," "a,b,c") }} '
            '{{ containsAny (split "," "x") (split "," "a") }} '
            '{{ containsNone (split "," "x") (split "," "a") }} '
            '{{ containsNotAll (split "," "a,x") (split "," "a") }}',
            "true false true true",
        ),
        (
            '{{ parseBool "true" }} {{ parseInt "-12" }} {{ parseFloat "1.5" }} {{ parseUint "7" }}',
            "true -12 1.5 7",
        ),
        (
            '{{ with parseJSON "{\\"a\\": [1, 2], \\"b\\": \\"x\\"}" }}'
            "{{ .a }} {{ .b }} {{ toJSON . }}{{ end }}",
            '[1 2] x {"a":[1,2],"b":"x"}',
        ),
        ('{{ toYAML (parseJSON "{\\"b\\": 1, \\"a\\": [\\"x\\"]}") }}', "a:\n- x\nb: 1"),
        ('{{ toJSONPretty (parseJSON "{\\"a\\": 1}") }}', '{\n  "a": 1\n}'),
        ('{{ indent 2 "a\\nb" }}', "  a\n  b"),
        (
            '{{ "aGk=" | base64Decode }} {{ "hi" | base64Encode }} {{ sha256Hex "" | printf "%.8s" }}',
            "hi aGk= e3b0c442",
        ),
        ("{{ range loop 3 }}{{ . }}{{ end }} {{ range loop 2 4 }}{{ . }}{{ end }}", "012 23"),
        (
            '{{ env "WAYPOST_TEMPLATE_TEST_UNSET" }}|{{ envOrDefault "WAYPOST_TEMPLATE_TEST_UNSET" "d" }}',
            "|d",
        ),
    ],
)
def test_helpers(text: str, expected: str) -> None:
    assert render(text) == expected


def test_by_key_by_tag_by_meta_explode() -> None:
    pairs = [KeyPair("a/x/1", "x/1", "v1"), KeyPair("a/x/2", "x/2", "v2"), KeyPair("a/y", "y", "v3")]
    by_key = "{{ range $k, $v := byKey .P }}{{ $k }}:{{ range $v }}{{ .Key }}={{ .Value }},{{ end }}{{ end }}"
    assert render(by_key, P=pairs) == "x:1=v1,2=v2,"
    assert render("{{ explode .P }}", P=pairs) == "map[x:map[1:v1 2:v2] y:v3]"
    svcs = [
        HealthService(Node="n1", Tags=["a", "b"], ServiceMeta=StringMap(zone="eu", w="2")),  # type: ignore[arg-type]
        HealthService(Node="n2", Tags=["b"], ServiceMeta=StringMap(zone="us")),  # type: ignore[arg-type]
    ]
    assert render("{{ range $t, $s := byTag .S }}{{ $t }}={{ len $s }} {{ end }}", S=svcs) == "a=1 b=2 "
    assert (
        render('{{ range $k, $s := byMeta "zone,w|int" .S }}{{ $k }} {{ end }}', S=svcs)
        == "eu_00002 us_00000 "
    )


def test_timestamp_layouts() -> None:
    when = dt.datetime(2024, 3, 5, 14, 7, 9, 120000, tzinfo=dt.UTC)
    assert go_time_format(when, "2006-01-02T15:04:05Z07:00") == "2024-03-05T14:07:09Z"
    assert go_time_format(when, "Jan _2 3:04PM .000 .999 Mon") == "Mar  5 2:07PM .120 .12 Tue"
    assert render('{{ timestamp "2006" }}').isdigit()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{{ parseInt "x" }}', 'parseInt: strconv.ParseInt: parsing "x": invalid syntax'),
        ('{{ parseInt " 5" }}', 'parseInt: strconv.ParseInt: parsing " 5": invalid syntax'),
        ('{{ parseInt "1_000" }}', 'parseInt: strconv.ParseInt: parsing "1_000": invalid syntax'),
        ('{{ parseUint "\u00b2" }}', 'parseUint: strconv.ParseUint: parsing "\u00b2": invalid syntax'),
        ('{{ parseUint "+1" }}', 'parseUint: strconv.ParseUint: parsing "\\+1": invalid syntax'),
        ('{{ add "a" 1 }}', 'add: unknown type for "a" \\(string\\)'),
        ("{{ divide 0 1 }}", "integer divide by zero"),
        ('{{ regexMatch "(" "x" }}', "error parsing regexp"),
        ('{{ indent -1 "x" }}', "indent value must be a positive integer"),
        ('{{ timestamp "a" "b" }}', "timestamp: wrong number of arguments, expected 0 or 1, but got 2"),
        ("{{ toLower 3 }}", "expected string; found 3"),
    ],
)
def test_helper_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(text)
