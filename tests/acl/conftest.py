"""Fixtures for the ACL tests: one default-deny agent per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acl_kit import Caller, start_acl_agent
from waypost.testing import AgentProcess


@pytest.fixture(scope="module")
def acl_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    with start_acl_agent(tmp_path_factory.mktemp("acl")) as agent:
        yield agent


@pytest.fixture(scope="module")
def call(acl_agent: AgentProcess) -> Caller:
    return Caller(acl_agent)
