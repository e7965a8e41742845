"""Recoveries after charge-off and the sale of charged-off debt over real books (end of
day ages the lines to their charge-off day), on both databases, with hand-computed
splits: a recovery is shared by the funders' funded shares (largest remainder) in the
next settlement cycle; a compensated line pays its guarantor back first; a sale's price
goes from the agency to the lender and on to the funders; refusals change nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.collections.compensation import Coverage, run_due_compensations
from node_api.collections.debt_sale import sell_debt
from node_api.collections.recoveries import (
    fetch_recoverable,
    fetch_written_off_weights,
    record_recovery,
)
from node_api.kernel.chain import EntryKind, PartnerRole
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.accounts import AccountType, line_account_code, node_account_code
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.settlement_events import CHARGE_OFF_EVENT
from node_api.lending.eod import run_eod_through
from node_api.lending.lines import fetch_line
from settlement.partners import register_partner
from tests.integration.collections.recovery_books import (
    BANK_A,
    BANK_B,
    GUARD,
    LENDER,
    OPENED,
    POLICY,
    RecoveryBooks,
    close_cycle,
    cycle_entries,
)
from tests.integration.lending.eod_helpers import check_ledger, node_balance

COMPENSATED_ON = date(2025, 3, 30)
PLAIN_CHARGED_OFF_ON = date(2025, 4, 7)
"""Bill of 5 March due 25 March, never paid: more than 10 days past due, so charged off,
by 7 April."""
AGENCY = 7


def _written_off(database: Database, line_id: int) -> int:
    return node_balance(database, line_account_code(line_id, AccountType.WRITTEN_OFF))


def _recover(books: RecoveryBooks, line_id: int, amount_fen: int, as_of: date) -> tuple[int, int]:
    with books.database.engine.begin() as conn:
        done = record_recovery(
            conn, books.caches.accounts, line_id=line_id, amount_fen=amount_fen, as_of=as_of,
            payment_ref=None, by="agent",
        )  # fmt: skip
    return done.guarantor_fen, done.shared_fen


def _kind_lines(database: Database, cycle_date: date, kind: EntryKind) -> list[tuple[int, int]]:
    cycle = close_cycle(database, cycle_date)
    with database.engine.connect() as conn:
        return [(p, a) for p, k, a, _ in cycle_entries(conn, cycle.cycle_id) if k is kind]


def test_recoveries_are_shared_by_funded_share_after_the_guarantor_is_paid_back(
    database: Database,
) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.OVERDUE)
    plain = books.open_line("cust-plain", 100_000)
    guaranteed = books.open_line("cust-guaranteed", 100_000)
    run_eod_through(database, COMPENSATED_ON)
    with database.engine.begin() as conn:
        (compensation,) = run_due_compensations(
            conn, books.caches, POLICY, COMPENSATED_ON, line_ids=[guaranteed]
        ).compensations
    claim_fen = compensation.amount_fen
    run_eod_through(database, PLAIN_CHARGED_OFF_ON)
    written_fen = _written_off(database, plain)
    assert written_fen > 100_000  # the principal and every charge the line was billed
    close_cycle(database, PLAIN_CHARGED_OFF_ON)  # the charge-off's own cycle

    # 10,001 over 30 % lender, 50 % bank-a, 20 % bank-b: exact parts 3,000.3, 5,000.5 and
    # 2,000.2; the floors leave 1 fen, which goes to the largest remainder (bank-a, .5).
    # bank-a 5,001, bank-b 2,000, the lender keeps 3,000 and pays out 7,001.
    day = date(2025, 4, 8)
    assert _recover(books, plain, 10_001, day) == (0, 10_001)
    assert _written_off(database, plain) == written_fen - 10_001
    # Not charged off: only the guarantor's claim can be recovered on the compensated line.
    assert _recover(books, guaranteed, 1_000, day) == (1_000, 0)
    assert sorted(_kind_lines(database, day, EntryKind.RECOVERY)) == sorted(
        [(BANK_A, 5_001), (BANK_B, 2_000), (LENDER, -7_001), (LENDER, -1_000), (GUARD, 1_000)]
    )

    run_eod_through(database, date(2025, 5, 8))  # its bill of 5 April, due 25 April, too
    with database.engine.connect() as conn:
        recoverable = fetch_recoverable(conn, guaranteed)
    assert recoverable.charged_off_on is not None
    assert recoverable.claims_fen == {"guard": claim_fen - 1_000}
    # The rest of the claim first, then 1,000 shared: bank-a 500, bank-b 200, lender 300.
    day = date(2025, 5, 9)
    assert _recover(books, guaranteed, claim_fen - 1_000 + 1_000, day) == (claim_fen - 1_000, 1_000)
    lines = _kind_lines(database, day, EntryKind.RECOVERY)
    assert sorted(lines) == sorted(
        [(LENDER, -(claim_fen - 1_000)), (GUARD, claim_fen - 1_000), (BANK_A, 500),
         (BANK_B, 200), (LENDER, -700)]
    )  # fmt: skip
    with database.engine.connect() as conn:
        check_ledger(conn)
        assert fetch_recoverable(conn, guaranteed).claims_fen == {}


def test_RevertWhen_a_recovery_is_more_than_recoverable_or_the_line_is_current(
    database: Database,
) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.OVERDUE)
    current = books.open_line("cust-current", 50_000)
    with database.engine.begin() as conn, pytest.raises(ConflictError) as refused:
        record_recovery(
            conn, books.caches.accounts, line_id=current, amount_fen=1, as_of=date(2025, 3, 1),
            payment_ref=None, by="agent",
        )  # fmt: skip
    assert refused.value.code == "not_recoverable"
    charged = books.open_line("cust-charged", 100_000)
    run_eod_through(database, PLAIN_CHARGED_OFF_ON)
    written_fen = _written_off(database, charged)
    with database.engine.begin() as conn, pytest.raises(CreditNetValueError) as too_much:
        record_recovery(
            conn, books.caches.accounts, line_id=charged, amount_fen=written_fen + 1,
            as_of=PLAIN_CHARGED_OFF_ON, payment_ref=None, by="agent",
        )  # fmt: skip
    assert too_much.value.field == "amount_fen"
    assert _written_off(database, charged) == written_fen
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_charged_off_debt_is_sold_and_its_price_shared_by_funded_share(
    database: Database,
) -> None:
    books = RecoveryBooks(database)
    books.setup(Coverage.OVERDUE)
    first = books.open_line("cust-a", 100_000, agreement=True)
    second = books.open_line("cust-b", 40_000)
    run_eod_through(database, PLAIN_CHARGED_OFF_ON)
    with database.engine.connect() as conn:
        changes_before = _agreement_changes(conn)
    with database.engine.begin() as conn:
        register_partner(
            conn, ref="agency-a", role=PartnerRole.CHANNEL, payout_address="0x" + "77" * 20,
            display_name="Agency A", partner_id=AGENCY,
        )  # fmt: skip
    faces = {line: _written_off(database, line) for line in (first, second)}
    price_fen = 20_000
    day = date(2025, 4, 8)
    with database.engine.begin() as conn:
        sale = sell_debt(
            conn, books.caches.accounts, buyer_ref="agency-a", line_ids=[second, first],
            price_fen=price_fen, as_of=day, by="admin",
        )  # fmt: skip
    assert sale.face_fen == sum(faces.values()) and sale.price_fen == price_fen
    parts = {line.credit_line_id: line.price_fen for line in sale.lines}
    assert sum(parts.values()) == price_fen and parts[first] > parts[second]
    for line in (first, second):
        assert _written_off(database, line) == faces[line] - parts[line]
    lines = _kind_lines(database, day, EntryKind.DEBT_SALE)
    by_partner: dict[int, int] = {}
    for partner_id, amount_fen in lines:
        by_partner[partner_id] = by_partner.get(partner_id, 0) + amount_fen
    # The agency pays 20,000; 50 % and 20 % of each line's part go to bank-a and bank-b.
    assert by_partner[AGENCY] == -price_fen
    assert by_partner[BANK_A] + by_partner[BANK_B] + by_partner[LENDER] == price_fen
    assert abs(by_partner[BANK_A] - price_fen * 5 // 10) <= 1
    assert abs(by_partner[BANK_B] - price_fen * 2 // 10) <= 1
    with database.engine.begin() as conn, pytest.raises(ConflictError) as sold:
        record_recovery(
            conn, books.caches.accounts, line_id=first, amount_fen=1, as_of=day,
            payment_ref=None, by="agent",
        )  # fmt: skip
    assert sold.value.code == "line_sold"
    with database.engine.begin() as conn, pytest.raises(ConflictError) as again:
        sell_debt(
            conn, books.caches.accounts, buyer_ref="agency-a", line_ids=[first],
            price_fen=1, as_of=day, by="admin",
        )  # fmt: skip
    assert again.value.code == "line_sold"
    with database.engine.connect() as conn:
        check_ledger(conn)
        sold_changes = _agreement_changes(conn)[len(changes_before) :]
    # The sold agreement moves ChargedOff (5) -> Closed (3) with the sale's reason code,
    # once; the line without an agreement sends nothing.
    assert [(p["new_status"], p["reason_code"]) for p in sold_changes] == [(3, 191)]
    assert sold_changes[0]["change_seq"] == len(changes_before) + 1


def _agreement_changes(conn: Connection) -> list[dict[str, Any]]:
    table = OUTBOX_TABLE
    rows = conn.execute(
        select(table.c.payload)
        .where(table.c.kind == OutboxKind.AGREEMENT_CHANGE.value)
        .order_by(table.c.id)
    ).scalars()
    return [dict(payload) for payload in rows]


def test_written_off_weights_are_the_lines_own_charge_offs_per_product(
    database: Database,
) -> None:
    """What splits a recovery over a line's products: the sum of the line's charge-off
    events per product, another line's and other kinds left out (found through the line's
    batches)."""
    books = RecoveryBooks(database)
    books.setup(Coverage.OVERDUE)
    line_id = books.open_line("cust-weights", 10_000)
    other_id = books.open_line("cust-other", 10_000)
    clearing = node_account_code(AccountType.SETTLEMENT_CLEARING)
    income = node_account_code(AccountType.INTEREST_INCOME)
    with database.engine.begin() as conn:
        line = fetch_line(conn, line_id)
        (product,) = {(n.product_code, n.product_version) for n in line.product_nodes()}
        events = {
            (line_id, "a"): [(CHARGE_OFF_EVENT, product, 700), (CHARGE_OFF_EVENT, ("OLD", 1), 300)],
            (line_id, "b"): [(CHARGE_OFF_EVENT, product, 50), ("merchant_payable", product, 9_000)],
            (other_id, "c"): [(CHARGE_OFF_EVENT, product, 5_000)],
        }
        for (owner, key), drafts in events.items():
            customer = fetch_line(conn, owner).customer_ref
            post_batch(
                conn,
                BatchDraft(
                    f"weights-{key}", "test_charge_off", OPENED,
                    (PostingLine(clearing, 1), PostingLine(income, -1)),
                    credit_line_id=owner, customer_id=customer,
                    events=tuple(
                        SettlementEventDraft(kind, fen, product_code=code, product_version=version)
                        for kind, (code, version), fen in drafts
                    ),
                ),
                books.caches.accounts,
            )  # fmt: skip
        weights = fetch_written_off_weights(conn, line)
    assert weights == sorted([(("OLD", 1), 300), (product, 750)])
