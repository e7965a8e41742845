"""Early delinquency of a line from its bills: first payment default and M1+ at 3 months,
each unknown until it matures."""

from __future__ import annotations

from datetime import date

from node_api.kernel.money import Fen
from node_api.lending.bill_views import BillOutcomeView, BillView
from node_api.onboarding.challenger_report import EarlyOutcome, add_months, compute_early_outcome

OPENED = date(2025, 1, 15)


def _bill(
    bill_date: date,
    *,
    minimum_fen: int = 0,
    unpaid_minimum_fen: int | None = None,
    days_past_due: int = 0,
) -> BillView:
    """A bill with a minimum payment; its due-date outcome when `unpaid_minimum_fen` is given."""
    outcome = None
    if unpaid_minimum_fen is not None:
        outcome = BillOutcomeView(
            decided_on=bill_date,
            paid_fen=Fen(minimum_fen - unpaid_minimum_fen),
            paid_in_full=unpaid_minimum_fen == 0,
            unpaid_minimum_fen=Fen(unpaid_minimum_fen),
            moved_to_past_due_fen=Fen(unpaid_minimum_fen),
            retro_interest_fen=Fen(0),
        )
    amounts = {name: Fen(0) for name in BillView.model_fields if name.endswith("_fen")}
    return BillView(
        **{**amounts, "statement_balance_fen": Fen(minimum_fen * 10),
           "minimum_payment_fen": Fen(minimum_fen)},
        id=1, bill_date=bill_date, cycle_start=bill_date, due_date=bill_date,
        product_code="PAY1", product_version=1, days_past_due=days_past_due,
        bucket="M1" if days_past_due else "M0", outcome=outcome,
    )  # fmt: skip


def test_a_missed_first_minimum_is_a_first_payment_default() -> None:
    bills = [
        _bill(date(2025, 2, 1)),  # nothing spent: no payment due
        _bill(date(2025, 3, 1), minimum_fen=5_000, unpaid_minimum_fen=5_000),
        _bill(date(2025, 4, 1), minimum_fen=5_000, unpaid_minimum_fen=0),
    ]
    outcome = compute_early_outcome(OPENED, bills, date(2025, 4, 30))
    assert outcome == EarlyOutcome(first_payment_default=True, m1_plus_at_3_months=False)


def test_a_paid_first_minimum_is_no_default_and_an_undecided_one_is_unknown() -> None:
    paid = [_bill(date(2025, 2, 1), minimum_fen=5_000, unpaid_minimum_fen=0)]
    assert compute_early_outcome(OPENED, paid, date(2025, 2, 28)).first_payment_default is False
    pending = [_bill(date(2025, 2, 1), minimum_fen=5_000)]
    assert compute_early_outcome(OPENED, pending, date(2025, 2, 10)).first_payment_default is None
    assert compute_early_outcome(OPENED, [], date(2025, 2, 10)).first_payment_default is None


def test_m1_plus_is_read_on_the_last_bill_of_the_first_three_months_once_they_passed() -> None:
    bills = [
        _bill(date(2025, 2, 1), days_past_due=0),
        _bill(date(2025, 3, 1), days_past_due=12),
        _bill(date(2025, 4, 1), days_past_due=3),
        _bill(date(2025, 5, 1), days_past_due=0),
    ]
    assert compute_early_outcome(OPENED, bills, date(2025, 4, 14)).m1_plus_at_3_months is None
    assert compute_early_outcome(OPENED, bills, date(2025, 4, 15)).m1_plus_at_3_months is True
    cured = [*bills[:2], _bill(date(2025, 4, 1), days_past_due=0)]
    assert compute_early_outcome(OPENED, cured, date(2025, 6, 1)).m1_plus_at_3_months is False


def test_months_are_added_calendar_wise() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
    assert add_months(date(2025, 10, 15), 3) == date(2026, 1, 15)
