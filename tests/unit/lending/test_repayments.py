"""A line's receivables as waterfall items: past due first, then component, billed first."""

from __future__ import annotations

from datetime import date

from node_api.ledger.accounts import AccountType, line_account_code
from node_api.lending.billing_rules import Component, compute_waterfall
from node_api.lending.core.books import LineBook
from node_api.lending.repayments import compute_outstanding_items

DAY = date(2025, 4, 1)


def _book(**balances: int) -> LineBook:
    return LineBook(
        3, {line_account_code(3, AccountType(kind)): fen for kind, fen in balances.items()}
    )


def _allocate(
    book: LineBook, payment_fen: int, past_due_first: bool = True
) -> list[tuple[str, int]]:
    order = (Component.PENALTY, Component.FEES, Component.INTEREST, Component.PRINCIPAL)
    result = compute_waterfall(
        payment_fen, compute_outstanding_items(book, DAY), order, past_due_first
    )
    return [(a.item_id.split(":", 1)[1], a.amount_fen) for a in result.allocations]


def test_past_due_principal_goes_before_current_interest() -> None:
    book = _book(principal_past_due=500, interest_billed=40, principal_billed=1_000)
    assert _allocate(book, 600) == [
        ("principal_past_due", 500),
        ("interest_billed", 40),
        ("principal_billed", 60),
    ]


def test_billed_principal_goes_before_unbilled_principal() -> None:
    book = _book(principal_unbilled=300, principal_billed=200)
    assert _allocate(book, 250) == [("principal_billed", 200), ("principal_unbilled", 50)]


def test_without_past_due_first_the_component_order_decides() -> None:
    book = _book(principal_past_due=500, fee_billed=30)
    assert _allocate(book, 100, past_due_first=False) == [
        ("fee_billed", 30),
        ("principal_past_due", 70),
    ]


def test_over_payment_is_left_as_credit_and_zero_balances_are_no_items() -> None:
    book = _book(penalty_past_due=10, principal_unbilled=0)
    items = compute_outstanding_items(book, DAY)
    assert [item.item_id for item in items] == ["0:penalty_past_due"]
    assert compute_waterfall(25, items).credit_balance_fen == 15
