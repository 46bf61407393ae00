from __future__ import annotations

import asyncio
import socket
from typing import cast

from checks_kit import Harness

from waypost.checks.definition import parse_check_definition
from waypost.checks.udp import UdpCheck


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(b"pong", addr)


async def echo_server(port: int = 0) -> tuple[asyncio.DatagramTransport, int]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Echo, local_addr=("127.0.0.1", port), reuse_port=True
    )
    return transport, int(transport.get_extra_info("sockname")[1])


async def test_reply_then_unreachable_then_reply(harness: Harness) -> None:
    transport, port = await echo_server()
    address = f"127.0.0.1:{port}"
    check = harness.add({"UDP": address, "Interval": "1s"})
    assert await harness.recorder.wait_for(check, "passing") == f"UDP connect {address}: Success"

    transport.close()
    output = await harness.recorder.wait_for(check, "critical")
    assert output.startswith("read udp 127.0.0.1:")
    assert output.endswith(f"->{address}: read: connection refused")

    transport, _ = await echo_server(port)
    await harness.recorder.wait_for(check, "passing")
    transport.close()


async def test_silent_listener_is_passing_at_the_timeout(harness: Harness) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        check = harness.add({"UDP": address, "Interval": "1s", "Timeout": "1s"})
        assert await harness.recorder.wait_for(check, "passing") == f"UDP connect {address}: Success"
        assert silent.recv(16) == b""


async def test_unresolvable_address_is_critical() -> None:
    result = await UdpCheck().probe(parse_check_definition({"UDP": "nowhere", "Interval": "1s"}))
    assert (result.status, result.output) == (
        "critical",
        "dial udp nowhere: address nowhere: missing port in address",
    )
