"""The console's read endpoints on SQLite and PostgreSQL: the review queue (paged by cursor,
admins only), decisions per hour, end-of-day runs, the outbox's age, a partner's cash flows
and funded principal (its own only, void cycles left out), the session and the audit job
route's refusals; and `/console/` serving the build or saying it is missing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.http.console import install_console
from node_api.http.routes.console_session import suggest_rpc_url
from node_api.kernel.chain import EntryKind
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.lending.eod.summary import EodSummary, StepSummary
from node_api.lending.eod.tables import (
    eod_batch_table,
    eod_run_table,
    eod_step_table,
    line_delinquency_table,
)
from node_api.runtime.background import observe_eod
from settlement.tables import cycle_table, entry_table, position_table
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    Api,
    application_body,
    setup_books,
)

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
BANK, OTHER = 2, 3


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    setup_books(database)
    with database.session() as session:
        keys = {
            role.value: create_api_key(session, role, pepper=PEPPER)
            for role in (Role.LENDER_APP, Role.LENDER_ADMIN, Role.AUDITOR)
        }
        keys["app"], keys["admin"] = keys["lender_app"], keys["lender_admin"]
        keys["bank"] = create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=BANK)
    chain = ChainContext(rpc_url="http://127.0.0.1:8545", chain_id=31337)
    app = create_app(Settings(data_dir=tmp_path), database=database, chain=chain)
    with TestClient(app) as client:
        yield Api(client, keys)


def test_the_review_queue_pages_oldest_first_for_admins_only(api: Api) -> None:
    waiting = [api.apply(application_body(profile=BORDERLINE_PROFILE)).json() for _ in range(3)]
    assert [item["decision"] for item in waiting] == ["review"] * 3
    assert api.apply(application_body(profile=BAD_PROFILE)).json()["decision"] == "declined"
    assert api.apply(application_body()).json()["decision"] == "approved"

    first = api.get("/v1/console/review-queue?limit=2").json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next_after"]
    second = api.get(f"/v1/console/review-queue?limit=2&after={first['next_after']}").json()
    assert second["next_after"] is None
    listed = [item["application_id"] for item in first["items"] + second["items"]]
    assert listed == [item["application_id"] for item in waiting]
    row = first["items"][0]
    assert row["product_code"] == "PAY1" and row["limit_total_fen"] > 0
    assert "name" not in row and "phone" not in row and "id_number" not in row

    assert api.review(listed[0], "approve", "INCOME_VERIFIED").status_code == 200
    assert api.get("/v1/console/review-queue").json()["total"] == 2

    assert api.get("/v1/console/review-queue", role="app").status_code == 403
    bad = api.get("/v1/console/review-queue?after=not-a-cursor")
    assert bad.status_code == 422 and bad.json()["field"] == "after"


def test_decisions_per_hour_count_each_automatic_decision_once(api: Api) -> None:
    for profile in (BORDERLINE_PROFILE, BAD_PROFILE, BAD_PROFILE, None):
        api.apply(application_body(profile=profile))
    hours = api.get("/v1/console/decisions-per-hour?hours=2", role="auditor").json()
    totals = {key: sum(row[key] for row in hours) for key in ("approved", "declined", "review")}
    assert totals == {"approved": 1, "declined": 2, "review": 1}
    assert all(len(row["hour"]) == 16 and row["hour"].endswith(":00") for row in hours)
    assert api.get("/v1/console/decisions-per-hour?hours=0").status_code == 422


def test_eod_runs_sum_their_batches_per_step_newest_first(api: Api, database: Database) -> None:
    day_one, day_two = date(2025, 6, 1), date(2025, 6, 2)
    with database.engine.begin() as conn:
        conn.execute(
            insert(eod_run_table),
            [{"as_of": day_one, "status": "done"}, {"as_of": day_two, "status": "running"}],
        )
        conn.execute(
            insert(eod_step_table),
            [
                {"as_of": day_one, "step": "accrue", "status": "done"},
                {"as_of": day_one, "step": "due", "status": "done"},
                {"as_of": day_two, "step": "due", "status": "running"},
            ],
        )
        batch = {"step": "accrue", "last_line_id": 9, "lines": 4, "postings": 3}
        conn.execute(
            insert(eod_batch_table),
            [
                {**batch, "as_of": day_one, "batch_no": 1, "amount_fen": 120},
                {**batch, "as_of": day_one, "batch_no": 2, "amount_fen": 5},
            ],
        )
    runs = api.get("/v1/console/eod-runs?limit=5").json()
    assert [run["as_of"] for run in runs] == ["2025-06-02", "2025-06-01"]
    steps = {step["step"]: step for step in runs[1]["steps"]}
    assert [step["step"] for step in runs[1]["steps"]] == ["due", "accrue"]  # the runner's order
    assert steps["accrue"] == {
        "step": "accrue",
        "status": "done",
        "batches": 2,
        "lines": 8,
        "postings": 6,
        "amount_fen": 125,
    }
    assert steps["due"]["batches"] == 0
    assert api.get("/v1/console/eod-runs", role="bank").status_code == 403


def test_outbox_age_names_the_oldest_waiting_row_per_kind(api: Api, database: Database) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        ("a-1", "agreement", "pending", now - timedelta(seconds=600)),
        ("a-2", "agreement", "sent", now - timedelta(seconds=30)),
        ("a-3", "agreement", "confirmed", now - timedelta(days=2)),
        ("c-1", "cycle_propose", "parked", now - timedelta(days=1)),
    ]
    with database.engine.begin() as conn:
        conn.execute(
            insert(OUTBOX_TABLE),
            [
                {
                    "business_key": key,
                    "kind": kind,
                    "payload": {},
                    "status": status,
                    "attempts": 0,
                    "created_at": created,
                    "updated_at": created,
                }
                for key, kind, status, created in rows
            ],
        )
    ages = api.get("/v1/console/outbox-age", role="auditor").json()
    assert [(age["kind"], age["waiting"]) for age in ages] == [("agreement", 2)]
    assert 600 <= ages[0]["oldest_age_s"] < 700


def _cycle(
    conn: Any, cycle_id: int, status: str, entries: list[tuple[int, EntryKind, int]]
) -> None:
    day = date(cycle_id // 10_000 % 10_000, cycle_id // 100 % 100, cycle_id % 100)
    conn.execute(
        insert(cycle_table).values(
            cycle_id=cycle_id,
            cycle_date=day,
            status=status,
            entries_root="0x" + "ab" * 32,
            entry_count=len(entries),
            event_count=len(entries),
            partner_count=2,
            total_due_fen=0,
            closed_at=datetime(2025, 7, 1),
        )
    )
    conn.execute(
        insert(entry_table),
        [
            {
                "cycle_id": cycle_id,
                "entry_id": number,
                "partner_id": partner,
                "kind": int(kind),
                "amount_fen": amount,
            }
            for number, (partner, kind, amount) in enumerate(entries, start=1)
        ],
    )
    for partner in sorted({partner for partner, _kind, _amount in entries}):
        net = sum(amount for p, _kind, amount in entries if p == partner)
        count = sum(1 for p, _kind, _amount in entries if p == partner)
        conn.execute(
            insert(position_table).values(
                cycle_id=cycle_id, partner_id=partner, net_position_fen=net, entry_count=count
            )
        )


def test_a_partner_sees_its_own_flows_and_funded_principal_without_void_cycles(
    api: Api, database: Database
) -> None:
    funded, repaid, share = (
        EntryKind.PRINCIPAL_FUNDED,
        EntryKind.PRINCIPAL_REPAID,
        EntryKind.INTEREST_SHARE,
    )
    with database.engine.begin() as conn:
        _cycle(conn, 20250630, "proposed", [(BANK, funded, -10_000), (OTHER, funded, 10_000)])
        _cycle(
            conn,
            20250701,
            "proposed",
            [
                (BANK, repaid, 4_000),
                (BANK, share, 55),
                (BANK, funded, -1_000),
                (OTHER, repaid, -4_055),
            ],
        )
        _cycle(conn, 20250702, "defaulted", [(BANK, funded, -99_999), (OTHER, funded, 99_999)])
    flows = api.get("/v1/partner/cash-flows", role="bank").json()
    assert [flow["cycle_id"] for flow in flows] == [20250630, 20250701]
    assert flows[1]["by_kind_fen"] == {
        "principal_repaid": 4_000,
        "interest_share": 55,
        "principal_funded": -1_000,
    }
    assert flows[1]["net_fen"] == 3_055
    latest = api.get("/v1/partner/cash-flows?limit=1", role="bank").json()
    assert [flow["cycle_id"] for flow in latest] == [20250701]

    months = api.get("/v1/partner/funded-principal", role="bank").json()
    assert months == [
        {"month": "2025-06", "funded_fen": 10_000, "repaid_fen": 0, "outstanding_fen": 10_000},
        {"month": "2025-07", "funded_fen": 1_000, "repaid_fen": 4_000, "outstanding_fen": 7_000},
    ]
    assert api.get("/v1/partner/cash-flows").status_code == 403  # an admin key: not a partner

    first = api.get("/v1/partner/cycle-page?limit=2", role="bank").json()
    assert [item["cycle_id"] for item in first["items"]] == [20250702, 20250701]
    assert first["next_before"] == 20250701
    assert first["items"][0]["books_state"] == "defaulted"
    assert first["items"][1]["net_position_fen"] == 3_055
    assert first["items"][1]["chain_state"] is None  # the indexer has not seen it
    rest = api.get("/v1/partner/cycle-page?limit=2&before=20250701", role="bank").json()
    assert [item["cycle_id"] for item in rest["items"]] == [20250630]
    assert rest["next_before"] is None


def test_the_session_names_the_role_and_suggests_only_a_loopback_rpc(api: Api) -> None:
    session = api.get("/v1/console/session", role="bank").json()
    assert session["role"] == "partner" and session["partner_id"] == BANK
    assert session["chain_id"] == 31337
    assert session["rpc_url_suggested"] == "http://127.0.0.1:8545"
    assert api.client.get("/v1/console/session").status_code == 401
    assert suggest_rpc_url("https://mainnet.example.com/v3/secret-token") is None
    assert suggest_rpc_url("http://user:pw@127.0.0.1:8545") is None
    assert suggest_rpc_url("http://localhost:8545?key=1") is None
    assert suggest_rpc_url(None) is None


def test_an_audit_needs_a_deployed_chain_an_auditor_and_an_idempotency_key(api: Api) -> None:
    started = api.client.post("/v1/console/audits", headers=api.headers("auditor"))
    assert started.status_code == 409 and started.json()["field"] == "chain"
    assert api.client.post("/v1/console/audits", headers=api.headers("admin")).status_code == 403
    assert api.get("/v1/console/audits/latest", role="auditor").status_code == 404
    assert api.get("/v1/console/audits/not-an-id", role="auditor").status_code == 422


def test_the_console_is_served_from_its_build_or_says_how_to_build_it(tmp_path: Path) -> None:
    missing = FastAPI()
    install_console(missing, tmp_path / "absent")
    with TestClient(missing) as client:
        page = client.get("/console/")
        assert page.status_code == 503 and "make setup" in page.text
        assert client.get("/", follow_redirects=False).headers["location"] == "/console/"

    build = tmp_path / "build"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text("<!doctype html><title>console</title>")
    (build / "assets" / "app.js").write_text("console.log(1)")
    built = FastAPI()
    install_console(built, build)
    with TestClient(built) as client:
        assert "<title>console</title>" in client.get("/console/").text
        assert client.get("/console/assets/app.js").text == "console.log(1)"
        assert client.get("/console/assets/absent.js").status_code == 404


def test_the_portfolio_sums_buckets_like_the_summary_and_splits_vintages_by_bucket(
    api: Api, database: Database
) -> None:
    lines = [int(api.apply(application_body()).json()["credit_line_id"]) for _ in range(2)]
    for line_id, amount_fen in zip(lines, (30_000, 10_001), strict=True):
        body = {
            "merchant_id": "m-1",
            "channel_id": "app",
            "amount_fen": amount_fen,
            "currency": "CNY",
        }
        answer = api.client.post(
            f"/v1/credit-lines/{line_id}/purchases", json=body, headers=api.headers("app")
        )
        assert answer.status_code == 201, answer.text
    customer = api.get(f"/v1/credit-lines/{lines[1]}").json()["customer_ref"]
    with database.engine.begin() as conn:
        conn.execute(
            insert(line_delinquency_table).values(
                credit_line_id=lines[1],
                as_of=date(2025, 6, 30),
                revolving=True,
                days_past_due=75,
                bucket="M3",
                customer_id=customer,
            )
        )
    portfolio = api.get("/v1/console/portfolio").json()
    summary = api.get("/v1/portfolio/summary").json()
    assert portfolio["buckets"] == summary["buckets"]  # the same figures, in one SQL pass
    for key in ("total_fen", "non_performing_fen", "npl_ratio_bps", "written_off_fen"):
        assert portfolio[key] == summary[key]
    assert portfolio["total_fen"] == 40_001
    assert portfolio["vintages"] == [
        {
            "vintage": "2025-06",
            "lines": 2,
            "balance_fen": 40_001,
            "m1_plus_fen": 10_001,
            "m3_plus_fen": 10_001,
            "m1_plus_bps": 2_500,  # 10,001 / 40,001 = 0.250018...: 2,500 bps (half-even)
            "m3_plus_bps": 2_500,
        }
    ]
    assert api.get("/v1/console/portfolio", role="auditor").status_code == 403

    # The bank co-funds every PAY1 line (70 %): its view of the same lines, by vintage.
    assert api.get("/v1/partner/vintages", role="bank").json() == []  # not registered yet
    partner = {
        "ref": "bank-a",
        "role": "funder",
        "payout_address": "0x" + "11" * 20,
        "display_name": "Bank A",
        "partner_id": BANK,
    }
    answer = api.client.post("/v1/partners", json=partner, headers=api.headers("admin"))
    assert answer.status_code == 201, answer.text
    assert api.get("/v1/partner/vintages", role="bank").json() == [
        {
            "vintage": "2025-06",
            "lines": 2,
            "balance_fen": 40_001,
            "m1_plus_bps": 2_500,
            "m3_plus_bps": 2_500,
        }
    ]


def test_eod_step_timings_are_the_nodes_own_measurements(api: Api) -> None:
    def timing() -> dict[str, Any]:
        rows = api.get("/v1/console/eod-step-timings", role="auditor").json()
        return {row["step"]: row for row in rows}.get("console_probe", {"dates": 0, "total_s": 0})

    before = timing()
    step = StepSummary("console_probe", 10, 1, 10, 500, 0.25)
    for elapsed_s in (0.25, 0.75):
        observe_eod(
            EodSummary(
                date(2025, 6, 30),
                (replace(step, elapsed_s=elapsed_s),),
                elapsed_s,
                already_done=False,
            )
        )
    after = timing()
    assert after["dates"] - before["dates"] == 2
    assert after["total_s"] - before["total_s"] == pytest.approx(1.0)
    assert after["mean_s"] == pytest.approx(after["total_s"] / after["dates"])
    assert api.get("/v1/console/eod-step-timings", role="bank").status_code == 403
