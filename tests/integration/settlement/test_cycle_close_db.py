"""Closing cycles over real books on both databases: conservation (Σ net positions = 0,
every ledger event cleared by exactly one cycle, every fen of every movement between
parties in exactly one entry), idempotency, late events, refusals that write nothing."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from node_api.kernel.chain import EntryKind
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table, settlement_event_table
from oracles.chain import LocalAccounts
from oracles.signers import LocalSigner, QuorumNotReachedError, SignerSet, SigningDomain
from settlement.cycle_close import (
    close_settlement_cycle,
    fetch_cycle,
    recompute_cycle_report,
    settlement_report_sources,
)
from settlement.entries import SettlementEntry
from settlement.netting import CycleNotBalancedError, CycleState, close_cycle, get_cycle_id
from settlement.salts import LeafSalts
from settlement.tables import cycle_table, entry_table, event_claim_table, position_table
from tests.integration.settlement.books import (
    APP,
    BANK_A,
    BANK_B,
    LENDER,
    POS,
    Books,
    random_day,
)

FUNDER_SHARES = {BANK_A: 500_000, BANK_B: 200_000}
REF_IDS = {"bank-a": BANK_A, "bank-b": BANK_B, "app": APP, "pos": POS, "lender": LENDER}
DOMAIN = SigningDomain(31337, "0x" + "11" * 20, "0x" + "22" * 20)
SALTS = LeafSalts(b"test-cycle-close-leaf-salt-secret")


def _entries(conn: Connection, cycle_id: int) -> list[SettlementEntry]:
    rows = conn.execute(
        select(entry_table)
        .where(entry_table.c.cycle_id == cycle_id)
        .order_by(entry_table.c.entry_id)
    ).mappings()
    return [
        SettlementEntry(
            cycle_id,
            int(row["entry_id"]),
            int(row["partner_id"]),
            EntryKind(int(row["kind"])),
            int(row["amount_fen"]),
            SALTS.salt(cycle_id, int(row["entry_id"]), int(row["partner_id"])),
            str(row["source_event_id"]),
        )
        for row in rows
    ]


def _check_cycle(conn: Connection, cycle_id: int) -> list[SettlementEntry]:
    """Σ positions = 0, positions = Σ entries, and the stored root is the root of the stored
    entries salted again from the secret (no salt is stored)."""
    cycle = fetch_cycle(conn, cycle_id)
    assert cycle is not None and cycle.state is CycleState.CLOSED
    entries = _entries(conn, cycle_id)
    assert [entry.entry_id for entry in entries] == list(range(1, len(entries) + 1))
    assert sum(cycle.net_positions_fen) == 0
    rebuilt = close_cycle(cycle_id, entries)
    assert rebuilt.root == cycle.entries_root
    assert rebuilt.partner_ids == cycle.partner_ids
    assert rebuilt.net_positions_fen == cycle.net_positions_fen
    return entries


def _check_event(event: dict[str, object], lines: list[SettlementEntry]) -> None:
    """One ledger movement's entries are exactly its movement between parties."""
    kind, amount = str(event["kind"]), int(event["amount_fen"])  # type: ignore[call-overload]
    ref = event["partner_ref"]
    by_partner = {line.partner_id: line.amount_fen for line in lines}
    assert sum(by_partner.values()) == 0
    if kind == "funding_share" and ref != "lender":
        assert by_partner == {REF_IDS[str(ref)]: -amount, LENDER: amount}
    elif kind == "channel_commission":
        assert by_partner == {REF_IDS[str(ref)]: amount, LENDER: -amount}
    elif kind in ("interest_repaid", "fee_repaid", "penalty_repaid"):
        share_kind = EntryKind.INTEREST_SHARE if kind == "interest_repaid" else EntryKind.FEE_SHARE
        for funder, share_ppm in FUNDER_SHARES.items():
            received = sum(
                line.amount_fen
                for line in lines
                if line.partner_id == funder and line.kind is share_kind
            )
            magnitude = abs(amount) * share_ppm // 1_000_000
            assert received == (magnitude if amount > 0 else -magnitude)
    else:
        assert lines == []


