"""The lending API over HTTP on both databases: idempotency replay and conflict, and bad
input that changes nothing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.idempotency import idempotency_table
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.ledger.schema import posting_table
from node_api.lending.eod.checkpoint import fetch_unfinished_run
from node_api.lending.eod.scheduler import EodSchedule, get_calendar_date
from node_api.lending.purchase_tables import purchase_table
from node_api.lending.repayments import repayment_table
from tests.integration.lending.helpers import OPENED_ON, cash_product_data, product_data, register

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
_keys = itertools.count()

LINE = {
    "customer_ref": "cust-42",
    "as_of": "2025-03-01",
    "total_limit_fen": 100_000,
    "group_limits": {"purchase": 80_000, "cash": 10_000},
    "products": [
        {"product_code": "REV1", "version": 1, "limit_fen": 80_000},
        {"product_code": "CASH1", "version": 1, "limit_fen": 10_000},
    ],
}
PURCHASE = {"merchant_id": "m-1", "channel_id": "app", "amount_fen": 1_000, "currency": "CNY"}


class Api:
    """A test client with an admin, an app and an auditor key."""

    def __init__(self, client: TestClient, database: Database) -> None:
        self.client = client
        self.database = database
        with database.session() as session:
            self.tokens = {
                role: create_api_key(session, role, pepper=PEPPER)
                for role in (Role.LENDER_ADMIN, Role.LENDER_APP, Role.AUDITOR)
            }

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        role: Role = Role.LENDER_APP,
        key: str | None = "new",
        **kwargs: Any,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        if key is not None:
            headers["Idempotency-Key"] = f"k-{next(_keys)}" if key == "new" else key
        headers.update(kwargs.pop("headers", {}))
        if body is None:
            return self.client.post(path, headers=headers, **kwargs)
        return self.client.post(path, json=body, headers=headers, **kwargs)

    def get(self, path: str, role: Role = Role.LENDER_ADMIN, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.get(path, headers=headers, **kwargs)

    def counts(self) -> tuple[int, ...]:
        with self.database.engine.connect() as conn:
            return tuple(
                conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (posting_table, purchase_table, repayment_table, idempotency_table)
            )


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        register(conn, product_data())
        register(conn, cash_product_data())
    app = create_app(Settings(data_dir=tmp_path, max_body_bytes=4096), database=database)
    with TestClient(app) as client:
        yield Api(client, database)


@pytest.fixture
def line_id(api: Api) -> int:
    response = api.post("/v1/credit-lines", LINE, role=Role.LENDER_ADMIN)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_open_line_replays_and_refuses_a_changed_body(api: Api) -> None:
    first = api.post("/v1/credit-lines", LINE, role=Role.LENDER_ADMIN, key="open-1")
    again = api.post("/v1/credit-lines", LINE, role=Role.LENDER_ADMIN, key="open-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    changed = api.post(
        "/v1/credit-lines", {**LINE, "total_limit_fen": 1}, role=Role.LENDER_ADMIN, key="open-1"
    )
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_key_reused"
    assert changed.json()["field"] == "Idempotency-Key"


def test_purchase_replay_returns_the_first_result_and_posts_nothing(api: Api, line_id: int) -> None:
    path = f"/v1/credit-lines/{line_id}/purchases"
    first = api.post(path, PURCHASE, key="buy-1")
    assert first.status_code == 201, first.text
    before = api.counts()
    replay = api.post(path, PURCHASE, key="buy-1")
    assert replay.status_code == 201 and replay.json() == first.json()
    assert api.counts() == before
    conflict = api.post(path, {**PURCHASE, "amount_fen": 1_001}, key="buy-1")
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_key_reused"
    assert api.counts() == before


def test_declined_purchase_is_a_409_problem_replayed_the_same(api: Api, line_id: int) -> None:
    path = f"/v1/credit-lines/{line_id}/purchases"
    declined = api.post(path, {**PURCHASE, "amount_fen": 80_001}, key="big")
    assert declined.status_code == 409
    assert declined.headers["content-type"] == "application/problem+json"
    body = declined.json()
    assert (body["code"], body["limit_path"], body["field"]) == (
        "over_limit",
        "total/purchase",
        "amount_fen",
    )
    assert api.post(path, {**PURCHASE, "amount_fen": 80_001}, key="big").json() == body


@pytest.mark.parametrize(
    "change, status, field",
    [
        ({"amount_fen": 0}, 422, "amount_fen"),
        ({"amount_fen": -5}, 422, "amount_fen"),
        ({"amount_fen": 10.5}, 422, "amount_fen"),
        ({"amount_fen": "100"}, 422, "amount_fen"),
        ({"currency": "USD"}, 422, "currency"),
        ({"currency": "cny"}, 422, "currency"),
        ({"channel_id": "kiosk"}, 409, "channel_id"),
        ({"merchant_id": None}, 422, "merchant_id"),
        ({"extra": 1}, 422, "extra"),
    ],
)
def test_bad_purchase_input_names_the_field_and_changes_nothing(
    api: Api, line_id: int, change: dict[str, Any], status: int, field: str
) -> None:
    before = api.counts()
    response = api.post(f"/v1/credit-lines/{line_id}/purchases", {**PURCHASE, **change})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    stored = 1 if status == 409 else 0
    assert api.counts() == (*before[:3], before[3] + stored)


def test_unknown_line_missing_key_malformed_json_and_oversized_body_change_nothing(
    api: Api, line_id: int
) -> None:
    before = api.counts()
    unknown = api.post("/v1/credit-lines/999999/purchases", PURCHASE)
    assert (unknown.status_code, unknown.json()["field"]) == (404, "credit_line_id")
    missing = api.post(f"/v1/credit-lines/{line_id}/purchases", PURCHASE, key=None)
    assert (missing.status_code, missing.json()["field"]) == (400, "Idempotency-Key")
    malformed = api.post(
        f"/v1/credit-lines/{line_id}/purchases",
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    huge = api.post(
        f"/v1/credit-lines/{line_id}/repayments",
        {"amount_fen": 1, "currency": "CNY", "payment_ref": "x", "pad": "y" * 5000},
    )
    assert huge.status_code == 413
    assert api.counts() == before


def test_input_error_releases_the_key_so_the_fixed_request_goes_through(
    api: Api, line_id: int
) -> None:
    path = f"/v1/credit-lines/{line_id}/purchases"
    assert api.post(path, {**PURCHASE, "currency": "USD"}, key="fix-me").status_code == 422
    assert api.post(path, PURCHASE, key="fix-me").status_code == 201


def test_frozen_line_declines_and_unfrozen_line_accepts(api: Api, line_id: int) -> None:
    assert api.post(f"/v1/credit-lines/{line_id}/freeze", role=Role.LENDER_ADMIN).status_code == 200
    before = api.counts()
    frozen = api.post(f"/v1/credit-lines/{line_id}/purchases", PURCHASE)
    assert (frozen.status_code, frozen.json()["code"]) == (409, "line_frozen")
    assert api.counts()[:3] == before[:3]
    api.post(f"/v1/credit-lines/{line_id}/unfreeze", role=Role.LENDER_ADMIN)
    assert api.post(f"/v1/credit-lines/{line_id}/purchases", PURCHASE).status_code == 201


def test_refund_repay_reverse_and_trial_balance_over_http(api: Api, line_id: int) -> None:
    use = api.post(f"/v1/credit-lines/{line_id}/purchases", PURCHASE).json()
    refund = api.post(
        f"/v1/credit-lines/{line_id}/purchases/{use['id']}/refund", {"amount_fen": 400}
    )
    assert refund.status_code == 201 and refund.json()["principal_fen"] == 400
    drawdown = api.post(
        f"/v1/credit-lines/{line_id}/drawdowns",
        {"channel_id": "app", "amount_fen": 2_000, "currency": "CNY"},
    )
    assert drawdown.json()["fee_fen"] == 6  # 0.3% of 2,000
    paid = api.post(
        f"/v1/credit-lines/{line_id}/repayments",
        {"amount_fen": 3_000, "currency": "CNY", "payment_ref": "bank-77"},
    )
    # 3,000 paid on 600 + 2,000 + 6 owed.
    assert paid.status_code == 201 and paid.json()["customer_credit_fen"] == 394
    reverse = api.post(
        f"/v1/credit-lines/{line_id}/repayments/{paid.json()['repayment_id']}/reverse"
    )
    assert reverse.status_code == 200 and reverse.json()["status"] == "reversed"
    trial = api.get("/v1/ledger/trial-balance", role=Role.AUDITOR).json()
    assert trial["balanced"] and trial["total_debit_fen"] > 0
    assert api.get("/v1/ledger/trial-balance", role=Role.LENDER_APP).status_code == 403
    line = api.get(f"/v1/credit-lines/{line_id}").json()
    root = next(node for node in line["limits"] if node["path"] == "total")
    assert root["used_fen"] == 600 + 2_000
    balances = api.get(f"/v1/ledger/credit-lines/{line_id}/balances", role=Role.AUDITOR).json()
    assert balances["balances_fen"]["principal_unbilled"] == 2_600


def test_business_date_is_set_once_and_then_dates_requests(api: Api, line_id: int) -> None:
    set_date = api.post("/v1/ledger/business-date", {"as_of": "2025-03-12"}, role=Role.LENDER_ADMIN)
    assert set_date.status_code == 200
    path = f"/v1/credit-lines/{line_id}/purchases"
    use = api.post(path, PURCHASE).json()
    assert use["as_of"] == "2025-03-12"
    from node_api.http.routes.purchase_lane import AuthorizationFastLane

    served = AuthorizationFastLane.served  # the caller is known now: the lane serves it
    # The default window is 0 days: a day before the business date is already closed.
    closed = api.post(path, {**PURCHASE, "as_of": "2025-03-11"})
    assert (closed.status_code, closed.json()["field"]) == (422, "as_of")
    assert closed.json()["code"] == "closed_day"
    ahead = api.post(path, {**PURCHASE, "as_of": "2025-03-13"})
    assert (ahead.status_code, ahead.json()["field"]) == (422, "as_of")
    assert ahead.json()["code"] == "as_of_after_business_date"
    assert AuthorizationFastLane.served == served + 2


def test_RevertWhen_the_business_date_is_moved_to_9999_12_31(api: Api) -> None:
    moved = api.post("/v1/ledger/business-date", {"as_of": "9999-12-31"}, role=Role.LENDER_ADMIN)
    problem = moved.json()
    assert (moved.status_code, problem["field"]) == (422, "as_of")
    assert problem["code"] == "business_date_too_far_ahead"
    assert "9999-12-31" in problem["detail"]
    assert moved.headers["content-type"].startswith("application/problem+json")
    assert api.get("/v1/ledger/business-date").json() == {"as_of": OPENED_ON.isoformat()}
    with api.database.engine.connect() as conn:
        assert fetch_unfinished_run(conn) is None  # no end-of-day run was opened either


def test_the_business_date_moves_at_most_three_days_past_the_servers_date(api: Api) -> None:
    # CREDITNET_BUSINESS_DATE_MAX_AHEAD_DAYS defaults to 3: today + 4 is refused, today + 3
    # is taken, and every day skipped since 1 March is left open for end of day.
    today = get_calendar_date(datetime.now(UTC), EodSchedule())
    path = "/v1/ledger/business-date"
    late = api.post(
        path, {"as_of": (today + timedelta(days=4)).isoformat()}, role=Role.LENDER_ADMIN
    )
    assert (late.status_code, late.json()["field"]) == (422, "as_of")
    assert late.json()["latest_allowed"] == (today + timedelta(days=3)).isoformat()
    moved = api.post(
        path, {"as_of": (today + timedelta(days=3)).isoformat()}, role=Role.LENDER_ADMIN
    )
    assert moved.status_code == 200
    with api.database.engine.connect() as conn:
        assert fetch_unfinished_run(conn) == OPENED_ON
    back = api.post(path, {"as_of": "2025-03-02"}, role=Role.LENDER_ADMIN)
    assert (back.status_code, back.json()["code"]) == (409, "business_date_backwards")


def test_RevertWhen_a_repayment_or_refund_is_dated_after_the_business_date(
    api: Api, line_id: int
) -> None:
    use = api.post(f"/v1/credit-lines/{line_id}/purchases", PURCHASE).json()
    ahead = (OPENED_ON + timedelta(days=1)).isoformat()
    before = api.counts()
    for path, body in [
        (f"/v1/credit-lines/{line_id}/repayments", {"amount_fen": 100, "currency": "CNY",
                                                    "as_of": ahead}),
        (f"/v1/credit-lines/{line_id}/purchases/{use['id']}/refund", {"as_of": ahead}),
        (f"/v1/credit-lines/{line_id}/drawdowns", {"channel_id": "app", "amount_fen": 100,
                                                   "currency": "CNY", "as_of": ahead}),
    ]:  # fmt: skip
        refused = api.post(path, body)
        assert (refused.status_code, refused.json()["field"]) == (422, "as_of"), path
        assert refused.json()["code"] == "as_of_after_business_date"
    assert api.counts()[:3] == before[:3]  # no posting, use or repayment


def test_RevertWhen_a_drawdown_costs_more_than_the_cap(api: Api, line_id: int) -> None:
    # CASH1 at 15% a year with a 0.3% fee is within 24%; the same product with a 1.5%
    # fee is not: 5,000 fen drawn on 1 March (bill day 5) is due 25 March (24 days):
    # fee 75, interest 5,000 × 15% × 24 / 365 = 49.3 → 49, so 5,124 after 24 days:
    # 1 + 0.8 r = 1.0248, r = 3.1% a month, effective 1.031^12 − 1 = 44.2461% → 4,425
    # bps rounded up (nominal 37.20%): refused, nothing booked.
    with api.database.engine.begin() as conn:
        data = cash_product_data("CASH2")
        data["fees"] = {"origination_fee_bps": 150}
        register(conn, data)
    line = api.post(
        "/v1/credit-lines",
        {**LINE, "customer_ref": "cust-cap", "group_limits": {"cash": 10_000},
         "products": [{"product_code": "CASH2", "version": 1, "limit_fen": 10_000}]},
        role=Role.LENDER_ADMIN,
    )  # fmt: skip
    assert line.status_code == 201, line.text
    before = api.counts()
    refused = api.post(
        f"/v1/credit-lines/{line.json()['id']}/drawdowns",
        {"channel_id": "app", "amount_fen": 5_000, "currency": "CNY"},
    )
    problem = refused.json()
    assert (refused.status_code, problem["code"], problem["field"]) == (
        422, "cost_cap_exceeded", "amount_fen"
    )  # fmt: skip
    assert (problem["computed_bps"], problem["annualization"]) == (4_425, "effective")
    assert api.counts()[:3] == before[:3]


def test_fast_lane_serves_known_callers_with_the_same_answers_as_the_route(
    api: Api, line_id: int
) -> None:
    from node_api.http.routes.purchase_lane import AuthorizationFastLane

    path = f"/v1/credit-lines/{line_id}/purchases"
    first = api.post(path, PURCHASE, key="lane-1")  # a cache miss: the regular route
    served = AuthorizationFastLane.served
    replay = api.post(path, PURCHASE, key="lane-1")  # the key is cached now: the lane
    assert AuthorizationFastLane.served == served + 1
    assert (replay.status_code, replay.json()) == (first.status_code, first.json())
    bad = api.post(path, {**PURCHASE, "amount_fen": 0}, key="lane-2")
    assert (bad.status_code, bad.json()["field"]) == (422, "amount_fen")
    conflict = api.post(path, {**PURCHASE, "amount_fen": 2}, key="lane-1")
    assert conflict.json()["code"] == "idempotency_key_reused"
    drawdown = api.post(
        f"/v1/credit-lines/{line_id}/drawdowns",
        {"channel_id": "app", "amount_fen": 100, "currency": "CNY"},
    )
    assert drawdown.status_code == 201 and AuthorizationFastLane.served == served + 3
    forbidden = api.post(path, PURCHASE, role=Role.AUDITOR)
    assert forbidden.status_code == 403


def test_customer_credit_is_refunded_over_http_and_never_beyond_what_is_left(
    api: Api, line_id: int
) -> None:
    # 1,000 bought, 3,000 paid: 1,000 of principal repaid, 2,000 held as credit.
    api.post(f"/v1/credit-lines/{line_id}/purchases", PURCHASE)
    paid = api.post(f"/v1/credit-lines/{line_id}/repayments", {"amount_fen": 3_000,
                                                               "currency": "CNY"})  # fmt: skip
    assert paid.json()["customer_credit_fen"] == 2_000
    path = f"/v1/credit-lines/{line_id}/credit-refunds"
    before = api.counts()
    over = api.post(path, {"amount_fen": 2_001, "currency": "CNY"})
    problem = over.json()
    assert (over.status_code, problem["code"], problem["field"]) == (
        409, "insufficient_credit", "amount_fen"
    )  # fmt: skip
    assert "2000 fen" in problem["detail"]
    missing_key = api.post(path, {"amount_fen": 100, "currency": "CNY"}, key=None)
    assert missing_key.status_code == 400
    assert api.counts()[:3] == before[:3]
    refund = api.post(path, {"amount_fen": 1_500, "currency": "CNY"}, key="credit-refund-1")
    assert refund.status_code == 201, refund.text
    body = refund.json()
    assert (body["amount_fen"], body["applied_fen"], body["customer_credit_fen"]) == (
        1_500, 0, 500
    )  # fmt: skip
    replay = api.post(path, {"amount_fen": 1_500, "currency": "CNY"}, key="credit-refund-1")
    assert replay.json() == body and replay.headers["idempotent-replayed"] == "true"
    balances = api.get(f"/v1/ledger/credit-lines/{line_id}/balances", role=Role.AUDITOR).json()
    assert balances["balances_fen"]["customer_credit"] == 500
    assert api.get("/v1/ledger/trial-balance", role=Role.AUDITOR).json()["balanced"]
