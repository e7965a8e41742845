"""A refund of a purchase already on a bill, over HTTP on both databases (issue 15):
it reduces what that purchase put on its bill (billed principal, or past-due principal
once the bill went unpaid past its due date), never the line's later unbilled
purchases, and becomes customer credit once that bill is paid.

The product is `eod_product_data`: 500 ppm a day, 50 interest-free days, bill day 5,
due 20 days later (25 March), minimum 10% with a 5,000 floor, 3 grace days.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.accounts import AccountType, node_account_code
from node_api.ledger.business_date import set_business_date
from node_api.lending.bill_tables import bill_outcome_table, bill_table
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    node_balance,
    open_eod_line,
)
from tests.integration.lending.test_api import Api

OPENED = date(2025, 3, 1)
INTEREST_INCOME = node_account_code(AccountType.INTEREST_INCOME)
PRINCIPAL = ("principal_unbilled", "principal_billed", "principal_past_due", "customer_credit")


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app) as client:
        yield Api(client, database)


@pytest.fixture
def line_id(database: Database, caches: LendingCaches) -> int:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        return open_eod_line(conn, caches, OPENED)


def _refund(api: Api, line_id: int, purchase_id: int, amount_fen: int) -> dict[str, Any]:
    refunded = api.post(
        f"/v1/credit-lines/{line_id}/purchases/{purchase_id}/refund", {"amount_fen": amount_fen}
    )
    assert refunded.status_code == 201, refunded.text
    body: dict[str, Any] = refunded.json()
    return body


def _owed(database: Database, line_id: int) -> dict[str, int]:
    found = balances(database, line_id)
    return {kind: found[kind] for kind in PRINCIPAL if kind in found}


def test_a_refund_of_a_billed_purchase_reduces_its_bill_not_the_new_purchases(
    api: Api, database: Database, caches: LendingCaches, line_id: int
) -> None:
    first = buy(database, caches, line_id, 30_000)  # 1 March, billed on 5 March
    run_eod_through(database, date(2025, 3, 9))
    buy(database, caches, line_id, 8_000)  # 10 March, after the bill: unbilled
    # 10,000 of the first purchase refunded on 10 March: its bill's 30,000 of billed
    # principal becomes 20,000; the 8,000 bought since stays unbilled.
    refunded = _refund(api, line_id, first, 10_000)
    assert (refunded["principal_fen"], refunded["customer_credit_fen"]) == (10_000, 0)
    assert _owed(database, line_id) == {"principal_unbilled": 8_000, "principal_billed": 20_000}
    # 20 March: 20,000 paid. With the refund that is 10,000 + 20,000 = 30,000 toward the
    # 30,000 bill: paid in full at its due date (25 March), so the interest-free period
    # holds and no interest is charged.
    run_eod_through(database, date(2025, 3, 19))
    paid = api.post(
        f"/v1/credit-lines/{line_id}/repayments", {"amount_fen": 20_000, "currency": "CNY"}
    )
    assert paid.status_code == 201, paid.text
    run_eod_through(database, date(2025, 3, 26))
    with database.engine.connect() as conn:
        outcome = conn.execute(
            select(bill_outcome_table.c.paid_fen, bill_outcome_table.c.paid_in_full)
            .join(bill_table, bill_table.c.id == bill_outcome_table.c.bill_id)
            .where(bill_table.c.credit_line_id == line_id)
        ).one()
    assert tuple(outcome) == (30_000, True)
    assert node_balance(database, INTEREST_INCOME) == 0
    assert _owed(database, line_id) == {"principal_unbilled": 8_000}
    # 27 March: 5,000 more of the first purchase refunded. Its bill is paid, so all of it
    # is customer credit (nothing billed or due to apply it to: the 8,000 is unbilled).
    refunded = _refund(api, line_id, first, 5_000)
    assert (refunded["principal_fen"], refunded["customer_credit_fen"]) == (0, 5_000)
    assert _owed(database, line_id) == {"principal_unbilled": 8_000, "customer_credit": 5_000}
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_a_refund_of_a_purchase_whose_bill_went_past_due_reduces_the_past_due_first(
    api: Api, database: Database, caches: LendingCaches, line_id: int
) -> None:
    first = buy(database, caches, line_id, 30_000)
    # Nothing paid by 25 March: the minimum (10% of 30,000 = 3,000, floor 5,000) moves
    # to past due on 26 March: 5,000 past due, 25,000 still billed.
    run_eod_through(database, date(2025, 3, 26))
    assert _owed(database, line_id) == {"principal_billed": 25_000, "principal_past_due": 5_000}
    buy(database, caches, line_id, 4_000)  # 27 March: unbilled
    # 6,000 refunded on 27 March: the 5,000 past due first, then 1,000 of the billed
    # 25,000 → 24,000; the 4,000 unbilled untouched.
    refunded = _refund(api, line_id, first, 6_000)
    assert (refunded["principal_fen"], refunded["customer_credit_fen"]) == (6_000, 0)
    assert _owed(database, line_id) == {"principal_unbilled": 4_000, "principal_billed": 24_000}
    with database.engine.connect() as conn:
        check_ledger(conn)