def _funder_principal_matches_ledger(conn: Connection, entries: list[SettlementEntry]) -> None:
    """Each funder's principal entries over all cycles = minus its funding payable balance."""
    principal_kinds = {
        EntryKind.PRINCIPAL_FUNDED,
        EntryKind.PRINCIPAL_REPAID,
        EntryKind.REFUND,
        EntryKind.CHARGE_OFF,
    }
    for ref in ("bank-a", "bank-b"):
        accounts = ledger_account_table
        payable = conn.execute(
            select(func.coalesce(func.sum(accounts.c.balance_fen), 0)).where(
                (accounts.c.account_type == AccountType.FUNDING_PAYABLE.value)
                & (accounts.c.partner_ref == ref)
            )
        ).scalar_one()
        settled = sum(
            entry.amount_fen
            for entry in entries
            if entry.partner_id == REF_IDS[ref] and entry.kind in principal_kinds
        )
        assert settled == int(payable)  # payable is credit-normal: negative when owed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_fen_of_every_movement_lands_in_exactly_one_entry_of_one_cycle(
    database: Database, seed: int
) -> None:
    rng = random.Random(seed)
    books = Books(database)
    books.setup()
    closed: list[date] = []
    for _ in range(3):
        day = random_day(books, rng, operations=12)
        close_settlement_cycle(database, day, salts=SALTS)
        closed.append(day)
    with database.engine.connect() as conn:
        all_entries: list[SettlementEntry] = []
        for day in closed:
            all_entries += _check_cycle(conn, get_cycle_id(day))
        events = conn.execute(select(settlement_event_table)).mappings().all()
        claims = conn.execute(select(event_claim_table)).all()
        assert sorted(int(event_id) for event_id, _ in claims) == sorted(
            int(event["id"]) for event in events
        )
        by_event: dict[int, list[SettlementEntry]] = defaultdict(list)
        for entry in all_entries:
            by_event[int(entry.source_ref)].append(entry)
        for event in events:
            _check_event(dict(event), by_event.pop(int(event["id"]), []))
        assert by_event == {}
        _funder_principal_matches_ledger(conn, all_entries)


def test_close_is_idempotent_and_the_books_recompute_the_same_report(database: Database) -> None:
    books = Books(database)
    books.setup()
    day = random_day(books, random.Random(7), operations=10)
    first = close_settlement_cycle(database, day, salts=SALTS)
    again = close_settlement_cycle(database, day, salts=SALTS)
    assert again == first
    assert recompute_cycle_report(database, first.cycle_id, SALTS) == first.report
    other_secret = recompute_cycle_report(database, first.cycle_id, LeafSalts(b"another"))
    assert other_secret is not None and other_secret.entries_root != first.root
    with database.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cycle_table)).scalar_one() == 1


def test_an_event_posted_after_its_date_closed_goes_to_the_next_cycle(database: Database) -> None:
    books = Books(database)
    books.setup()
    books.purchase(books.line_ids[0], 10_000)
    early = close_settlement_cycle(database, _today(database), salts=SALTS)
    books.purchase(books.line_ids[1], 20_000, "pos")  # same business date, after the close
    day = books.end_day()
    books.purchase(books.line_ids[2], 30_000)
    late = close_settlement_cycle(database, books.end_day(), salts=SALTS)
    assert early.cycle_id == get_cycle_id(day)
    with database.engine.connect() as conn:
        late_entries = _check_cycle(conn, late.cycle_id)
        pos_commissions = [e for e in late_entries if e.partner_id == POS]
        assert [e.amount_fen for e in pos_commissions] == [20_000 * 55 // 10_000]
        claimed = conn.execute(select(func.count()).select_from(event_claim_table)).scalar_one()
        total = conn.execute(select(func.count()).select_from(settlement_event_table)).scalar_one()
        assert claimed == total


def _today(database: Database) -> date:
    from node_api.ledger.business_date import fetch_business_date

    with database.engine.connect() as conn:
        today = fetch_business_date(conn)
    assert today is not None
    return today


def _nothing_written(database: Database) -> None:
    with database.engine.connect() as conn:
        for table in (cycle_table, entry_table, position_table, event_claim_table):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_RevertWhen_the_cycle_does_not_balance_nothing_is_written(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    books = Books(database)
    books.setup()
    books.purchase(books.line_ids[0], 10_000)
    from settlement.allocate_events import compute_cycle_entries as real

    def skewed(*args: object, **kwargs: object) -> list[SettlementEntry]:
        entries = real(*args, **kwargs)  # type: ignore[arg-type]
        return [*entries[:-1], replace(entries[-1], amount_fen=entries[-1].amount_fen + 1)]

    monkeypatch.setattr("settlement.cycle_close.compute_cycle_entries", skewed)
    with pytest.raises(CycleNotBalancedError) as raised:
        close_settlement_cycle(database, _today(database), salts=SALTS)
    assert raised.value.sum_fen == 1
    _nothing_written(database)


def test_RevertWhen_a_partner_in_the_books_is_not_registered_nothing_is_written(
    database: Database,
) -> None:
    books = Books(database)
    books.setup(partner_refs=("lender", "bank-a", "app", "pos", "guard"))
    books.purchase(books.line_ids[0], 10_000)
    with pytest.raises(ConflictError) as raised:
        close_settlement_cycle(database, _today(database), salts=SALTS)
    assert raised.value.code == "partner_not_registered"
    _nothing_written(database)


def test_RevertWhen_an_earlier_date_is_closed_after_a_later_one(database: Database) -> None:
    books = Books(database)
    books.setup()
    first = books.end_day()
    second = books.end_day()
    close_settlement_cycle(database, second, salts=SALTS)
    with pytest.raises(ConflictError) as raised:
        close_settlement_cycle(database, first, salts=SALTS)
    assert raised.value.code == "cycle_out_of_order"


def test_a_day_without_partner_movements_is_an_empty_cycle_that_never_goes_on_chain(
    database: Database,
) -> None:
    books = Books(database)
    books.setup()
    day = books.end_day()
    signers = _signer_set(database)
    cycle = close_settlement_cycle(database, day, signers, salts=SALTS)
    assert cycle.state is CycleState.EMPTY and cycle.entry_count == 0
    with database.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OUTBOX_TABLE).where(
            OUTBOX_TABLE.c.kind == OutboxKind.CYCLE_PROPOSE.value)).scalar_one() == 0  # fmt: skip


