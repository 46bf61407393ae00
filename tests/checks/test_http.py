from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from checks_kit import Harness, Servers

from waypost.checks.definition import parse_check_definition
from waypost.checks.http import HttpCheck


class Target:
    """A real HTTP server whose answer a test can change between runs."""

    def __init__(self) -> None:
        self.status = 200
        self.body = "all good"
        self.requests: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/health", self.health)
        self.app.router.add_get("/moved", self.moved)

    async def health(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        self.bodies.append(await request.read())
        return web.Response(status=self.status, text=self.body)

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/health")


@pytest.fixture
async def http_check() -> AsyncIterator[HttpCheck]:
    check = HttpCheck()
    yield check
    await check.close()


@pytest.fixture
async def target(servers: Servers) -> tuple[Target, int]:
    made = Target()
    return made, await servers.start(made.app)


async def test_2xx_429_5xx_and_back(harness: Harness, target: tuple[Target, int]) -> None:
    server, port = target
    url = f"http://127.0.0.1:{port}/health"
    check = harness.add({"HTTP": url, "Interval": "1s"})
    assert await harness.recorder.wait_for(check, "passing") == f"HTTP GET {url}: 200 OK Output: all good"

    server.status, server.body = 429, "slow down"
    output = await harness.recorder.wait_for(check, "warning")
    assert output == f"HTTP GET {url}: 429 Too Many Requests Output: slow down"

    server.status, server.body = 503, "sick"
    output = await harness.recorder.wait_for(check, "critical")
    assert output == f"HTTP GET {url}: 503 Service Unavailable Output: sick"

    server.status, server.body = 204, ""
    assert await harness.recorder.wait_for(check, "passing") == f"HTTP GET {url}: 204 No Content Output: "


async def test_listener_gone_is_critical_with_gos_wording(
    servers: Servers, target: tuple[Target, int], http_check: HttpCheck
) -> None:
    _, port = target
    await servers.stop(port)
    url = f"http://127.0.0.1:{port}/health"
    result = await http_check.probe(parse_check_definition({"HTTP": url, "Interval": "1s"}))
    assert result.status == "critical"
    assert result.output == f'Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'


async def test_request_carries_method_headers_body_and_user_agent(
    target: tuple[Target, int], http_check: HttpCheck
) -> None:
    server, port = target
    body: dict[str, Any] = {
        "HTTP": f"http://127.0.0.1:{port}/health",
        "Method": "put",
        "Header": {"X-Token": ["a", "b"], "Host": ["svc.example"]},
        "Body": '{"ping": 1}',
        "Interval": "1s",
    }
    result = await http_check.probe(parse_check_definition(body))
    assert result.output.startswith(f"HTTP PUT http://127.0.0.1:{port}/health: 200 OK")
    request = server.requests[-1]
    assert request.method == "PUT"
    assert request.headers.getall("X-Token") == ["a", "b"]
    assert request.headers["Host"] == "svc.example"
    assert request.headers["User-Agent"] == "Consul Health Check"
    assert request.headers["Accept"] == "text/plain, text/*, */*"
    assert server.bodies[-1] == b'{"ping": 1}'


async def test_redirects_followed_unless_disabled(target: tuple[Target, int], http_check: HttpCheck) -> None:
    _, port = target
    url = f"http://127.0.0.1:{port}/moved"
    followed = await http_check.probe(parse_check_definition({"HTTP": url, "Interval": "1s"}))
    kept = await http_check.probe(
        parse_check_definition({"HTTP": url, "Interval": "1s", "DisableRedirects": True})
    )
    assert (followed.status, followed.output) == ("passing", f"HTTP GET {url}: 200 OK Output: all good")
    assert kept.status == "critical"
    assert kept.output.startswith(f"HTTP GET {url}: 302 Found Output: ")


async def test_body_is_cut_to_its_tail(target: tuple[Target, int], http_check: HttpCheck) -> None:
    server, port = target
    server.body = "x" * 5000 + "END"
    url = f"http://127.0.0.1:{port}/health"
    default = await http_check.probe(parse_check_definition({"HTTP": url, "Interval": "1s"}))
    small = await http_check.probe(
        parse_check_definition({"HTTP": url, "Interval": "1s", "OutputMaxSize": 10})
    )
    assert default.output == f"HTTP GET {url}: 200 OK Output: " + ("x" * 4093 + "END")
    assert small.output == f"HTTP GET {url}: 200 OK Output: xxxxxxxEND"


async def test_tls_skip_verify_and_server_name(
    servers: Servers, target: tuple[Target, int], tls_files: tuple[Path, Path], http_check: HttpCheck
) -> None:
    server, _ = target
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = await servers.start(server.app, ssl_context=context)
    url = f"https://127.0.0.1:{port}/health"
    verified = await http_check.probe(parse_check_definition({"HTTP": url, "Interval": "1s"}))
    skipped = await http_check.probe(
        parse_check_definition({"HTTP": url, "Interval": "1s", "TLSSkipVerify": True})
    )
    named = await http_check.probe(
        parse_check_definition(
            {"HTTP": url, "Interval": "1s", "TLSSkipVerify": True, "TLSServerName": "other"}
        )
    )
    assert verified.status == "critical"
    assert "failed to verify certificate" in verified.output
    assert (skipped.status, named.status) == ("passing", "passing")


async def test_hanging_target_times_out(harness: Harness, servers: Servers) -> None:
    release = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/", hang)
    port = await servers.start(app)
    url = f"http://127.0.0.1:{port}/"
    check = harness.add({"HTTP": url, "Interval": "1s", "Timeout": "2s"})
    output = await harness.recorder.wait_for(check, "critical")
    assert (
        output == f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    )
    release.set()


async def test_redirects_change_the_method_as_gos_client_does(
    servers: Servers, http_check: HttpCheck
) -> None:
    seen: list[tuple[str, str, bytes]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, await request.read()))
        hops = int(request.query.get("hops", "0"))
        if request.path == "/see-other":
            raise web.HTTPFound("/landed")
        if request.path == "/temporary":
            raise web.HTTPTemporaryRedirect("/landed")
        if request.path == "/loop":
            raise web.HTTPFound(f"/loop?hops={hops + 1}")
        return web.Response(text=f"{request.method} landed")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    port = await servers.start(app)
    base = f"http://127.0.0.1:{port}"

    def post(path: str) -> Any:
        return parse_check_definition({"HTTP": base + path, "Method": "POST", "Body": "x", "Interval": "1s"})

    found = await http_check.probe(post("/see-other"))
    assert found.output == f"HTTP POST {base}/see-other: 200 OK Output: GET landed"
    assert seen[-1] == ("GET", "/landed", b"")  # 302: a GET without the body
    kept = await http_check.probe(post("/temporary"))
    assert kept.output == f"HTTP POST {base}/temporary: 200 OK Output: POST landed"
    assert seen[-1] == ("POST", "/landed", b"x")  # 307: the same request again
    looping = await http_check.probe(parse_check_definition({"HTTP": base + "/loop", "Interval": "1s"}))
    assert (looping.status, looping.output) == ("critical", f'Get "{base}/loop": stopped after 10 redirects')


async def test_credentials_in_the_url_go_as_basic_auth(
    target: tuple[Target, int], http_check: HttpCheck
) -> None:
    server, port = target
    result = await http_check.probe(
        parse_check_definition({"HTTP": f"http://ops:s%40cret@127.0.0.1:{port}/health", "Interval": "1s"})
    )
    assert result.status == "passing"
    assert server.requests[-1].headers["Authorization"] == "Basic b3BzOnNAY3JldA=="  # ops:s@cret


async def test_a_target_hanging_up_is_eof(http_check: HttpCheck) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    result = await http_check.probe(parse_check_definition({"HTTP": url, "Interval": "1s"}))
    listener.close()
    assert (result.status, result.output) == ("critical", f'Get "{url}": EOF')
