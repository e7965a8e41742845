"""Plans paid or refunded before their installments are billed, over HTTP on both
databases (issue 15, item 4): the early-repayment terms apply to an over-payment that
prepays a plan, and a partial prepayment or a partial refund re-amortizes the
installments left over the same dates instead of ending whole installments.

The product is `eod_product_data`: bill day 5, due 20 days later, plans at 12% a year
(1% a month) by annuity, early repayment fee 1% (100 bps), 70% funded by bank-a. Every
plan here is a 90,000 fen purchase converted on 1 March into 3 months, billed on 5
March, 5 April and 5 May. The annuity at 1% a month over 3 months:
  payment = 90,000 × 0.01 / (1 − 1.01^−3) = 90,000 × 0.340022 = 30,601.99 → 30,602;
  1: interest 900.00 → 900, principal 30,602 − 900 = 29,702, balance 60,298;
  2: interest 602.98 → 603, principal 29,999, balance 30,299;
  3: the rest, principal 30,299, interest 302.99 → 303.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.accounts import AccountType, node_account_code
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from node_api.lending.installment_store import fetch_plan_unbilled_principal
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    eod_product_data,
    node_balance,
    open_eod_line,
)
from tests.integration.lending.test_api import Api

OPENED = date(2025, 3, 1)
INTEREST_INCOME = node_account_code(AccountType.INTEREST_INCOME)
FEE_INCOME = node_account_code(AccountType.FEE_INCOME)


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app) as client:
        yield Api(client, database)


@pytest.fixture
def plan(api: Api, database: Database, caches: LendingCaches) -> tuple[int, int, int]:
    """(line id, purchase id, plan id): the 90,000 fen 3-month plan, first installment
    billed on 5 March; business date 10 March."""
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED)
    purchase_id = buy(database, caches, line_id, 90_000)
    body = {"source": "purchase", "source_id": purchase_id, "tenor_months": 3}
    made = api.post(f"/v1/credit-lines/{line_id}/installment-plans", body)
    assert made.status_code == 201, made.text
    run_eod_through(database, date(2025, 3, 9))
    return line_id, purchase_id, int(made.json()["id"])


def _installments(api: Api, line_id: int, plan_id: int) -> list[tuple[int, int, str]]:
    got = api.get(f"/v1/credit-lines/{line_id}/installment-plans/{plan_id}")
    assert got.status_code == 200, got.text
    return [
        (item["principal_fen"], item["interest_fen"], item["status"])
        for item in got.json()["installments"]
    ]


def _pay(api: Api, line_id: int, amount_fen: int) -> dict[str, Any]:
    paid = api.post(
        f"/v1/credit-lines/{line_id}/repayments", {"amount_fen": amount_fen, "currency": "CNY"}
    )
    assert paid.status_code == 201, paid.text
    body: dict[str, Any] = paid.json()
    return body


def _check_books(database: Database, line_id: int) -> None:
    """The books balance and the plans schedule exactly the line's unbilled principal
    (no revolving use is left on these lines)."""
    with database.engine.connect() as conn:
        check_ledger(conn)
        planned_fen = fetch_plan_unbilled_principal(conn, [line_id]).get(line_id, 0)
    assert planned_fen == balances(database, line_id).get("principal_unbilled", 0)


def test_an_over_payment_prepays_a_plan_on_its_early_repayment_terms_and_re_amortizes(
    api: Api, database: Database, plan: tuple[int, int, int]
) -> None:
    line_id, _, plan_id = plan
    run_eod_through(database, date(2025, 3, 19))
    # 20 March: the bill (30,602) and the 60,298 the plan still holds. The waterfall
    # takes the bill; the 60,298 left prepays the plan. Prepaying p fen costs
    #   interest p × 12% × 15 days (5 → 20 March) / 365, fee 1% × p;
    # the largest p with p + charges ≤ 60,298 is 59,411:
    #   interest 59,411 × 0.12 × 15 / 365 = 292.99 → 293; fee 594.11 → 594;
    #   59,411 + 293 + 594 = 60,298 exactly (59,412 would cost 60,299).
    paid = _pay(api, line_id, 30_602 + 60_298)
    assert sorted((a["account"], a["amount_fen"]) for a in paid["allocations"]) == [
        ("fee_income", 594), ("interest_billed", 900), ("interest_income", 293),
        ("principal_billed", 29_702), ("principal_unbilled", 59_411),
    ]  # fmt: skip
    assert paid["customer_credit_fen"] == 0
    # 60,298 − 59,411 = 887 left, re-amortized over the 2 installments left at 1%:
    #   payment 887 × 0.01 / (1 − 1.01^−2) = 887 × 0.507512 = 450.16 → 450;
    #   April: interest 8.87 → 9, principal 441; May: the rest 446, interest 4.46 → 4.
    assert _installments(api, line_id, plan_id) == [
        (29_702, 900, "billed"), (441, 9, "scheduled"), (446, 4, "scheduled")
    ]  # fmt: skip
    _check_books(database, line_id)
    run_eod_through(database, date(2025, 4, 5))
    bill = api.get(f"/v1/credit-lines/{line_id}/bills").json()["bills"][0]
    assert (bill["bill_date"], bill["statement_balance_fen"]) == ("2025-04-05", 450)
    assert (bill["installment_principal_fen"], bill["installment_interest_fen"]) == (441, 9)
    # Interest: 900 (March) + 293 (early repayment) + 9 (April); fee 594.
    assert node_balance(database, INTEREST_INCOME) == -1_202
    assert node_balance(database, FEE_INCOME) == -594
    # The explicit early repayment quotes the re-amortized plan: on 6 April, 446 left,
    # interest 446 × 0.12 × 1 / 365 = 0.15 → 0, fee 4.46 → 4.
    quote = api.get(
        f"/v1/credit-lines/{line_id}/installment-plans/{plan_id}/quote",
        params={"kind": "early_repayment"},
    ).json()
    assert (quote["principal_fen"], quote["interest_fen"], quote["fee_fen"]) == (446, 0, 4)
    _check_books(database, line_id)


def test_an_over_payment_that_covers_the_whole_plan_pays_it_off_with_the_charges(
    api: Api, database: Database, plan: tuple[int, int, int]
) -> None:
    line_id, _, plan_id = plan
    run_eod_through(database, date(2025, 3, 19))
    # 20 March, prepaying all 60,298: interest 60,298 × 0.12 × 15 / 365 = 297.36 → 297
    # (under the cap, April's 603), fee 602.98 → 603; 30,602 + 60,298 + 297 + 603 = 91,800,
    # and 100 fen more stays customer credit.
    paid = _pay(api, line_id, 91_900)
    assert sorted((a["account"], a["amount_fen"]) for a in paid["allocations"]) == [
        ("fee_income", 603), ("interest_billed", 900), ("interest_income", 297),
        ("principal_billed", 29_702), ("principal_unbilled", 60_298),
    ]  # fmt: skip
    assert paid["customer_credit_fen"] == 100
    assert _installments(api, line_id, plan_id) == [
        (29_702, 900, "billed"), (29_999, 603, "paid_off"), (30_299, 303, "paid_off")
    ]  # fmt: skip
    got = api.get(f"/v1/credit-lines/{line_id}/installment-plans/{plan_id}").json()
    assert (got["status"], got["closed_on"]) == ("paid_off", "2025-03-20")
    assert balances(database, line_id) == {"customer_credit": 100}
    _check_books(database, line_id)


def test_a_bounced_prepayment_puts_the_plan_back_as_it_was(
    api: Api, database: Database, plan: tuple[int, int, int]
) -> None:
    line_id, _, plan_id = plan
    paid = _pay(api, line_id, 30_602 + 60_298)
    reversed_ = api.post(
        f"/v1/credit-lines/{line_id}/repayments/{paid['repayment_id']}/reverse", {}
    )
    assert reversed_.status_code == 200, reversed_.text
    # Everything as before the payment: the first installment billed, the others as made.
    assert _installments(api, line_id, plan_id) == [
        (29_702, 900, "billed"), (29_999, 603, "scheduled"), (30_299, 303, "scheduled")
    ]  # fmt: skip
    owed = balances(database, line_id)
    assert (owed["principal_billed"], owed["interest_billed"]) == (29_702, 900)
    assert owed["principal_unbilled"] == 60_298
    assert node_balance(database, FEE_INCOME) == 0
    _check_books(database, line_id)


def test_a_partial_refund_re_amortizes_the_plan_over_the_same_dates(
    api: Api, database: Database, plan: tuple[int, int, int]
) -> None:
    line_id, purchase_id, plan_id = plan
    _pay(api, line_id, 30_602)  # the first bill, in full
    refunded = api.post(
        f"/v1/credit-lines/{line_id}/purchases/{purchase_id}/refund", {"amount_fen": 30_000}
    )
    assert refunded.status_code == 201, refunded.text
    assert (refunded.json()["principal_fen"], refunded.json()["customer_credit_fen"]) == (30_000, 0)
    # The plan held 60,298; the refund takes 30,000 off it, no early-repayment charge.
    # 30,298 over the 2 installments left at 1%:
    #   payment 30,298 × 0.507512 = 15,376.61 → 15,377;
    #   April: interest 302.98 → 303, principal 15,074; May: the rest 15,224,
    #   interest 152.24 → 152. Both months keep an installment.
    assert _installments(api, line_id, plan_id) == [
        (29_702, 900, "billed"), (15_074, 303, "scheduled"), (15_224, 152, "scheduled")
    ]  # fmt: skip
    _check_books(database, line_id)
    run_eod_through(database, date(2025, 4, 5))
    bill = api.get(f"/v1/credit-lines/{line_id}/bills").json()["bills"][0]
    assert (bill["bill_date"], bill["statement_balance_fen"]) == ("2025-04-05", 15_377)
    assert node_balance(database, FEE_INCOME) == 0
    _check_books(database, line_id)


def test_a_refund_on_a_converted_bill_re_amortizes_its_plan(
    api: Api, database: Database, caches: LendingCaches
) -> None:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED)
    purchase_id = buy(database, caches, line_id, 60_000)
    run_eod_through(database, date(2025, 3, 9))
    bill_id = api.get(f"/v1/credit-lines/{line_id}/bills").json()["bills"][0]["id"]
    body = {"source": "bill", "source_id": bill_id, "tenor_months": 3}
    made = api.post(f"/v1/credit-lines/{line_id}/installment-plans", body)
    assert made.status_code == 201, made.text
    plan_id = made.json()["id"]
    # 60,000 over 3 months from 5 April: 20,401 = (19,801 + 600), (19,999 + 402),
    # (20,200 + 202). Refunding 20,000 of the purchase on the converted bill leaves
    # 40,000 in the plan, re-amortized over the same 3 months at 1%:
    #   payment 40,000 × 0.01 / (1 − 1.01^−3) = 40,000 × 0.340022 = 13,600.88 → 13,601;
    #   interest 400, principal 13,201; interest 267.99 → 268, principal 13,333;
    #   the rest 13,466, interest 134.66 → 135.
    refunded = api.post(
        f"/v1/credit-lines/{line_id}/purchases/{purchase_id}/refund", {"amount_fen": 20_000}
    )
    assert refunded.status_code == 201, refunded.text
    assert _installments(api, line_id, plan_id) == [
        (13_201, 400, "scheduled"), (13_333, 268, "scheduled"), (13_466, 135, "scheduled")
    ]  # fmt: skip
    _check_books(database, line_id)


def test_a_refund_leaving_fewer_fen_than_installments_shortens_the_plan(
    api: Api, database: Database, plan: tuple[int, int, int]
) -> None:
    line_id, purchase_id, plan_id = plan
    _pay(api, line_id, 30_602)  # the first bill, in full
    # The plan holds 60,298 over April and May; refunding 60,297 leaves 1 fen. Spread over
    # both it would be 0 and 1; with at least 1 fen each (the product has no minimum plan
    # amount) only 1 // 1 = 1 installment is kept, the earliest: April carries the 1 fen,
    # interest 1 × 1% = 0.01 → 0; May ends as paid off.
    refunded = api.post(
        f"/v1/credit-lines/{line_id}/purchases/{purchase_id}/refund", {"amount_fen": 60_297}
    )
    assert refunded.status_code == 201, refunded.text
    assert _installments(api, line_id, plan_id) == [
        (29_702, 900, "billed"), (1, 0, "scheduled"), (0, 0, "paid_off")
    ]  # fmt: skip
    _check_books(database, line_id)
    run_eod_through(database, date(2025, 4, 5))
    bill = api.get(f"/v1/credit-lines/{line_id}/bills").json()["bills"][0]
    assert (bill["bill_date"], bill["installment_principal_fen"]) == ("2025-04-05", 1)
    got = api.get(f"/v1/credit-lines/{line_id}/installment-plans/{plan_id}").json()
    assert got["status"] == "completed"
    _check_books(database, line_id)


def test_a_refund_keeps_the_products_minimum_in_every_installment_left(
    api: Api, database: Database, caches: LendingCaches
) -> None:
    # Minimum plan amount 3,000 over 3 months: at least ⌈3,000 / 3⌉ = 1,000 fen of
    # principal per installment after a re-amortization.
    data = eod_product_data(
        "PLANMIN",
        installment={"tenors_months": [3, 6, 12], "pricing_method": "annuity",
                     "rate_bps": 1200, "cancellation_days": 7, "min_principal_fen": 3_000},
    )  # fmt: skip
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED, data=data)
    purchase_id = buy(database, caches, line_id, 90_000)
    body = {"source": "purchase", "source_id": purchase_id, "tenor_months": 3}
    made = api.post(f"/v1/credit-lines/{line_id}/installment-plans", body)
    assert made.status_code == 201, made.text
    plan_id = int(made.json()["id"])
    run_eod_through(database, date(2025, 3, 9))
    _pay(api, line_id, 30_602)
    # 60,298 − 58,298 = 2,000 left for April and May. 2,000 // 1,000 = 2 installments,
    # but the annuity's first would carry too little: payment 2,000 × 0.507512 = 1,015.02
    # → 1,015, interest 20, principal 995 < 1,000. So one installment: April, 2,000 of
    # principal, interest 2,000 × 1% = 20; May paid off.
    refunded = api.post(
        f"/v1/credit-lines/{line_id}/purchases/{purchase_id}/refund", {"amount_fen": 58_298}
    )
    assert refunded.status_code == 201, refunded.text
    assert _installments(api, line_id, plan_id) == [
        (29_702, 900, "billed"), (2_000, 20, "scheduled"), (0, 0, "paid_off")
    ]  # fmt: skip
    _check_books(database, line_id)


def test_RevertWhen_a_conversion_would_leave_an_installment_without_principal(
    api: Api, database: Database, caches: LendingCaches
) -> None:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED)
    # 9 fen over 6 months at 1% a month: payment 9 × 0.172548 = 1.55 → 2, interest under
    # half a fen each month, so principal 2, 2, 2, 2, 1 and 0 for June: refused, though 9
    # is above the 6 fen a 6-month plan needs at the least.
    purchase_id = buy(database, caches, line_id, 9)
    body = {"source": "purchase", "source_id": purchase_id, "tenor_months": 6}
    made = api.post(f"/v1/credit-lines/{line_id}/installment-plans", body)
    assert made.status_code == 422, made.text
    problem = made.json()
    assert (problem["code"], problem["field"]) == ("plan_below_minimum", "tenor_months")
    body["tenor_months"] = 3  # 3, 3, 3
    assert api.post(f"/v1/credit-lines/{line_id}/installment-plans", body).status_code == 201
