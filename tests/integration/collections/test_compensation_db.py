"""Guarantor compensation (代偿) and subrogation on both databases, with hand-computed
amounts: the guarantor's payment is posted as a repayment and its claim recorded; the
settlement cycle makes the guarantor pay and the funders receive their shares; later
money collected goes to the guarantor first; the agreement's freeze is enqueued for the
chain once; refusals change nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from node_api.collections.cases import fetch_cases, refresh_cases
from node_api.collections.compensation import (
    Coverage,
    compensate_line,
    fetch_compensations,
    run_due_compensations,
    set_compensation_terms,
)
from node_api.collections.facts import fetch_line_facts
from node_api.collections.promises import evaluate_promises, record_promise
from node_api.collections.recoveries import fetch_recoverable, record_recovery
from node_api.collections.reports import fetch_arm_reports, fetch_vintage_reports
from node_api.kernel.chain import EntryKind
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.accounts import AccountType, funding_payable_code, subrogation_specs
from node_api.ledger.balances import fetch_line_balances
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.eod import run_eod_through
from node_api.lending.eod.state import update_line_states
from node_api.lending.lines import LineStatus, fetch_line
from tests.integration.collections.recovery_books import (
    AGREEMENT,
    APP,
    BANK_A,
    BANK_B,
    GUARD,
    LENDER,
    OPENED,
    POLICY,
    PRODUCT,
    RecoveryBooks,
    close_cycle,
    cycle_entries,
)
from tests.integration.lending.eod_helpers import check_ledger, node_balance


def _set_past_due(database: Database, line_id: int, days_past_due: int) -> None:
    """What end of day would write for a line that many days past due."""
    with database.engine.begin() as conn:
        update_line_states(
            conn,
            OPENED,
            {line_id: {"days_past_due": days_past_due, "bucket": DelinquencyBucket.M1.value}},
            ["days_past_due", "bucket"],
        )


def _claim(database: Database, line_id: int) -> tuple[int, int]:
    """(subrogated receivable, guarantor claim) of the line (customer cust-1's, as every
    test's line is), each on its normal side."""
    receivable, claim = subrogation_specs(line_id, "cust-1", "guard")
    return node_balance(database, receivable.code), -node_balance(database, claim.code)


def test_the_guarantor_pays_the_whole_balance_and_takes_the_claim(database: Database) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.BALANCE)
    line_id = books.open_line("cust-1", 100_000)
    _set_past_due(database, line_id, 5)
    with database.engine.begin() as conn:
        done = compensate_line(conn, books.caches, POLICY, line_id=line_id, as_of=OPENED, by="k")
    # The whole balance is the 100,000 purchase (billed on 5 March, nothing accrued yet).
    assert (done.amount_fen, done.coverage, done.days_past_due) == (100_000, Coverage.BALANCE, 5)
    with database.engine.connect() as conn:
        check_ledger(conn)
        owed = {k: v for k, v in fetch_line_balances(conn, line_id).items() if v}
        assert owed == {
            AccountType.SUBROGATED_RECEIVABLE: 100_000, AccountType.GUARANTOR_CLAIM: 100_000
        }  # nothing is owed to the lender any more  # fmt: skip
        assert fetch_line(conn, line_id).status is LineStatus.FROZEN
    # The repayment brought every funder's payable down to its share of zero principal.
    for ref in ("lender", "bank-a", "bank-b"):
        assert node_balance(database, funding_payable_code(line_id, PRODUCT, ref)) == 0
    assert _claim(database, line_id) == (100_000, 100_000)

    cycle = close_cycle(database, OPENED)
    # Hand-computed nets of the day (positive = receives):
    #   purchase 100,000:      bank-a -50,000, bank-b -20,000, lender +70,000
    #   commission 55 bps:     app +550 (floor(100,000 x 55 / 10,000)), lender -550
    #   repaid by compensation: bank-a +50,000, bank-b +20,000, lender -70,000
    #   guarantor's payment:   guard -100,000, lender +100,000
    nets = dict(zip(cycle.partner_ids, cycle.net_positions_fen, strict=True))
    assert nets == {LENDER: 99_450, BANK_A: 0, BANK_B: 0, APP: 550, GUARD: -100_000}
    with database.engine.connect() as conn:
        entries = cycle_entries(conn, cycle.cycle_id)
    guarantee = [(p, a) for p, k, a, _ in entries if k is EntryKind.GUARANTEE_PAYMENT]
    assert guarantee == [(GUARD, -100_000), (LENDER, 100_000)]
    repaid = [(p, a) for p, k, a, _ in entries if k is EntryKind.PRINCIPAL_REPAID]
    assert sorted(repaid) == [(LENDER, -50_000), (LENDER, -20_000), (BANK_A, 50_000),
                              (BANK_B, 20_000)]  # fmt: skip


