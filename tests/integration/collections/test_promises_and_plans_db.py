"""Promises to pay (kept on repayment, broken after their date, feeding the strategy) and
hardship plans (approval by someone else, one per line per 12 months, the cost cap), on
both databases."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import pytest

from node_api.collections.cases import fetch_case, fetch_cases, refresh_cases
from node_api.collections.hardship import PlanRequest, decide_plan, request_plan
from node_api.collections.model import PlanKind
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.promises import evaluate_promises, fetch_promises, record_promise
from node_api.collections.strategy import DEFAULT_STRATEGY
from node_api.collections.strategy_store import activate, create_strategy_version
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.lending.core.context import LendingCaches
from node_api.lending.products.validation import ProductCostAboveCapError
from tests.integration.collections.helpers import AS_OF, open_past_due_line
from tests.integration.lending.eod_helpers import buy, pay

POLICY = CollectionsPolicy()


@pytest.fixture
def case_id(node: Database, caches: LendingCaches) -> int:
    """An M1 case on a line owing 30,000 fen, under a strategy that calls a case once a
    promise was broken."""
    with node.engine.begin() as conn:
        line_id = open_past_due_line(conn, caches, "cust-9", 12)
    buy(node, caches, line_id, 30_000)
    document = copy.deepcopy(DEFAULT_STRATEGY)
    broken = {"queue": "m1-broken-promise", "channel": "call", "bucket_max": "M1",
              "broken_promises_min": 1}  # fmt: skip
    document["rules"] = [broken, *document["rules"]]
    with node.engine.begin() as conn:
        version = create_strategy_version(conn, document, on=AS_OF, by="admin")
        activate(
            conn, champion_version=version.version, challenger_version=None,
            challenger_share_bps=0, on=AS_OF, by="admin",
        )  # fmt: skip
        refresh_cases(conn, AS_OF)
        (case,) = fetch_cases(conn)
    return case.id


def _promise(database: Database, case_id: int, amount_fen: int, due_on: date) -> None:
    with database.engine.begin() as conn:
        record_promise(
            conn, case_id=case_id, amount_fen=amount_fen, due_on=due_on, promised_on=AS_OF,
            attempt_id=None, by="agent",
        )  # fmt: skip


def _evaluate(database: Database, as_of: date) -> tuple[int, int, int]:
    with database.engine.begin() as conn:
        summary = evaluate_promises(conn, as_of)
    return summary.kept, summary.broken, summary.pending


def _promises(database: Database, case_id: int) -> list[tuple[str, int, date | None]]:
    with database.engine.connect() as conn:
        return [(p.status, p.paid_fen, p.evaluated_on) for p in fetch_promises(conn, case_id)]


def test_a_promise_is_kept_once_the_payments_reach_it(
    node: Database, caches: LendingCaches, case_id: int
) -> None:
    _promise(node, case_id, 10_000, AS_OF + timedelta(days=5))
    with node.engine.connect() as conn:
        line_id = fetch_case(conn, case_id).credit_line_id
    pay(node, caches, line_id, 6_000)
    assert _evaluate(node, AS_OF) == (0, 0, 1)
    assert _promises(node, case_id) == [("pending", 6_000, None)]
    pay(node, caches, line_id, 4_000)
    assert _evaluate(node, AS_OF) == (1, 0, 0)
    assert _evaluate(node, AS_OF + timedelta(days=9)) == (0, 0, 0)  # decided once
    assert _promises(node, case_id) == [("kept", 10_000, AS_OF)]


def test_a_promise_is_broken_after_its_date_and_the_strategy_escalates(
    node: Database, caches: LendingCaches, case_id: int
) -> None:
    due_on = AS_OF + timedelta(days=3)
    _promise(node, case_id, 10_000, due_on)
    with pytest.raises(ConflictError) as info:
        _promise(node, case_id, 5_000, due_on)
    assert info.value.code == "promise_already_pending"
    assert _evaluate(node, due_on) == (0, 0, 1)  # still time on the due date itself
    assert _evaluate(node, due_on + timedelta(days=1)) == (0, 1, 0)
    assert _promises(node, case_id) == [("broken", 0, due_on + timedelta(days=1))]
    with node.engine.begin() as conn:
        refresh_cases(conn, AS_OF)
        case = fetch_case(conn, case_id)
    assert (case.queue, case.channel) == ("m1-broken-promise", "call")


def _request(database: Database, case_id: int, **changes: Any) -> int:
    fields: dict[str, Any] = {
        "case_id": case_id, "kind": PlanKind.REAGED_INSTALLMENTS, "term_months": 12,
        "rate_bps": 1_200, "fee_fen": 0, "reason_code": "job-loss", "requested_on": AS_OF,
        "by": "agent-1", **changes,
    }  # fmt: skip
    with database.engine.begin() as conn:
        return request_plan(conn, POLICY, PlanRequest(**fields)).id


def _decide(database: Database, plan_id: int, by: str, on: date = AS_OF) -> str:
    with database.engine.begin() as conn:
        return decide_plan(
            conn, POLICY, plan_id, approve=True, reason="documents-ok", on=on, by=by
        ).status


def test_a_hardship_plan_is_approved_by_someone_else_once_a_year(
    node: Database, case_id: int
) -> None:
    plan_id = _request(node, case_id)
    with node.engine.connect() as conn:
        assert fetch_case(conn, case_id).outstanding_fen == 30_000
    with pytest.raises(ConflictError) as info:
        _request(node, case_id, kind=PlanKind.PAYMENT_HOLIDAY, term_months=2)
    assert info.value.code == "hardship_limit_reached"  # one awaits a decision
    with pytest.raises(ConflictError) as info:
        _decide(node, plan_id, by="agent-1")
    assert info.value.code == "hardship_self_approval"
    assert _decide(node, plan_id, by="admin-1") == "approved"
    with pytest.raises(ConflictError) as info:
        _decide(node, plan_id, by="admin-2")
    assert info.value.code == "hardship_plan_decided"
    eleven_months = date(2026, 3, 10)
    with pytest.raises(ConflictError) as info:
        _request(node, case_id, requested_on=eleven_months)
    assert info.value.code == "hardship_limit_reached"
    assert _request(node, case_id, requested_on=date(2026, 4, 10)) > plan_id  # window passed


def test_RevertWhen_a_hardship_plan_costs_more_than_the_cap(node: Database, case_id: int) -> None:
    with pytest.raises(ProductCostAboveCapError) as info:
        _request(node, case_id, kind=PlanKind.PAYMENT_HOLIDAY, term_months=3, fee_fen=1_000)
    assert info.value.extra["cap_bps"] == 2_400 and info.value.extra["computed_bps"] > 2_400
    assert _request(node, case_id, rate_bps=2_000) > 0  # 21.94% effective: within the cap
