"""Line states over real books on both databases: each anchored agreement's receivables at
the end of a settled date, signed by a quorum and queued with the stored tree in one
transaction; idempotent; dates without agreements commit nothing; proofs served from the
stored tree verify; a quorum that does not agree stores nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from node_api.kernel.db import Database
from node_api.kernel.errors import NotFoundError
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.balances import fetch_line_balances as fetch_ledger_balances
from node_api.lending.bills import RECEIVABLE_TYPES, sum_balances
from oracles.eip712 import line_state_report_digest, recover_signer
from oracles.signers import SigningDomain
from settlement.line_state import (
    LineStateStatus,
    commit_line_states,
    compute_line_leaf,
    fetch_line_state,
    prove_line_balance,
    recompute_line_state_report,
)
from settlement.merkle import verify
from settlement.tables import line_state_table
from tests.integration.settlement.books import FIRST_DAY, Books
from tests.integration.settlement.line_state_books import (
    anchor_lines,
    line_state_signers,
    mark_proposed,
)

DOMAIN = SigningDomain(31337, "0x" + "11" * 20, "0x" + "22" * 20)


def _books(database: Database) -> tuple[Books, dict[int, bytes]]:
    """Three lines: two with agreements opened on the first day, one opened a day later;
    purchases and a repayment on the first day, which is then closed and settled."""
    books = Books(database)
    books.setup(line_count=3)
    first, second, late = books.line_ids
    agreements = anchor_lines(
        database, {first: FIRST_DAY, second: FIRST_DAY, late: FIRST_DAY + timedelta(days=1)}
    )
    books.purchase(first, 120_000)
    books.purchase(second, 45_000, channel_id="pos")
    books.repay(second, 5_000)
    books.purchase(late, 9_000)
    assert books.end_day() == FIRST_DAY
    return books, agreements


def _line_state_rows(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(line_state_table)).scalar_one())


def test_a_settled_date_commits_every_agreements_receivables_with_a_quorum(
    database: Database,
) -> None:
    books, agreements = _books(database)
    cycle_id = mark_proposed(database, FIRST_DAY)
    done = commit_line_states(database, line_state_signers(database, DOMAIN))
    assert done.queued == [cycle_id] and not done.empty and not done.refused

    first, second, late = books.line_ids
    with database.engine.connect() as conn:
        stored = fetch_line_state(conn, cycle_id)
        expected = {
            agreements[line]: sum_balances(
                fetch_ledger_balances(conn, line, FIRST_DAY), RECEIVABLE_TYPES
            )
            for line in (first, second)
        }
        payload = conn.execute(
            select(OUTBOX_TABLE.c.payload).where(
                OUTBOX_TABLE.c.business_key == f"line_state:{cycle_id}"
            )
        ).scalar_one()
    assert stored is not None and stored.status == LineStateStatus.QUEUED
    assert expected[agreements[first]] >= 120_000  # the purchase, with interest or fees
    assert stored.leaf_count == 2  # the late agreement opened after the date
    assert stored.total_outstanding_fen == sum(expected.values())
    assert payload["root"] == "0x" + (stored.root or b"").hex()
    assert (payload["leaf_count"], payload["total_outstanding_fen"]) == (
        2,
        stored.total_outstanding_fen,
    )
    assert payload["signatures"] == ["0x" + s.hex() for s in stored.signatures]
    digest = line_state_report_digest(
        DOMAIN.chain_id,
        DOMAIN.credit_registry,
        cycle_id,
        stored.root or b"",
        stored.leaf_count,
        stored.total_outstanding_fen,
    )
    signers = [recover_signer(digest, signature) for signature in stored.signatures]
    assert signers == list(stored.signer_addresses) and len(signers) == 3
    assert [int(a, 16) for a in signers] == sorted(int(a, 16) for a in signers)

    with database.engine.connect() as conn:
        for agreement_id, outstanding_fen in expected.items():
            proven = prove_line_balance(conn, "0x" + agreement_id.hex(), cycle_id)
            assert proven.outstanding_fen == outstanding_fen
            leaf = compute_line_leaf(agreement_id, cycle_id, outstanding_fen)
            assert proven.leaf == leaf and proven.root == stored.root
            assert verify(proven.root, leaf, proven.proof)
            assert proven.outbox_status == "pending"
        assert prove_line_balance(conn, "0x" + agreements[first].hex()).cycle_id == cycle_id
        with pytest.raises(NotFoundError) as missing:
            prove_line_balance(conn, "0x" + agreements[late].hex(), cycle_id)
        assert missing.value.field == "agreement_id"
        with pytest.raises(NotFoundError):
            prove_line_balance(conn, "0x" + agreements[first].hex(), cycle_id + 1)


def test_committing_again_does_nothing_and_later_postings_do_not_move_a_date(
    database: Database,
) -> None:
    books, _agreements = _books(database)
    cycle_id = mark_proposed(database, FIRST_DAY)
    signers = line_state_signers(database, DOMAIN)
    commit_line_states(database, signers)
    with database.engine.connect() as conn:
        before = fetch_line_state(conn, cycle_id)
    books.purchase(books.line_ids[0], 33_000)  # on the next business date
    again = commit_line_states(database, signers)
    assert again.queued == [] and again.empty == [] and again.refused == {}
    report = recompute_line_state_report(database, cycle_id)
    assert before is not None and report is not None
    assert (report.root, report.leaf_count, report.total_outstanding_fen) == (
        before.root,
        before.leaf_count,
        before.total_outstanding_fen,
    )
    with database.engine.connect() as conn:
        kinds = conn.execute(
            select(func.count()).where(OUTBOX_TABLE.c.kind == OutboxKind.LINE_STATE.value)
        ).scalar_one()
    assert kinds == 1 and _line_state_rows(database) == 1


def test_a_date_without_agreements_commits_nothing(database: Database) -> None:
    books = Books(database)
    books.setup(line_count=1)
    books.purchase(books.line_ids[0], 10_000)
    day = books.end_day()
    cycle_id = mark_proposed(database, day)
    done = commit_line_states(database, line_state_signers(database, DOMAIN))
    assert done.empty == [cycle_id] and done.queued == []
    assert recompute_line_state_report(database, cycle_id) is None
    with database.engine.connect() as conn:
        stored = fetch_line_state(conn, cycle_id)
        queued = conn.execute(
            select(func.count()).where(OUTBOX_TABLE.c.kind == OutboxKind.LINE_STATE.value)
        ).scalar_one()
    assert stored is not None and stored.status == LineStateStatus.EMPTY and stored.root is None
    assert queued == 0
    assert commit_line_states(database, line_state_signers(database, DOMAIN)).empty == []


def test_only_proposed_dates_are_committed_and_signers_refuse_the_others(
    database: Database,
) -> None:
    _books(database)
    cycle_id = mark_proposed(database, FIRST_DAY)
    assert recompute_line_state_report(database, cycle_id + 1) is None  # never settled
    assert recompute_line_state_report(database, 100_000_000 + cycle_id) is None  # attempt id
    assert recompute_line_state_report(database, 7) is None  # not a date
    assert recompute_line_state_report(database, cycle_id) is not None


def test_without_a_quorum_nothing_is_stored_and_the_next_pass_retries(
    database: Database,
) -> None:
    _books(database)
    cycle_id = mark_proposed(database, FIRST_DAY)
    refused = commit_line_states(database, line_state_signers(database, DOMAIN, tampered=2))
    assert list(refused.refused) == [cycle_id] and refused.queued == []
    assert "1 of 3 signers signed" in refused.refused[cycle_id]
    assert _line_state_rows(database) == 0
    with database.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OUTBOX_TABLE).where(
            OUTBOX_TABLE.c.kind == OutboxKind.LINE_STATE.value)).scalar_one() == 0  # fmt: skip
    done = commit_line_states(database, line_state_signers(database, DOMAIN, tampered=1))
    assert done.queued == [cycle_id]
    with database.engine.connect() as conn:
        stored = fetch_line_state(conn, cycle_id)
    assert stored is not None and len(stored.signatures) == 2
