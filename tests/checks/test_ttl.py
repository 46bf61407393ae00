from __future__ import annotations

import asyncio

import pytest
from checks_kit import SPEED, Harness

from waypost.checks.ttl import TtlState


async def test_updates_then_expiry_then_recovery(harness: Harness) -> None:
    check = harness.add({"TTL": "2s"})
    stored = harness.scheduler.ttl_update(check, "passing", "heartbeat 1")
    assert stored == "heartbeat 1"
    assert harness.recorder.history(check) == [("passing", "heartbeat 1")]

    harness.scheduler.ttl_update(check, "warning", "load high")
    output = await harness.recorder.wait_for(check, "critical")
    assert output == "TTL expired (last output before timeout follows): load high"

    harness.scheduler.ttl_update(check, "passing", "")
    assert harness.recorder.history(check)[-1] == ("passing", "")
    assert await harness.recorder.wait_for(check, "critical") == "TTL expired"


async def test_never_updated_expires_without_output(harness: Harness) -> None:
    check = harness.add({"TTL": "1s"})
    assert await harness.recorder.wait_for(check, "critical") == "TTL expired"


async def test_unknown_and_non_ttl_checks_are_refused(harness: Harness) -> None:
    with pytest.raises(KeyError, match="Unknown check ID"):
        harness.scheduler.ttl_update("nope", "passing", "")
    check = harness.add({"TCP": "127.0.0.1:1", "Interval": "1m"})
    with pytest.raises(ValueError, match="does not have associated TTL"):
        harness.scheduler.ttl_update(check, "passing", "")
    ttl = harness.add({"TTL": "1m"})
    with pytest.raises(ValueError, match="Unknown check status"):
        harness.scheduler.ttl_update(ttl, "pass", "")


def test_long_output_is_trimmed_as_consul_does() -> None:
    state = TtlState(output_max_size=4)
    assert state.update("passing", "abcdefgh").output == "abcd ... (captured 4 of 8 bytes)"
    assert (
        state.expired().output
        == "TTL expired (last output before timeout follows): abcd ... (captured 4 of 8 bytes)"
    )


async def test_heartbeats_faster_than_the_ttl_keep_it_passing(harness: Harness) -> None:
    check = harness.add({"TTL": "10s"})
    for beat in range(12):
        harness.scheduler.ttl_update(check, "passing", "alive")
        await asyncio.sleep(1.0 / SPEED)
        assert harness.recorder.history(check) == [("passing", "alive")], f"expired after beat {beat}"
    assert await harness.recorder.wait_for(check, "critical") == (
        "TTL expired (last output before timeout follows): alive"
    )
