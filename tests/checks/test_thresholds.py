from __future__ import annotations

import pytest

from waypost.checks.base import CheckResult
from waypost.checks.thresholds import Thresholds
from waypost.state.model import CheckStatus

OK = CheckResult(CheckStatus.PASSING, "ok")
WARN = CheckResult(CheckStatus.WARNING, "meh")
BAD = CheckResult(CheckStatus.CRITICAL, "down")


def statuses(thresholds: Thresholds, results: list[CheckResult]) -> list[str | None]:
    return [None if (r := thresholds.apply(x)) is None else r.status.value for x in results]


def test_no_thresholds_report_everything() -> None:
    assert statuses(Thresholds(0, 0, 0), [OK, BAD, WARN, OK]) == ["passing", "critical", "warning", "passing"]


def test_first_result_is_reported_whatever_the_thresholds() -> None:
    assert statuses(Thresholds(3, 0, 3), [OK]) == ["passing"]
    assert statuses(Thresholds(3, 0, 3), [BAD]) == ["critical"]


def test_failures_before_critical() -> None:
    t = Thresholds(0, 0, 3)
    assert statuses(t, [OK, BAD, BAD, BAD, BAD, OK]) == [
        "passing",
        None,
        None,
        "critical",
        "critical",
        "passing",
    ]


def test_failures_before_warning_reports_warning_first() -> None:
    t = Thresholds(0, 1, 3)
    assert statuses(t, [OK, BAD, BAD, BAD]) == ["passing", "warning", "warning", "critical"]
    assert t.apply(BAD) == BAD


def test_success_before_passing() -> None:
    t = Thresholds(2, 0, 0)
    assert statuses(t, [BAD, OK, OK, OK, BAD, OK]) == [
        "critical",
        None,
        "passing",
        "passing",
        "critical",
        None,
    ]


@pytest.mark.parametrize("warning_first", [True, False])
def test_warning_counts_as_success(warning_first: bool) -> None:
    t = Thresholds(0, 0, 2)
    t.apply(OK)
    t.apply(BAD)
    assert t.apply(WARN if warning_first else OK) is not None
    assert t.apply(BAD) is None
