"""The end-of-day scheduler's policy: which business date it closes at a wall-clock time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from node_api.lending.eod.scheduler import EodPolicy, EodSchedule, get_calendar_target


def _schedule(**changes: object) -> EodSchedule:
    return EodSchedule(policy=EodPolicy.CALENDAR, **changes)  # type: ignore[arg-type]


def test_calendar_policy_closes_yesterday_once_past_the_cutoff_in_the_node_timezone() -> None:
    # 16:45 UTC on 4 March is 00:45 on 5 March in Shanghai: past the 00:30 cut-off,
    # so the 4th can be closed.
    now = datetime(2025, 3, 4, 16, 45, tzinfo=UTC)
    assert get_calendar_target(now, _schedule()) == date(2025, 3, 4)


def test_calendar_policy_waits_for_the_cutoff() -> None:
    # 16:15 UTC is 00:15 in Shanghai: before the cut-off only the 3rd may be closed.
    now = datetime(2025, 3, 4, 16, 15, tzinfo=UTC)
    assert get_calendar_target(now, _schedule()) == date(2025, 3, 3)


def test_calendar_policy_follows_the_configured_timezone_and_cutoff() -> None:
    now = datetime(2025, 3, 4, 23, 0, tzinfo=UTC)
    schedule = _schedule(timezone="UTC", cutoff=time(22, 0))
    assert get_calendar_target(now, schedule) == date(2025, 3, 3)


def test_policy_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDITNET_EOD_POLICY", raising=False)
    assert EodSchedule().policy is EodPolicy.MANUAL
    monkeypatch.setenv("CREDITNET_EOD_POLICY", "interval")
    monkeypatch.setenv("CREDITNET_EOD_INTERVAL_S", "5")
    schedule = EodSchedule()
    assert (schedule.policy, schedule.interval_s) == (EodPolicy.INTERVAL, 5.0)


def test_workers_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDITNET_EOD_WORKERS", raising=False)
    assert EodSchedule().workers == 1
    monkeypatch.setenv("CREDITNET_EOD_WORKERS", "4")
    assert EodSchedule().workers == 4
    monkeypatch.setenv("CREDITNET_EOD_WORKERS", "0")
    with pytest.raises(ValueError, match="workers"):
        EodSchedule()
