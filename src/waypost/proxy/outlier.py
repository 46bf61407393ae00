"""Passive outlier detection: an instance whose connects keep failing is set aside for a while.

The health checks see an instance every interval; the proxy sees it on every connection,
so ``consecutive_failures`` failed connects in a row eject it before its check turns
critical. The ejection lasts ``ejection`` times the number of ejections in a row (capped
at ten), as Envoy's does, and one successful connect clears the record. The clock is
injected so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from waypost.proxy.config import OutlierConfig

__all__ = ["OutlierDetector"]

log = logging.getLogger("waypost.proxy")

Key = tuple[str, str]
MAX_MULTIPLIER = 10


@dataclass(slots=True)
class _Record:
    failures: int = 0
    ejections: int = 0
    until: float = 0.0


class OutlierDetector:
    def __init__(self, config: OutlierConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self._records: dict[Key, _Record] = {}

    def ejected(self, key: Key) -> bool:
        record = self._records.get(key)
        return record is not None and record.until > self.clock()

    def failure(self, key: Key, name: str = "") -> bool:
        """Count a failed connect; True when it ejects the instance."""
        record = self._records.setdefault(key, _Record())
        record.failures += 1
        if record.failures < self.config.consecutive_failures or self.ejected(key):
            return False
        record.ejections += 1
        record.failures = 0
        period = self.config.ejection * min(record.ejections, MAX_MULTIPLIER)
        record.until = self.clock() + period
        log.warning("upstream %s ejected for %.1fs after %d consecutive connect failures",
                    name or "/".join(key), period, self.config.consecutive_failures)  # fmt: skip
        return True

    def success(self, key: Key) -> None:
        self._records.pop(key, None)

    def retain(self, keys: Iterable[Key]) -> None:
        """Forget instances no longer in the upstream set (a re-registration starts afresh)."""
        keep = set(keys)
        for key in [k for k in self._records if k not in keep]:
            del self._records[key]
