"""Rendering against a brain, without sockets: multi-phase lookups, missing data, failed
lookups, and the functions that read the brain."""

from __future__ import annotations

import pytest

from waypost.template.deps import parse_dependency
from waypost.template.errors import TemplateError
from waypost.template.render import CompiledTemplate
from waypost.template.values import CatalogSnippet, HealthService, KeyPair, ServiceTags


def dep(kind: str, spec: str) -> object:
    return parse_dependency(kind, spec)


def test_first_pass_records_what_is_missing_and_renders_defaults() -> None:
    tmpl = CompiledTemplate("t", '{{ key "a" }}|{{ keyOrDefault "b" "5" }}|{{ keyExists "c" }}')
    result = tmpl.render({})
    assert result.output == "|5|false"
    assert result.missing == {dep("kv.get", "a"), dep("kv.get", "b"), dep("kv.get", "c")}
    full = tmpl.render({dep("kv.get", "a"): "x", dep("kv.get", "b"): None, dep("kv.get", "c"): ""})
    assert (full.output, full.complete) == ("x|5|true", True)


def test_nested_lookups_need_a_second_pass() -> None:
    tmpl = CompiledTemplate(
        "t", "{{ range services }}{{ .Name }}={{ range service .Name }}{{ .Port }}{{ end }};{{ end }}"
    )
    services = dep("catalog.services", "")
    first = tmpl.render(
        {services: [CatalogSnippet("db", ServiceTags()), CatalogSnippet("web", ServiceTags())]}
    )
    assert first.missing == {dep("health.service", "db"), dep("health.service", "web")}
    brain = {
        services: [CatalogSnippet("db", ServiceTags()), CatalogSnippet("web", ServiceTags())],
        dep("health.service", "db"): [HealthService(Port=5432)],
        dep("health.service", "web"): [],
    }
    assert tmpl.render(brain).output == "db=5432;web=;"


def test_a_key_that_does_not_exist_waits_or_fails_with_err_on_failed_lookup() -> None:
    brain = {dep("kv.get", "app/missing"): None}
    waiting = CompiledTemplate("t", '{{ key "app/missing" }}').render(brain)
    assert not waiting.complete
    strict = CompiledTemplate("t", '{{ key "app/missing" }}', err_on_failed_lookup=True)
    with pytest.raises(TemplateError, match='key "app/missing" does not exist'):
        strict.render(brain)


def test_ls_tree_and_their_safe_forms() -> None:
    pairs = [KeyPair("p/", ""), KeyPair("p/a", "a", "1"), KeyPair("p/d/", "d/"), KeyPair("p/d/b", "d/b", "2")]
    brain = {dep("kv.list", "p"): pairs, dep("kv.list", "empty"): []}
    text = '{{ range ls "p" }}{{ .Key }} {{ end }}|{{ range tree "p" }}{{ .Key }} {{ end }}|{{ ls "empty" }}'
    assert CompiledTemplate("t", text).render(brain).output == "a |a d/b |[]"
    assert not CompiledTemplate("t", '{{ safeLs "empty" }}').render(brain).complete
    assert not CompiledTemplate("t", '{{ safeTree "empty" }}').render(brain).complete


def test_service_names_with_dots_and_status_filters() -> None:
    tmpl = CompiledTemplate(
        "t", '{{ service "name=api.v2|passing,warning" }}{{ service "blue.web@dc2~_agent" }}'
    )
    used = tmpl.render({}).used
    assert dep("health.service", "name=api.v2|passing,warning") in used
    names = {(d.name, d.tag, d.dc, d.near, d.filters) for d in used}  # type: ignore[attr-defined]
    assert names == {
        ("api.v2", "", "", "", ("passing", "warning")),
        ("web", "blue", "dc2", "_agent", ("passing",)),
    }


def test_write_to_file_is_returned_not_written(tmp_path: object) -> None:
    tmpl = CompiledTemplate("t", '{{ "x" | writeToFile "/tmp/never-written" "" "" "0600" "newline" }}done')
    result = tmpl.render({})
    assert result.output == "done"
    assert [(f.path, f.perms, f.content) for f in result.files] == [("/tmp/never-written", 0o600, "x\n")]


def test_execute_template_and_scratch() -> None:
    text = (
        '{{ define "row" }}<{{ . }}>{{ end }}{{ executeTemplate "row" 3 }}'
        '{{ scratch.Set "k" "v" }}{{ scratch.MapSet "m" "b" 2 }}{{ scratch.MapSet "m" "a" 1 }}'
        '{{ scratch.Get "k" }}{{ scratch.MapValues "m" }}{{ scratch.Key "k" }}'
    )
    assert CompiledTemplate("t", text).render({}).output == "<3>v[1 2]true"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{{ service "" }}', 'health.service: invalid format: ""'),
        ('{{ service "web|bogus" }}', 'health.service: invalid filter: "bogus" in "web|bogus"'),
        ('{{ service "web?ns=team" }}', "waypost does not support namespaces"),
        ('{{ key "a?wat=1" }}', 'kv.get: invalid query parameter: "wat"'),
        ('{{ plugin "x" }}', "plugin: waypost template does not run plugins"),
        ('{{ node "bad name" }}', 'catalog.node: invalid format: "bad name"'),
    ],
)
def test_bad_arguments_name_the_function(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        CompiledTemplate("t", text).render({})
