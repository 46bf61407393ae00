"""Fabio-style ``urlprefix-`` routes: what a tag becomes, what is refused, and the order."""

from __future__ import annotations

import pytest

from waypost.proxy.haproxy_routes import Route, parse_route, render_frontend, routes_of


def test_a_tag_with_a_host_and_a_tag_for_any_host() -> None:
    assert parse_route("web", "urlprefix-Example.com/api") == Route("web", "example.com", "/api")
    assert parse_route("web", "urlprefix-/") == Route("web", "", "/")
    assert parse_route("web", "urlprefix-example.com") == Route("web", "example.com", "/")
    assert parse_route("web", "urlprefix-example.com:8080/x").host == "example.com:8080"


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("urlprefix-/a strip=/a", "route options are not supported"),
        ("urlprefix-/a\nglobal", "is not a URL path"),
        ("urlprefix-/a#b", "is not a URL path"),
        ("urlprefix-ex ample.com/", "route options are not supported"),
        ("urlprefix-*.example.com/", "is not a host name"),
        ("urlprefix-a{b}/", "is not a host name"),
    ],
)
def test_tags_that_cannot_be_written_safely_are_refused_with_the_reason(tag: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_route("web", tag)


def test_routes_of_a_catalog_answer_are_most_specific_first_and_problems_are_named() -> None:
    routes, problems = routes_of(
        {
            "web": ["urlprefix-/", "urlprefix-example.com/api", "v1"],
            "api": ["urlprefix-/api", "urlprefix-/api/v2", "urlprefix-/bad path"],
            "db": [],
        }
    )
    assert [(r.service, r.host, r.path) for r in routes] == [
        ("web", "example.com", "/api"),
        ("api", "", "/api/v2"),
        ("api", "", "/api"),
        ("web", "", "/"),
    ]
    assert problems == ["service 'api': 'urlprefix-/bad path': route options are not supported with HAProxy"]


def test_backend_names_are_stable_and_distinct_per_route() -> None:
    a, b = Route("web", "", "/a"), Route("web", "", "/b")
    assert a.backend == Route("web", "", "/a").backend
    assert a.backend != b.backend
    assert a.backend.startswith("r_web_")


def test_the_frontend_sends_unrouted_requests_to_a_404() -> None:
    lines = render_frontend("127.0.0.1:80", [Route("web", "example.com", "/api")])
    assert "    acl h0 var(txn.host) -m str example.com" in lines
    assert f"    use_backend {Route('web', 'example.com', '/api').backend} if h0 p0" in lines
    assert "    default_backend b_no_route" in lines
