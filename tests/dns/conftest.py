from __future__ import annotations

import pytest
from dnskit import catalog, make_resolver

from waypost.dns import Resolver
from waypost.dns.static import StaticBackend


@pytest.fixture
def backend() -> StaticBackend:
    return catalog()


@pytest.fixture
def resolver(backend: StaticBackend) -> Resolver:
    return make_resolver(backend)
