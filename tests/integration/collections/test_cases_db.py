"""Cases and queues on both databases: delinquent lines land in queues by bucket, balance
and score; a refresh is idempotent; cured lines close; champion and challenger split new
cases by line and are reported per arm."""

from __future__ import annotations

import copy
from typing import Any

from node_api.collections.cases import fetch_case, fetch_cases, fetch_queues, refresh_cases
from node_api.collections.model import Arm
from node_api.collections.reports import fetch_arm_reports
from node_api.collections.strategy import DEFAULT_STRATEGY, compute_arm
from node_api.collections.strategy_store import activate, create_strategy_version
from node_api.kernel.db import Database
from node_api.lending.core.context import LendingCaches
from tests.integration.collections.helpers import AS_OF, open_past_due_line, set_days_past_due
from tests.integration.lending.eod_helpers import buy
from tests.integration.lending.helpers import open_line


def _by_line(database: Database) -> dict[int, Any]:
    with database.engine.connect() as conn:
        return {case.credit_line_id: case for case in fetch_cases(conn, status=None)}


def _large_balance_strategy() -> dict[str, Any]:
    document = copy.deepcopy(DEFAULT_STRATEGY)
    document["name"] = "large-balances-called"
    large = {
        "queue": "m1-large", "channel": "call", "bucket_max": "M1",
        "outstanding_fen_min": 10_000, "assign": {"agents": ["senior-1"]},
    }  # fmt: skip
    document["rules"] = [large, *document["rules"]]
    return document


def test_delinquent_lines_land_in_queues_by_bucket_and_cure_or_roll(
    node: Database, caches: LendingCaches
) -> None:
    with node.engine.begin() as conn:
        m1 = open_past_due_line(conn, caches, "cust-m1", 10)
        m2 = open_past_due_line(conn, caches, "cust-m2", 40)
        m3 = open_past_due_line(conn, caches, "cust-m3", 75)
        open_line(conn, caches, customer_ref="cust-current")
        first = refresh_cases(conn, AS_OF)
    assert (first.opened, first.cured, first.open_cases) == (3, 0, 3)
    cases = _by_line(node)
    assert {line: (c.bucket, c.queue, c.channel) for line, c in cases.items()} == {
        m1: ("M1", "m1-reminders", "sms"),
        m2: ("M2", "m2-calls", "call"),
        m3: ("M3", "m3-agency", "agency"),
    }
    assert {c.strategy_version for c in cases.values()} == {1}  # the default, activated once
    assert {c.score_band for c in cases.values()} == {"unscored"}

    with node.engine.begin() as conn:
        again = refresh_cases(conn, AS_OF)
    assert (again.opened, again.cured) == (0, 0) and _by_line(node) == cases

    with node.engine.begin() as conn:
        set_days_past_due(conn, m1, 0)
        set_days_past_due(conn, m2, 65)
        later = refresh_cases(conn, AS_OF)
    assert (later.opened, later.cured, later.open_cases) == (0, 1, 2)
    cases = _by_line(node)
    assert (cases[m1].status, cases[m1].closed_on) == ("cured", AS_OF)
    assert (cases[m2].bucket, cases[m2].worst_bucket, cases[m2].queue) == ("M3", "M3", "m3-agency")
    with node.engine.connect() as conn:
        queues = {(q.queue, q.channel): q.cases for q in fetch_queues(conn)}
        (report,) = fetch_arm_reports(conn)
    assert queues == {("m3-agency", "agency"): 2}
    assert (report.cases, report.cured, report.rolled) == (3, 1, 1)
    assert (report.cure_rate_bps, report.roll_rate_bps, report.promise_kept_rate_bps) == (
        3_333, 3_333, None,
    )  # fmt: skip


def test_a_new_version_applies_to_new_cases_and_balance_decides_the_queue(
    node: Database, caches: LendingCaches
) -> None:
    with node.engine.begin() as conn:
        early = open_past_due_line(conn, caches, "cust-early", 5)
        refresh_cases(conn, AS_OF)
        large = open_line(conn, caches, customer_ref="cust-large")
        small = open_line(conn, caches, customer_ref="cust-small")
    buy(node, caches, large, 15_000)
    buy(node, caches, small, 2_000)
    buy(node, caches, early, 20_000)
    with node.engine.begin() as conn:
        version = create_strategy_version(conn, _large_balance_strategy(), on=AS_OF, by="admin")
        activate(
            conn,
            champion_version=version.version,
            challenger_version=None,
            challenger_share_bps=0,
            on=AS_OF,
            by="admin",
        )
        for line_id in (large, small):
            set_days_past_due(conn, line_id, 12)
        refresh_cases(conn, AS_OF)
    cases = _by_line(node)
    assert (cases[large].strategy_version, cases[large].queue) == (2, "m1-large")
    assert (cases[large].assignee, cases[large].outstanding_fen) == ("senior-1", 15_000)
    assert (cases[small].strategy_version, cases[small].queue) == (2, "m1-reminders")
    # The early case keeps the version it was opened under, whatever its balance now.
    assert (cases[early].strategy_version, cases[early].queue) == (1, "m1-reminders")
    assert cases[early].outstanding_fen == 20_000


def test_champion_and_challenger_split_new_cases_by_line(
    node: Database, caches: LendingCaches
) -> None:
    with node.engine.begin() as conn:
        champion = create_strategy_version(conn, DEFAULT_STRATEGY, on=AS_OF, by="admin")
        challenger = create_strategy_version(conn, _large_balance_strategy(), on=AS_OF, by="admin")
        activation = activate(
            conn,
            champion_version=champion.version,
            challenger_version=challenger.version,
            challenger_share_bps=5_000,
            on=AS_OF,
            by="admin",
        )
        lines = [open_past_due_line(conn, caches, f"cust-{n}", 3 + n) for n in range(12)]
        refresh_cases(conn, AS_OF)
        set_days_past_due(conn, lines[0], 0)
        refresh_cases(conn, AS_OF)
    cases = _by_line(node)
    for line_id in lines:
        arm = compute_arm(activation.id, line_id, 5_000)
        version = challenger.version if arm is Arm.CHALLENGER else champion.version
        assert (cases[line_id].arm, cases[line_id].strategy_version) == (arm.value, version)
    with node.engine.connect() as conn:
        reports = {(r.strategy_version, r.arm): r for r in fetch_arm_reports(conn)}
        assert fetch_case(conn, cases[lines[0]].id).status == "cured"
    assert sum(r.cases for r in reports.values()) == 12
    assert sum(r.cured for r in reports.values()) == 1
    assert set(reports) <= {(champion.version, "champion"), (challenger.version, "challenger")}
