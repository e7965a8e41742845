"""The bureau file's pure parts: cycles, the 24-month history string, account status."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.bureau import (
    compute_history,
    get_account_status,
    get_history_months,
    parse_cycle,
)


def test_cycle_is_a_calendar_month() -> None:
    assert parse_cycle("2025-02") == (date(2025, 2, 1), date(2025, 2, 28))
    assert parse_cycle("2024-12") == (date(2024, 12, 1), date(2024, 12, 31))


@pytest.mark.parametrize("cycle", ["2025-13", "2025-2", "25-02", "2025-02-01"])
def test_RevertWhen_the_cycle_is_not_YYYY_MM(cycle: str) -> None:
    with pytest.raises(CreditNetValueError):
        parse_cycle(cycle)


def test_history_covers_the_24_months_ending_with_the_cycle_oldest_first() -> None:
    months = get_history_months(date(2025, 4, 30))
    assert len(months) == 24 and months[0] == (2023, 5) and months[-1] == (2025, 4)


def test_history_string_codes_each_month_by_its_bill_bucket() -> None:
    months = get_history_months(date(2025, 4, 30))
    buckets = {(2025, 1): "M0", (2025, 2): "M1", (2025, 3): "M3", (2024, 12): "M7+"}
    # No bill → *, M0 → N, M1 → 1, M3 → 3, M7+ → 7; the charge-off month is G.
    history = compute_history(months, buckets, date(2025, 4, 29))
    assert history == "*" * 19 + "7N13G"
    assert compute_history(months, {(2025, 4): "M0"}, None) == "*" * 23 + "N"


def test_account_status_prefers_charge_off_then_closed_then_delinquent() -> None:
    assert get_account_status("frozen", 200, True) == "3"
    assert get_account_status("closed", 0, False) == "4"
    assert get_account_status("frozen", 3, False) == "2"
    assert get_account_status("frozen", 0, False) == "5"
    assert get_account_status("active", 0, False) == "1"
