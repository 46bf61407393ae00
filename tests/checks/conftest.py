"""Fixtures for the check tests; the helpers themselves live in checks_kit."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from checks_kit import SPEED, FastClock, FixedRandom, Harness, Recorder, Servers

from waypost.checks import CheckScheduler


@pytest.fixture
async def make_harness() -> AsyncIterator[Callable[..., Harness]]:
    """Build started schedulers (defaults: fast clock, no stagger, scripts allowed)."""
    made: list[CheckScheduler] = []

    def make(speed: float = SPEED, **kwargs: Any) -> Harness:
        recorder = Recorder()
        kwargs.setdefault("clock", FastClock(speed))
        kwargs.setdefault("rng", FixedRandom())
        kwargs.setdefault("allow_scripts", True)
        scheduler = CheckScheduler(recorder, **kwargs)
        made.append(scheduler)
        return Harness(recorder, scheduler)

    yield make
    for scheduler in made:
        await scheduler.stop()


@pytest.fixture
async def harness(make_harness: Callable[..., Harness]) -> Harness:
    made = make_harness()
    await made.scheduler.start()
    return made


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    made = Servers()
    yield made
    await made.close()
