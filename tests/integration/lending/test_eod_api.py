"""Bills, installment plans, delinquency and the portfolio over HTTP, and the bureau
file, on both databases."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from node_api.auth.keys import Role
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.bureau import COLUMNS, write_bureau_file
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from tests.integration.lending.eod_helpers import buy, eod_product_data, open_eod_line, pay
from tests.integration.lending.test_api import Api

OPENED = date(2025, 3, 1)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


@pytest.fixture
def lines(database: Database, caches: LendingCaches) -> list[int]:
    """Line 1 pays every bill in full; line 2 buys and never pays."""
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        first = open_eod_line(conn, caches, OPENED, customer_ref="cust-a")
        second = open_eod_line(
            conn, caches, OPENED, customer_ref="cust-b",
            data=eod_product_data("BILL2", delinquency={"charge_off_days": 100}),
        )  # fmt: skip
    buy(database, caches, first, 20_000)
    buy(database, caches, second, 40_000)
    run_eod_through(database, date(2025, 3, 9))
    pay(database, caches, first, 20_000)
    run_eod_through(database, date(2025, 4, 5))
    return [first, second]


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app) as client:
        yield Api(client, database)


def test_bills_and_their_lines_are_served_newest_first(api: Api, lines: list[int]) -> None:
    listed = api.get(f"/v1/credit-lines/{lines[1]}/bills")
    assert listed.status_code == 200, listed.text
    bills = listed.json()["bills"]
    assert [bill["bill_date"] for bill in bills] == ["2025-04-05", "2025-03-05"]
    assert bills[1]["outcome"]["moved_to_past_due_fen"] == 5_000
    detail = api.get(f"/v1/credit-lines/{lines[1]}/bills/{bills[1]['id']}").json()
    assert [(line["kind"], line["amount_fen"]) for line in detail["lines"]] == [
        ("purchase", 40_000)
    ]
    assert {charge["kind"] for charge in detail["charges"]} == {"past_due", "late_fee", "penalty"}
    missing = api.get(f"/v1/credit-lines/{lines[0]}/bills/{bills[1]['id']}")
    assert missing.status_code == 404 and missing.json()["field"] == "bill_id"


def test_delinquency_and_portfolio_summary(api: Api, lines: list[int]) -> None:
    status = api.get(f"/v1/credit-lines/{lines[1]}/delinquency").json()
    # Due 25 March, 5 April is 11 days past due.
    assert (status["days_past_due"], status["bucket"], status["revolving"]) == (11, "M1", True)
    summary = api.get("/v1/portfolio/summary").json()
    by_bucket = {item["bucket"]: item for item in summary["buckets"]}
    assert (
        by_bucket["M1"]["lines"] == 1
        and by_bucket["M1"]["balance_fen"] == status["outstanding_fen"]
    )
    assert summary["npl_ratio_bps"] == 0 and summary["total_fen"] == status["outstanding_fen"]
    assert api.get("/v1/portfolio/summary", role=Role.LENDER_APP).status_code == 403


def test_plans_are_made_quoted_and_read_over_http(
    api: Api, database: Database, caches: LendingCaches, lines: list[int]
) -> None:
    purchase_id = buy(database, caches, lines[0], 90_000)
    body = {"source": "purchase", "source_id": purchase_id, "tenor_months": 3}
    made = api.post(f"/v1/credit-lines/{lines[0]}/installment-plans", body, key="plan-1")
    assert made.status_code == 201, made.text
    again = api.post(f"/v1/credit-lines/{lines[0]}/installment-plans", body, key="plan-1")
    assert again.json() == made.json()
    plan_id = made.json()["id"]
    quote = api.get(
        f"/v1/credit-lines/{lines[0]}/installment-plans/{plan_id}/quote",
        params={"kind": "cancellation"},
    ).json()
    assert (quote["principal_fen"], quote["total_fen"]) == (90_000, 90_000)
    listed = api.get(f"/v1/credit-lines/{lines[0]}/installment-plans").json()
    assert [plan["id"] for plan in listed["plans"]] == [plan_id]
    cancelled = api.post(f"/v1/credit-lines/{lines[0]}/installment-plans/{plan_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    twice = api.post(f"/v1/credit-lines/{lines[0]}/installment-plans/{plan_id}/cancel")
    assert twice.status_code == 409


def test_bureau_file_has_one_merged_record_per_line(
    database: Database, caches: LendingCaches, lines: list[int]
) -> None:
    buy(database, caches, lines[0], 1_000)
    buy(database, caches, lines[0], 2_000)
    run_eod_through(database, date(2025, 5, 5))
    out = io.StringIO()
    with database.engine.connect() as conn:
        summary = write_bureau_file(conn, "2025-05", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == COLUMNS and summary.records == len(rows) == 2
    paying, late = rows
    # Two micro-purchases, one record: the May bill of 3,000.
    assert (paying["account_id"], paying["statement_balance_fen"]) == (str(lines[0]), "3000")
    assert paying["payment_history_24"] == "*" * 21 + "NNN"
    assert (paying["account_status"], paying["days_past_due"]) == ("1", "0")
    # Due 25 March, never paid: 11 days past due in April (M1), 41 in May (M2).
    assert late["payment_history_24"] == "*" * 21 + "N12"
    assert (late["account_status"], late["days_past_due"]) == ("2", "41")
    assert int(late["balance_fen"]) > 40_000 and late["customer_ref"] == "cust-b"
    # The PBOC account-record fields. The payer: normal (1), its one payment of 20,000 on
    # 10 March, used limit at the March, April and May cuts 20,000, 0 and 3,000: a mean
    # of 23,000 / 3 = 7,666 (rounded down).
    assert (paying["five_tier_class"], paying["overdue_periods"]) == ("1", "0")
    assert (paying["last_payment_date"], paying["last_payment_fen"]) == ("2025-03-10", "20000")
    assert paying["average_used_limit_6m_fen"] == "7666" and paying["account_type"] == "R1"
    # The late line: special mention (41 days, under 91), 2 periods past due, never paid.
    # Its principal past due on 31 May: the March bill moved 5,000 of principal on 25
    # March (67 days: 61-90). The April bill's minimum was 3,500 (10% of 35,000) + 720 of
    # interest (500 retroactive + 11 days × 20) + what was past due at its cut. When the
    # due step ran on 25 April, the penalty (2.5 a day on 5,000) had grown from 27.5 → 28
    # at the cut (11 days) to 75 (30 days, through 24 April), so 4,220 − 47 = 4,173
    # moved: interest 720 first, then 3,453 of principal (36 days: 31-60).
    assert (late["five_tier_class"], late["overdue_periods"]) == ("2", "2")
    assert (late["last_payment_date"], late["last_payment_fen"]) == ("", "0")
    assert late["overdue_principal_31_60_fen"] == "3453"
    assert late["overdue_principal_61_90_fen"] == "5000"
    assert late["overdue_principal_91_180_fen"] == late["overdue_principal_180_plus_fen"] == "0"
