"""Purchases, drawdowns and refunds on both databases, through the batch code path."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from node_api.http.renderers import render_use
from node_api.idempotency import KeyClaim, StoredResponse
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.ledger.accounts import (
    AccountType,
    funding_payable_code,
    line_account_code,
    node_account_code,
)
from node_api.ledger.balances import fetch_account_balance, fetch_line_balances
from node_api.ledger.business_date import set_business_date
from node_api.ledger.schema import (
    ledger_account_table,
    posting_batch_table,
    posting_table,
    settlement_event_table,
)
from node_api.lending.core.batch import run_use_batch
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind, UseRequest
from node_api.lending.core.entries import CLEARING
from node_api.lending.eod.context import EodContext
from node_api.lending.eod.step_fund import run_funding_batch
from node_api.lending.purchases import refund_purchase
from node_api.lending.repayments import repay
from tests.integration.lending.helpers import OPENED_ON, check_books

_keys = itertools.count()


def use_request(line_id: int, amount_fen: int, **changes: Any) -> UseRequest:
    fields: dict[str, Any] = {
        "kind": UseKind.PURCHASE,
        "credit_line_id": line_id,
        "amount_fen": amount_fen,
        "currency": "CNY",
        "channel_id": "app",
        "claim": KeyClaim("test", f"key-{next(_keys)}", "hash"),
        "merchant_id": "m-1",
    }
    fields.update(changes)
    return UseRequest(**fields)


def purchase(
    database: Database, caches: LendingCaches, line_id: int, amount_fen: int, **changes: Any
) -> StoredResponse:
    """One use through the batch path in its own transaction."""
    with database.engine.begin() as conn:
        return run_use_batch(
            conn, caches, [use_request(line_id, amount_fen, **changes)], render_use
        )[0]


def test_purchase_posts_principal_and_commission_and_end_of_day_the_funding_split(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    result = purchase(database, caches, line_id, 10_001)
    assert result.status_code == 201 and result.body["available_fen"] == 19_999
    bank = funding_payable_code(line_id, "REV1", "bank-a")
    with database.engine.begin() as conn:
        balances = fetch_line_balances(conn, line_id)
        assert balances[AccountType.PRINCIPAL_UNBILLED] == 10_001
        assert fetch_account_balance(conn, "partner:app:channel_commission_payable") == -55
        assert fetch_account_balance(conn, bank) == 0  # the funders' shares wait for EOD
        run_funding_batch(conn, EodContext(caches=caches), OPENED_ON, [line_id])
    with database.engine.begin() as conn:
        # 70% / 30% of 10,001 is 7,000.7 / 3,000.3: the fen the floors leave goes to the
        # largest remainder (bank-a's), so the shares fund the whole 10,001.
        assert -fetch_account_balance(conn, bank) == 7_001
        events = conn.execute(
            select(
                settlement_event_table.c.kind,
                settlement_event_table.c.partner_ref,
                settlement_event_table.c.amount_fen,
            )
        ).all()
        assert set(events) == {
            ("merchant_payable", None, 10_001),
            ("channel_commission", "app", 55),
            ("funding_share", "bank-a", 7_001),
            ("funding_share", "lender", 3_000),
        }
        check_books(conn, [line_id])


def test_a_purchase_posts_its_principal_the_merchants_payable_and_the_commission(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    """One line each: the principal, clearing (the merchant's −X) and the commission; the
    funders' payables are end of day's (`step_fund`)."""
    with database.engine.begin() as conn:
        clearing_before = fetch_account_balance(conn, CLEARING)
    assert purchase(database, caches, line_id, 10_001).status_code == 201
    with database.engine.begin() as conn:
        rows = conn.execute(
            select(ledger_account_table.c.code, posting_table.c.amount_fen)
            .join(ledger_account_table, ledger_account_table.c.id == posting_table.c.account_id)
            .join(posting_batch_table, posting_batch_table.c.id == posting_table.c.batch_id)
            .where(posting_batch_table.c.credit_line_id == line_id)
        ).all()
        assert fetch_account_balance(conn, CLEARING) == clearing_before - 10_001
    principal = line_account_code(line_id, AccountType.PRINCIPAL_UNBILLED)
    assert sorted(rows) == sorted([
        (principal, 10_001),
        (CLEARING, -10_001),
        (node_account_code(AccountType.COMMISSION_EXPENSE), 55),
        ("partner:app:channel_commission_payable", -55),
    ])  # fmt: skip


def test_batch_decides_in_order_and_one_decline_does_not_fail_the_others(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    requests = [
        use_request(line_id, 20_000),
        use_request(line_id, 10_001),
        use_request(line_id, 10_000),
        use_request(line_id, 1, channel_id="kiosk"),
        use_request(999_999, 1),
    ]
    with database.engine.begin() as conn:
        results = run_use_batch(conn, caches, requests, render_use)
        check_books(conn, [line_id])
    assert [r.status_code for r in results] == [201, 409, 201, 409, 404]
    assert results[1].body["limit_path"] == "total/purchase/REV1/app"
    assert results[3].body["code"] == "channel_ineligible"


def test_cash_drawdown_charges_the_origination_fee_on_the_cash_product(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    result = purchase(database, caches, line_id, 5_000, kind=UseKind.CASH_DRAWDOWN)
    assert result.status_code == 201
    assert (result.body["product_code"], result.body["fee_fen"]) == ("CASH1", 15)  # 0.3%
    over = purchase(database, caches, line_id, 5_001, kind=UseKind.CASH_DRAWDOWN)
    assert over.body["limit_path"] == "total/cash"
    with database.engine.begin() as conn:
        assert fetch_line_balances(conn, line_id)[AccountType.FEE_UNBILLED] == 15
        check_books(conn, [line_id])


def test_partial_then_full_refund_restores_the_limit_and_reverses_commission(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    use_id = purchase(database, caches, line_id, 10_000).body["id"]
    with database.engine.begin() as conn:
        partial = refund_purchase(
            conn, caches, line_id=line_id, purchase_id=use_id, amount_fen=3_333, as_of=None
        )
        assert partial.principal_fen == 3_333
        full = refund_purchase(
            conn, caches, line_id=line_id, purchase_id=use_id, amount_fen=None, as_of=None
        )
        assert full.amount_fen == 6_667
        assert fetch_account_balance(conn, "partner:app:channel_commission_payable") == 0
        assert not any(fetch_line_balances(conn, line_id).values())
        check_books(conn, [line_id])
        with pytest.raises(ConflictError) as caught:
            refund_purchase(
                conn, caches, line_id=line_id, purchase_id=use_id, amount_fen=1, as_of=None
            )
        assert caught.value.code == "refund_exceeds_purchase"


def test_refund_after_repayment_becomes_customer_credit(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    use_id = purchase(database, caches, line_id, 10_000).body["id"]
    with database.engine.begin() as conn:
        repay(conn, caches, line_id=line_id, amount_fen=6_000, currency="CNY", as_of=None)
        set_business_date(conn, date(2025, 3, 2))
        refund = refund_purchase(
            conn,
            caches,
            line_id=line_id,
            purchase_id=use_id,
            amount_fen=None,
            as_of=date(2025, 3, 2),
        )
        assert (refund.principal_fen, refund.customer_credit_fen) == (4_000, 6_000)
        balances = fetch_line_balances(conn, line_id)
        assert balances[AccountType.CUSTOMER_CREDIT] == 6_000
        assert balances[AccountType.PRINCIPAL_UNBILLED] == 0
        check_books(conn, [line_id])


def test_concurrent_threads_on_either_database_spend_exactly_what_is_left(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    assert purchase(database, caches, line_id, 79_500, channel_id="pos").status_code == 201

    def spend(_: int) -> StoredResponse:
        return purchase(database, caches, line_id, 100, channel_id="pos")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(spend, range(12)))
    assert sorted(r.status_code for r in results) == [201] * 5 + [409] * 7
    with database.engine.begin() as conn:
        check_books(conn, [line_id])