def test_later_money_goes_to_the_guarantor_first_and_no_further(database: Database) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.BALANCE)
    line_id = books.open_line("cust-1", 100_000)
    _set_past_due(database, line_id, 5)
    with database.engine.begin() as conn:
        compensate_line(conn, books.caches, POLICY, line_id=line_id, as_of=OPENED, by="k")
        first = record_recovery(
            conn, books.caches.accounts, line_id=line_id, amount_fen=30_000, as_of=OPENED,
            payment_ref="tx-1", by="agent",
        )  # fmt: skip
    # 30,000 collected against a claim of 100,000: all of it is the guarantor's.
    assert (first.guarantor_fen, first.shared_fen, first.guarantor_ref) == (30_000, 0, "guard")
    assert _claim(database, line_id) == (70_000, 70_000)
    with database.engine.begin() as conn, pytest.raises(CreditNetValueError) as refused:
        record_recovery(
            conn, books.caches.accounts, line_id=line_id, amount_fen=70_001, as_of=OPENED,
            payment_ref=None, by="agent",
        )  # fmt: skip
    # Not charged off, so only the claim's 70,000 can still be recovered.
    assert refused.value.field == "amount_fen" and refused.value.extra["recoverable_fen"] == 70_000
    assert _claim(database, line_id) == (70_000, 70_000)

    cycle = close_cycle(database, OPENED)
    with database.engine.connect() as conn:
        entries = cycle_entries(conn, cycle.cycle_id)
        check_ledger(conn)
    assert [(p, a) for p, k, a, _ in entries if k is EntryKind.RECOVERY] == [
        (LENDER, -30_000), (GUARD, 30_000),
    ]  # fmt: skip
    # The guarantor paid 100,000 and got 30,000 back through the same cycle.
    assert dict(zip(cycle.partner_ids, cycle.net_positions_fen, strict=True))[GUARD] == -70_000


def test_overdue_coverage_pays_what_is_past_due_and_freezes_the_agreement_once(
    database: Database,
) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.OVERDUE)
    line_id = books.open_line("cust-1", 100_000, agreement=True)
    run_eod_through(database, date(2025, 3, 30))
    with database.engine.connect() as conn:
        facts = fetch_line_facts(conn, [line_id])[line_id]
    # Bill of 5 March due 25 March: 5 days past due on 30 March.
    assert facts.days_past_due == 5 and facts.past_due_fen > 0
    with database.engine.begin() as conn:
        run = run_due_compensations(conn, books.caches, POLICY, date(2025, 3, 30))
        again = run_due_compensations(conn, books.caches, POLICY, date(2025, 3, 30))
    (done,) = run.compensations
    assert done.amount_fen == facts.past_due_fen and done.agreement_change_seq == 1
    assert again.compensations == ()  # nothing is past due any more
    with database.engine.connect() as conn:
        after = fetch_line_facts(conn, [line_id])[line_id]
        assert after.past_due_fen == 0
        assert after.outstanding_fen == facts.outstanding_fen - facts.past_due_fen
        outbox = conn.execute(
            select(OUTBOX_TABLE.c.business_key, OUTBOX_TABLE.c.payload).where(
                OUTBOX_TABLE.c.kind == OutboxKind.AGREEMENT_CHANGE.value
            )
        ).all()
        check_ledger(conn)
    # FROZEN (2) with the compensation's reason code, the agreement's first change.
    assert [(key, payload) for key, payload in outbox] == [
        (f"agreement_change:{AGREEMENT}:1",
         {"agreement_id": AGREEMENT, "change_seq": 1, "reason_code": 190, "change": "status",
          "new_status": 2}),
    ]  # fmt: skip
    assert _claim(database, line_id) == (done.amount_fen, done.amount_fen)


