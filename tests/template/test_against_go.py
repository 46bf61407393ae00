"""waypost's evaluator against Go's own text/template, case by case.

``gotemplate/`` is a tiny Go program running Go's text/template over the same cases (data
as JSON, so numbers are float64 and maps are ``map[string]interface{}`` on both sides);
each output and each error message must be identical. Skipped without a Go toolchain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from waypost.template.errors import TemplateError
from waypost.template.evaluate import Template
from waypost.template.funcs import parse_json

GO = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
pytestmark = pytest.mark.skipif(GO is None, reason="needs a Go toolchain")

CASES: list[tuple[str, Any] | tuple[str, Any, bool]] = [
    ("{{ range $i, $e := .L }}{{$i}}={{$e}},{{ else }}none{{ end }}", {"L": ["a", "b"]}),
    (
        "{{ .A }} {{ .F }} {{ .N }} {{ .B }} {{ .M }} {{ .L }} {{ .Z }} {{ .E }}",
        {"A": "s", "F": 1.5, "N": 3, "B": True, "M": {"b": 1, "a": [1, "x"]}, "L": [], "Z": None, "E": 1e21},
    ),
    ("{{ .Missing }}|{{ .M.x.y }}", {"M": {}}),
    ('{{ index .M "nope" }}', {"M": {}}),
    (
        '{{ printf "%v %d %s %q %5.2f %x %t %T %T" .L 3 "a" "q" 3.14159 255 true 1.5 .M }}',
        {"L": [1, 2], "M": {}},
    ),
    ('{{ printf "%d" }} {{ printf "%d" "s" }} {{ printf "%s" 1 2 }} {{ printf "%s" .N }}', {"N": 2}),
    ('{{ print 1 2 "a" 3 nil }} {{ println 1 "a" }}', None),
    (
        "{{ 1e6 }} {{ 1.0 }} {{ 100000.0 }} {{ 1234567.0 }} {{ 0.000001 }} "
        "{{ 'a' }} {{ 0x10 }} {{ -3 }} {{ 1_000 }} {{ 017 }}",
        None,
    ),
    ("{{ .F }} {{ .G }} {{ .H }}", {"F": 1e6, "G": 123456789.0, "H": 0.1}),
    ("a  {{- 1 -}}  b {{/* c */}} x {{- /* d */}} y", None),
    (
        "{{ if and .A .B }}y{{ else }}n{{ end }} {{ or .A .B }} {{ and .A .B }} {{ not .L }}",
        {"A": 1, "B": 0, "L": []},
    ),
    (
        '{{ eq 1 1 }} {{ eq .A .B }} {{ eq "a" "a" "b" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 1.5 1.5 }}',
        {"A": 1, "B": 1},
    ),
    ('{{ eq 1 "a" }}', None),
    ("{{ lt true false }}", None),
    ("{{ len 3 }}", None),
    ("{{ index .L 5 }}", {"L": []}),
    ("x\n  {{ .A.B }}", {"A": 3}),
    ("{{ .A.B }}", {"A": None}),
    ("{{ range .S }}{{ end }}", {"S": "abc"}),
    ("{{ printf 1 }}", None),
    ('{{ template "nope" }}', None),
    ("x\n{{ if }}", None),
    ("{{ foo }}", None),
    ("a\nb\n{{ range .L }}", None),
    ("{{ end }}", None),
    ("{{ $u }}", None),
    ("{{ .A", None),
    ('{{ "abc }}', None),
    ("{{ break }}", None),
    ("{{ 1 | 2 }}", None),
    ("{{ (1 }}", None),
    ("{{ if 1 }}{{ else }}{{ else }}{{ end }}", None),
    ("{{ /* x */ }}", None),
    ("{{ 3x }}", None),
    ("{{ else }}", None),
    ("{{ nil }}", None),
    ("{{ . 3 | }}", None),
    ("{{ .A 1 }}", {"A": 2}),
    ("{{ 1 2 }}", None),
    ('{{ html "<a href=\'x\'>" }} {{ urlquery "a b&c" }} {{ js "it\'s <x>" }}', None),
    ("{{ slice .S 1 3 }} {{ slice .L 1 }} {{ index .S 1 }}", {"S": "abcd", "L": [1, 2, 3]}),
    ("{{ with $v := .A }}{{ $v }}{{ end }}{{ with .Z }}x{{ else with .A }}w{{ end }}", {"A": "z", "Z": 0}),
    ('{{ define "t1" }}[{{ . }}]{{ end }}{{ template "t1" .A }}{{ block "b" 3 }}<{{.}}>{{ end }}', {"A": 5}),
    ("{{ $x := 1 }}{{ range .L }}{{ $x = . }}{{ end }}{{ $x }}", {"L": [7, 8]}),
    ("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}", {"M": {"b": 2, "a": 1}}),
    ("{{ range 3 }}{{ . }}{{ end }}", None),
    ("{{ .b }}", {"a": 1}, True),
    ("{{ .a.b }}", {}, True),
    (
        "{{ range .L }}{{ if eq . 2.0 }}{{ continue }}{{ end }}"
        "{{ if eq . 4.0 }}{{ break }}{{ end }}{{ . }}{{ end }}",
        {"L": [1, 2, 3, 4, 5]},
    ),
    (
        '{{ printf "%s" .M }} {{ printf "%v" .Z }} {{ printf "%s" .Z }} {{ printf "%d" .F }}',
        {"M": {"a": 1}, "Z": None, "F": 1.0},
    ),
    ('{{ "\\x41\\u00e9\\101\\t" }} {{ `raw\\n` }}', None),
    ('{{ printf "%08.3f|%+d|%-6s|%6s|%.1s|%c|%U" 3.14159 5 "ab" "cd" "xyz" 65 65 }}', None),
    ('{{ printf "%e %g %G %.3e %.3g" 1234.5678 1234.5678 1e-7 1234.5678 1234.5678 }}', None),
    ("{{ len .M }} {{ len .S }}", {"M": {"a": 1}, "S": "héllo"}),
    ("{{ index .M.a 0 }}", {"M": {"a": [9]}}),
    ("{{ $ }}", {"A": 1}),
    ("{{ range $i, $e := .L }}{{ $ }}{{ end }}", {"L": [1]}),
    ("{{ if .A }}{{ $x := 1 }}{{ end }}{{ $x }}", {"A": 1}),
    ('{{ .A | printf "%v-%v" 1 }}', {"A": 2}),
    ("{{ (.A).B }}", {"A": {"B": 7}}),
    ("{{ (index .L 0).K }}", {"L": [{"K": "v"}]}),
    ('{{ template "x" }}{{ define "x" }}X{{ end }}', None),
    ('{{ printf "%v" 1 }}{{ printf }}', None),
    ("{{ and }}", None),
    ("{{ call .F }}", {"F": 1}),
    ("{{ .A.B.C }}", {"A": {"B": None}}),
    ("{{ index .M 1 }}", {"M": {"a": 1}}),
    ("{{ print .F }}", {"F": -0.0}),
    ('{{ printf "%q" .L }}', {"L": ["a", "b"]}),
    ('{{ printf "%x" "hi" }} {{ printf "%X" 255 }} {{ printf "%o %b" 8 5 }}', None),
    ("{{/* unterminated", None),
    ("{{ .A }}\n{{ .B.C }}", {"A": 1, "B": 2}),
    ("{{ range .M }}{{ . }}{{ end }}", {"M": {"z": 1, "a": 2, "m": 3}}),
    ('{{ if 1 }}{{ end "x\\ty" }}', None),
    ('{{ if 1 }}{{ end "abcdefghijkl" }}', None),
    ('{{ if 1 }}{{ end `r"` }}', None),
    ("{{ 1__2 }}", None),
    ("{{ 1_ }}", None),
    ("{{ 0x1g }}", None),
    ('{{ "\\q" }}', None),
    ('{{ template "\\q" }}', None),
    ("{{ 1_000 }} {{ 0x_1 }} {{ 0b_1 }} {{ 0_7 }} {{ 1_0.5 }}", None),
]


@pytest.fixture(scope="module")
def go_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    assert GO is not None
    binary = tmp_path_factory.mktemp("gotemplate") / "gotemplate"
    source = Path(__file__).parent / "gotemplate"
    subprocess.run([GO, "build", "-o", str(binary), "."], cwd=source, check=True, timeout=300)
    cases = [{"t": c[0], "d": c[1], "m": len(c) > 2 and c[2]} for c in CASES]
    done = subprocess.run(
        [str(binary)], input=json.dumps(cases), capture_output=True, text=True, check=True, timeout=60
    )
    results: list[dict[str, str]] = json.loads(done.stdout)
    return results


def ours(case: tuple[Any, ...]) -> dict[str, str]:
    data = parse_json(json.dumps(case[1])) if case[1] is not None else None
    try:
        tmpl = Template("t", case[0])
        tmpl.missing_key_error = len(case) > 2 and bool(case[2])
        return {"out": tmpl.execute(data)}
    except TemplateError as err:
        return {"err": str(err)}


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0][:40] for c in CASES])
def test_same_as_go(go_results: list[dict[str, str]], index: int) -> None:
    assert ours(CASES[index]) == go_results[index]