def _signer_set(database: Database, salts: LeafSalts = SALTS) -> SignerSet:
    sources = settlement_report_sources(database, salts)
    accounts = LocalAccounts().signers(3)
    return SignerSet([LocalSigner(account, sources, DOMAIN) for account in accounts], 2)


def test_signers_recompute_the_cycle_and_the_proposal_is_queued_with_its_finalization(
    database: Database,
) -> None:
    books = Books(database)
    books.setup()
    day = random_day(books, random.Random(11), operations=8)
    cycle = close_settlement_cycle(database, day, _signer_set(database), salts=SALTS)
    assert cycle.state is CycleState.PROPOSED and len(cycle.signatures) == 3
    with database.engine.connect() as conn:
        rows = {
            row.kind: row.payload
            for row in conn.execute(select(OUTBOX_TABLE.c.kind, OUTBOX_TABLE.c.payload))
        }
    proposal = rows[OutboxKind.CYCLE_PROPOSE.value]
    assert proposal["entries_root"] == "0x" + (cycle.entries_root or b"").hex()
    assert proposal["net_positions_fen"] == list(cycle.net_positions_fen)
    assert rows[OutboxKind.CYCLE_FINALIZE.value] == {"cycle_id": cycle.cycle_id}
    assert close_settlement_cycle(database, day, _signer_set(database), salts=SALTS) == cycle


def test_RevertWhen_the_stored_cycle_differs_from_the_books_signers_refuse(
    database: Database,
) -> None:
    books = Books(database)
    books.setup()
    day = random_day(books, random.Random(5), operations=8)
    frozen = close_settlement_cycle(database, day, salts=SALTS)
    with database.engine.begin() as conn:  # the lender alters the frozen entries' root
        conn.execute(
            update(cycle_table)
            .where(cycle_table.c.cycle_id == frozen.cycle_id)
            .values(entries_root="0x" + "ab" * 32)
        )
    with pytest.raises(QuorumNotReachedError):
        close_settlement_cycle(database, day, _signer_set(database), salts=SALTS)
    with database.engine.connect() as conn:
        stored = fetch_cycle(conn, frozen.cycle_id)
        assert stored is not None and stored.state is CycleState.CLOSED
        assert conn.execute(select(func.count()).select_from(OUTBOX_TABLE).where(
            OUTBOX_TABLE.c.kind == OutboxKind.CYCLE_PROPOSE.value)).scalar_one() == 0  # fmt: skip


def test_RevertWhen_the_signers_salt_with_another_secret_they_refuse(database: Database) -> None:
    books = Books(database)
    books.setup()
    day = random_day(books, random.Random(5), operations=8)
    with pytest.raises(QuorumNotReachedError):
        close_settlement_cycle(
            database, day, _signer_set(database, LeafSalts(b"another")), salts=SALTS
        )
