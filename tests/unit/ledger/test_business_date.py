"""Business-date guards as pure rules: the window a request may be dated in, and how far
ahead of the calendar an operator may move the business date (issue 15, item 8)."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.ledger.business_date import check_business_date_ahead, resolve_as_of

BUSINESS_DATE = date(2025, 3, 12)


@pytest.mark.parametrize(
    ("requested", "window_days", "resolved"),
    [
        (None, 7, BUSINESS_DATE),
        (date(2025, 3, 12), 7, date(2025, 3, 12)),
        (date(2025, 3, 5), 7, date(2025, 3, 5)),  # 12 − 7: the first day of the window
        (date(2025, 3, 11), 1, date(2025, 3, 11)),
        (date(2025, 3, 12), 0, date(2025, 3, 12)),
    ],
)
def test_a_request_may_be_dated_back_within_the_window(
    requested: date | None, window_days: int, resolved: date
) -> None:
    assert resolve_as_of(requested, BUSINESS_DATE, window_days) == resolved


@pytest.mark.parametrize(
    ("requested", "window_days", "code"),
    [
        (date(2025, 3, 13), 7, "as_of_after_business_date"),
        (date(9999, 12, 31), 7, "as_of_after_business_date"),
        (date(2025, 3, 4), 7, "closed_day"),  # 8 days back
        (date(2025, 3, 11), 0, "closed_day"),
    ],
)
def test_RevertWhen_a_request_is_dated_outside_the_window(
    requested: date, window_days: int, code: str
) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        resolve_as_of(requested, BUSINESS_DATE, window_days)
    assert (caught.value.field, caught.value.code) == ("as_of", code)


def test_before_the_first_business_date_any_requested_date_is_taken() -> None:
    assert resolve_as_of(date(2031, 1, 1), None) == date(2031, 1, 1)


def test_the_business_date_moves_at_most_max_ahead_days_past_the_calendar() -> None:
    today = date(2025, 11, 5)
    check_business_date_ahead(date(2025, 11, 8), today, 3)  # today + 3: allowed
    check_business_date_ahead(date(2020, 1, 1), today, 3)  # behind the calendar: allowed
    with pytest.raises(CreditNetValueError) as caught:
        check_business_date_ahead(date(2025, 11, 9), today, 3)
    assert (caught.value.field, caught.value.code) == ("as_of", "business_date_too_far_ahead")
    assert caught.value.extra["latest_allowed"] == "2025-11-08"
    with pytest.raises(CreditNetValueError):
        check_business_date_ahead(date(9999, 12, 31), today, 3)
