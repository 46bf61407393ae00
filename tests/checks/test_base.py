from __future__ import annotations

import asyncio

import pytest

from waypost.checks.base import LoopClock, TailBuffer, timed_out


def test_tail_buffer_keeps_the_end_and_says_what_it_dropped() -> None:
    buffer = TailBuffer(4)
    for chunk in (b"ab", b"cdef", b"gh"):
        buffer.write(chunk)
    assert (buffer.text(), buffer.total) == ("efgh", 8)
    assert buffer.report() == "Captured 4 of 8 bytes\n...\nefgh"


def test_tail_buffer_under_the_limit_is_verbatim() -> None:
    buffer = TailBuffer(10)
    buffer.write("héllo".encode())
    assert buffer.report() == "héllo"


def test_timed_out_uses_gos_duration_spelling() -> None:
    assert timed_out(30).output == "Timed out (30s) running check"
    assert timed_out(1.5).status == "critical"


async def test_loop_clock_follows_the_event_loop() -> None:
    clock = LoopClock()
    assert clock.now() == pytest.approx(asyncio.get_running_loop().time(), abs=0.5)
    with pytest.raises(TimeoutError):
        async with clock.timeout(0.01):
            await asyncio.Event().wait()
