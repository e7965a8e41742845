"""The bureau file's pure parts: cycles, the 24-month history string, account status."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.bureau import (
    compute_history,
    compute_overdue_bands,
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
    # No bill → *, M0 → N, M1 → 1, M3 → 3, M7+ → 7; the charge-off month is B (呆账).
    history = compute_history(months, buckets, date(2025, 4, 29))
    assert history == "*" * 19 + "7N13B"
    assert compute_history(months, {(2025, 4): "M0"}, None) == "*" * 23 + "N"


def test_a_charged_off_account_stays_bad_debt_every_month_after() -> None:
    # Charged off in February, reported in April: February, March and April are all B.
    months = get_history_months(date(2025, 4, 30))
    buckets = {(2025, 1): "M5", (2025, 2): "M6"}
    assert compute_history(months, buckets, date(2025, 2, 20)).endswith("5BBB")


def test_account_status_uses_the_pboc_loan_codes() -> None:
    # 4 呆账 (charged off), 3 结清 (closed), 2 逾期, 1 正常 (a frozen line by its standing).
    assert get_account_status("frozen", 200, True) == "4"
    assert get_account_status("closed", 0, False) == "3"
    assert get_account_status("frozen", 3, False) == "2"
    assert get_account_status("frozen", 0, False) == "1"
    assert get_account_status("active", 0, False) == "1"


def test_overdue_principal_goes_to_the_newest_unpaid_bills_by_age() -> None:
    # Three bills each made 5,000 past due (due 25 January, February and March); 12,000 of
    # principal is still past due on 31 May. Payments settle the oldest first, so the
    # 12,000 is March's 5,000 (67 days: 61-90), February's 5,000 (95 days: 91-180) and
    # 2,000 of January's (126 days: 91-180).
    debts = [(date(2025, 1, 25), 5_000), (date(2025, 2, 25), 5_000), (date(2025, 3, 25), 5_000)]
    assert compute_overdue_bands(12_000, debts, date(2025, 5, 31)) == (0, 5_000, 7_000, 0)
    # 1-30 days past due is in no band; beyond 180 is the last.
    assert compute_overdue_bands(5_000, [(date(2025, 5, 25), 5_000)], date(2025, 5, 31)) == (
        0, 0, 0, 0
    )  # fmt: skip
    assert compute_overdue_bands(100, [(date(2024, 10, 1), 5_000)], date(2025, 5, 31)) == (
        0, 0, 0, 100
    )  # fmt: skip