def test_RevertWhen_compensation_is_not_due_or_not_covered_nothing_is_written(
    database: Database,
) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.OVERDUE)
    line_id = books.open_line("cust-1", 100_000)
    attempts = [(4, "compensation_not_due"), (5, "nothing_to_compensate")]
    for days_past_due, code in attempts:  # 5 days past due, but nothing billed is unpaid
        _set_past_due(database, line_id, days_past_due)
        with database.engine.begin() as conn, pytest.raises(ConflictError) as refused:
            compensate_line(conn, books.caches, POLICY, line_id=line_id, as_of=OPENED, by="k")
        assert refused.value.code == code
    with database.engine.begin() as conn:
        set_compensation_terms(
            conn, product_code=PRODUCT, guarantor_ref="guard", coverage=Coverage.BALANCE,
            on=OPENED, by="admin",
        )  # fmt: skip
        with pytest.raises(CreditNetValueError) as not_guarantor:
            set_compensation_terms(
                conn, product_code=PRODUCT, guarantor_ref="bank-a", coverage=Coverage.BALANCE,
                on=OPENED, by="admin",
            )  # fmt: skip
    assert not_guarantor.value.field == "guarantor_ref"
    with database.engine.connect() as conn:
        assert fetch_compensations(conn) == []
        assert fetch_recoverable(conn, line_id).total_fen == 0
        changes = conn.execute(
            select(func.count())
            .select_from(OUTBOX_TABLE)
            .where(OUTBOX_TABLE.c.kind == OutboxKind.AGREEMENT_CHANGE.value)
        ).scalar_one()
    assert changes == 0
    assert node_balance(database, funding_payable_code(line_id, PRODUCT, "bank-a")) == -50_000
    with database.engine.connect() as conn:
        balances = fetch_line_balances(conn, line_id)
    assert balances[AccountType.PRINCIPAL_UNBILLED] == 100_000


def test_a_guarantor_s_payment_keeps_no_promise_and_cures_no_case(database: Database) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.BALANCE)
    line_id = books.open_line("cust-1", 100_000)
    _set_past_due(database, line_id, 5)
    due_on = date(2025, 3, 3)
    with database.engine.begin() as conn:
        refresh_cases(conn, OPENED)
        (case,) = fetch_cases(conn)
        record_promise(
            conn, case_id=case.id, amount_fen=10_000, due_on=due_on, promised_on=OPENED,
            attempt_id=None, by="agent",
        )  # fmt: skip
        compensate_line(conn, books.caches, POLICY, line_id=line_id, as_of=OPENED, by="k")
        assert evaluate_promises(conn, OPENED).pending == 1  # 100,000 paid, by the guarantor
        assert evaluate_promises(conn, date(2025, 3, 4)).broken == 1
    _set_past_due(database, line_id, 0)  # what end of day finds: the line owes nothing
    with database.engine.begin() as conn:
        assert refresh_cases(conn, date(2025, 3, 4)).cured == 1
        (report,) = fetch_arm_reports(conn)
        (vintage,) = fetch_vintage_reports(conn)
    # The case closed because the guarantor paid: compensated, not cured.
    assert (report.cases, report.cured, report.compensated, report.cure_rate_bps) == (1, 0, 1, 0)
    assert (report.promises_kept, report.promises_broken) == (0, 1)
    assert (vintage.compensated, vintage.losses.compensated_fen) == (1, 100_000)
