"""``waypost version``."""

from __future__ import annotations

from collections.abc import Sequence

from waypost import __version__
from waypost.api.agent import CONSUL_COMPAT_VERSION


def run(argv: Sequence[str]) -> int:
    print(f"Waypost v{__version__}")
    print(f"Speaks the Consul v{CONSUL_COMPAT_VERSION} HTTP and DNS interfaces")
    return 0
