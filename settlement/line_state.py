"""The credit-line state of each settled business date, committed on the CreditRegistry
with an oracle-quorum report (never by the relayer alone: the registry has no such path).

What is committed for a business date D (cycle id `yyyymmdd`, the first attempt's id):
one leaf per anchored agreement opened on or before D, `keccak256(keccak256(abi.encode(
bytes32 agreementId, uint64 cycleId, uint256 outstandingFen)))`, under an OpenZeppelin
StandardMerkleTree (`settlement.merkle`), with the leaf count and the sum of the balances.
`CreditRegistry.verifyLineBalance` proves one agreement's balance against the root.

- Anchored agreement: one whose opening the books queued for the chain (an
  `agreement_open` outbox row, whatever its delivery status, so the set of a past date
  never changes), linked to its credit line by the application that opened it
  (`loan_application.agreement_id` / `credit_line_id`), with `openedAt` (unix seconds
  of its opening business date) on or before D.
- Outstanding balance: the line's receivables at the end of D, summed from the postings
  dated on or before D: principal, interest, fees and penalties, each unbilled, billed and
  past due (`RECEIVABLE_ACCOUNT_TYPES`). It is what the borrower owes, the figure
  `GET /v1/credit-lines/{id}/delinquency` reports as `outstanding_fen`, and the principal
  the funders hold shares of is part of it. It is not netted against the customer's credit
  balance (a debt of the lender, not a repayment), and what a charge-off wrote off is no
  longer outstanding. Receivables have a floor of zero, so a balance is never negative.

When: `commit_line_states` (called by the settlement scheduler once per pass) takes every
business date whose settlement cycle was proposed (so the date is finished and its end
of day done) and that has no line state yet, oldest first. For each it computes the
state, asks the signers (each recomputes it from its books through
`ReportSources.line_state`, see `line_state_sources`) and, with a quorum, stores the
state (balances and tree as blobs) and queues the `LineStateCommitment` in the outbox in
one transaction. A date without agreements is stored as `empty` and never goes on-chain.
A date settled again after a void cycle keeps the line state of its first attempt: the
balances of a date do not depend on the clearing attempt. Idempotent: the stored row and
the outbox business key `line_state:{cycle_id}` both say a date is done.

This module reads the books through `node_api.ledger` (postings, accounts) and, like
lending's charge-off notices, names onboarding's application table only by its columns.
"""

from __future__ import annotations

import calendar
import logging
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import pairwise
from typing import Final, overload

import sqlalchemy as sa
from sha3 import keccak_256
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import FEN_ZERO, Fen
from node_api.kernel.outbox import LineStateCommitment, OutboxKind, enqueue_core
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table, posting_table
from node_api.ledger.sql import begin_write
from oracles.signers import (
    LineStateReport,
    QuorumNotReachedError,
    ReportSources,
    SignatureGathering,
    SignerSet,
)
from settlement.merkle import MerkleTree, build_tree
from settlement.netting import CycleState, get_cycle_date, get_cycle_id
from settlement.partners import get_utc_now
from settlement.tables import cycle_table, line_state_table

logger = logging.getLogger(__name__)

RECEIVABLE_ACCOUNT_TYPES: Final[tuple[AccountType, ...]] = (
    AccountType.PRINCIPAL_UNBILLED,
    AccountType.PRINCIPAL_BILLED,
    AccountType.PRINCIPAL_PAST_DUE,
    AccountType.INTEREST_UNBILLED,
    AccountType.INTEREST_BILLED,
    AccountType.INTEREST_PAST_DUE,
    AccountType.FEE_UNBILLED,
    AccountType.FEE_BILLED,
    AccountType.FEE_PAST_DUE,
    AccountType.PENALTY_UNBILLED,
    AccountType.PENALTY_BILLED,
    AccountType.PENALTY_PAST_DUE,
)
"""A line's accounts whose sum is its outstanding balance (see the module doc)."""

SETTLED_CYCLE_STATES: Final = frozenset(
    {CycleState.PROPOSED.value, CycleState.REJECTED.value, CycleState.DEFAULTED.value}
)
"""Cycle states that mean the date's cycle was proposed (the void ones were, too)."""

DATES_PER_PASS_MAX: Final = 31
AGREEMENT_ID_BYTES: Final = 32
BALANCE_BYTES: Final = 8
LEAF_RECORD_BYTES: Final = AGREEMENT_ID_BYTES + BALANCE_BYTES
"""One stored balance: the agreement id, then the outstanding fen as a big-endian uint64."""
INT64_MAX: Final = 2**63 - 1
TREE_CACHE_SIZE: Final = 2


class LineStateStatus:
    """`settlement_line_state.status`."""

    EMPTY = "empty"
    """No agreement on that date: nothing signed, nothing queued."""
    QUEUED = "queued"
    """Signed by a quorum and queued in the outbox (its delivery: the outbox row)."""


_application = sa.table(
    "loan_application",
    sa.column("credit_line_id", sa.BigInteger),
    sa.column("agreement_id", sa.String(66)),
)
"""Onboarding's applications, by the two columns that link an agreement to its line."""


def compute_line_leaf(agreement_id: bytes, cycle_id: int, outstanding_fen: Fen) -> bytes:
    """`keccak256(keccak256(abi.encode(bytes32, uint64, uint256)))`, the leaf
    `CreditRegistry.verifyLineBalance` checks."""
    if len(agreement_id) != AGREEMENT_ID_BYTES:
        raise CreditNetValueError("an agreement id is 32 bytes", field="agreement_id")
    encoded = agreement_id + cycle_id.to_bytes(32, "big") + outstanding_fen.to_bytes(32, "big")
    digest: bytes = keccak_256(keccak_256(encoded).digest()).digest()
    return digest


def get_day_start(as_of: date) -> int:
    """Unix seconds of UTC midnight of a business date (the registry's `openedAt`)."""
    return calendar.timegm(as_of.timetuple())


@dataclass(frozen=True, slots=True)
class LineBalance:
    """One agreement's outstanding balance at the end of a business date, in fen."""

    agreement_id: bytes
    outstanding_fen: Fen

    @property
    def agreement_hex(self) -> str:
        return "0x" + self.agreement_id.hex()


class _AgreementIds(Sequence[bytes]):
    """The agreement ids of packed balances, read straight out of the blob (for bisect)."""

    __slots__ = ("_leaves", "_size")

    def __init__(self, leaves: bytes) -> None:
        self._leaves = leaves
        self._size = len(leaves) // LEAF_RECORD_BYTES

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        offset = index * LEAF_RECORD_BYTES
        return self._leaves[offset : offset + AGREEMENT_ID_BYTES]


@dataclass(frozen=True)
class LineState:
    """A business date's line state: the balances (packed, ascending agreement id) and
    the tree over their leaves in that order, so `tree.proof(i)` proves balance `i`."""

    cycle_id: int
    leaves: bytes
    tree: MerkleTree
    total_outstanding_fen: Fen

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def leaf_count(self) -> int:
        return self.tree.leaf_count

    @property
    def report(self) -> LineStateReport:
        """The `LineStateReport` the signers sign."""
        return LineStateReport(
            self.cycle_id, self.root, self.leaf_count, self.total_outstanding_fen
        )

    def balance(self, index: int) -> LineBalance:
        offset = index * LEAF_RECORD_BYTES
        record = self.leaves[offset : offset + LEAF_RECORD_BYTES]
        return LineBalance(
            record[:AGREEMENT_ID_BYTES], Fen(int.from_bytes(record[AGREEMENT_ID_BYTES:]))
        )

    def balances(self) -> Iterator[LineBalance]:
        for index in range(self.leaf_count):
            yield self.balance(index)

    def find(self, agreement_id: bytes) -> int | None:
        """The position of an agreement's balance, or None when it has none."""
        ids = _AgreementIds(self.leaves)
        position = bisect_left(ids, agreement_id)
        if position == len(ids) or ids[position] != agreement_id:
            return None
        return position


def build_line_state(cycle_id: int, balances: Sequence[LineBalance]) -> LineState | None:
    """The line state over `balances` (any order); None when there are none."""
    if not balances:
        return None
    ordered = sorted(balances, key=lambda balance: balance.agreement_id)
    for before, after in pairwise(ordered):
        if before.agreement_id == after.agreement_id:
            raise CreditNetValueError(
                f"agreement {after.agreement_hex} has two balances", field="agreement_id"
            )
    for balance in ordered:
        if not 0 <= balance.outstanding_fen <= INT64_MAX:
            raise CreditNetValueError(
                f"agreement {balance.agreement_hex}: outstanding balance out of range",
                field="outstanding_fen",
            )
    leaves = b"".join(
        balance.agreement_id + balance.outstanding_fen.to_bytes(BALANCE_BYTES, "big")
        for balance in ordered
    )
    tree = build_tree(
        [compute_line_leaf(b.agreement_id, cycle_id, b.outstanding_fen) for b in ordered]
    )
    total_fen = Fen(sum(balance.outstanding_fen for balance in ordered))
    return LineState(cycle_id, leaves, tree, total_fen)


def fetch_agreement_lines(conn: Connection, as_of: date) -> dict[bytes, int]:
    """Credit line id by agreement id, for every anchored agreement opened on or before
    `as_of` (see the module doc)."""
    outbox, applications = OUTBOX_TABLE, _application
    opening_key = sa.literal("agreement_open:", sa.String) + applications.c.agreement_id
    rows = conn.execute(
        select(applications.c.agreement_id, applications.c.credit_line_id, outbox.c.payload)
        .select_from(applications.join(outbox, outbox.c.business_key == opening_key))
        .where(
            (outbox.c.kind == OutboxKind.AGREEMENT_OPEN.value)
            & applications.c.credit_line_id.is_not(None)
        )
    )
    day_start = get_day_start(as_of)
    lines: dict[bytes, int] = {}
    for agreement_id, line_id, payload in rows:
        if int(payload["opened_at"]) <= day_start:
            lines[bytes.fromhex(str(agreement_id)[2:])] = int(line_id)
    return lines


def fetch_outstanding_by_line(conn: Connection, as_of: date) -> dict[int, Fen]:
    """Every line's outstanding balance (receivables) at the end of `as_of`, in fen;
    lines without receivable postings by then are absent (their balance is zero)."""
    accounts, postings = ledger_account_table, posting_table
    rows = conn.execute(
        select(accounts.c.credit_line_id, func.sum(postings.c.amount_fen * accounts.c.normal_sign))
        .select_from(
            accounts.join(
                postings, (postings.c.account_id == accounts.c.id) & (postings.c.as_of <= as_of)
            )
        )
        .where(
            accounts.c.account_type.in_([kind.value for kind in RECEIVABLE_ACCOUNT_TYPES])
            & accounts.c.credit_line_id.is_not(None)
        )
        .group_by(accounts.c.credit_line_id)
    )
    return {int(line_id): Fen(int(total)) for line_id, total in rows}


def fetch_line_balances(conn: Connection, as_of: date) -> list[LineBalance]:
    """Every anchored agreement's outstanding balance at the end of `as_of`."""
    lines = fetch_agreement_lines(conn, as_of)
    if not lines:
        return []
    outstanding = fetch_outstanding_by_line(conn, as_of)
    return [LineBalance(aid, outstanding.get(line_id, FEN_ZERO)) for aid, line_id in lines.items()]


def compute_line_state(conn: Connection, cycle_date: date) -> LineState | None:
    """The line state of `cycle_date` as the books say it is (None: no agreement)."""
    return build_line_state(get_cycle_id(cycle_date), fetch_line_balances(conn, cycle_date))


def _is_settled_date(conn: Connection, cycle_date: date) -> bool:
    found = conn.execute(
        select(cycle_table.c.cycle_id)
        .where(
            (cycle_table.c.cycle_date == cycle_date)
            & cycle_table.c.status.in_(sorted(SETTLED_CYCLE_STATES))
        )
        .limit(1)
    ).first()
    return found is not None


def recompute_line_state_report(database: Database, cycle_id: int) -> LineStateReport | None:
    """What a signer checks a line-state report against: the state recomputed from the
    books. None unless `cycle_id` is the id of a business date whose cycle the books
    proposed (a finished date) and that date has agreements."""
    try:
        cycle_date = get_cycle_date(cycle_id)
    except CreditNetValueError:
        return None
    if get_cycle_id(cycle_date) != cycle_id:
        return None
    with database.engine.connect() as conn:
        if not _is_settled_date(conn, cycle_date):
            return None
        state = compute_line_state(conn, cycle_date)
    return None if state is None else state.report


def line_state_sources(sources: ReportSources, database: Database) -> ReportSources:
    """`sources` with the line-state recomputation over `database`'s books added (what
    in-process signers need to sign line-state reports)."""

    def source(cycle_id: int) -> LineStateReport | None:
        return recompute_line_state_report(database, cycle_id)

    return replace(sources, line_state=source)


# --- storage -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredLineState:
    """A stored line state without its blobs (root None when `empty`)."""

    cycle_id: int
    cycle_date: date
    status: str
    root: bytes | None
    leaf_count: int
    total_outstanding_fen: Fen
    signatures: tuple[bytes, ...]
    signer_addresses: tuple[str, ...]


_SUMMARY_COLUMNS = (
    line_state_table.c.cycle_id,
    line_state_table.c.cycle_date,
    line_state_table.c.status,
    line_state_table.c.root,
    line_state_table.c.leaf_count,
    line_state_table.c.total_outstanding_fen,
    line_state_table.c.signatures,
    line_state_table.c.signer_addresses,
)


def _stored(values: RowMapping) -> StoredLineState:
    root = values["root"]
    return StoredLineState(
        cycle_id=int(values["cycle_id"]),
        cycle_date=values["cycle_date"],
        status=str(values["status"]),
        root=None if root is None else bytes.fromhex(str(root)[2:]),
        leaf_count=int(values["leaf_count"]),
        total_outstanding_fen=Fen(int(values["total_outstanding_fen"])),
        signatures=tuple(bytes.fromhex(s[2:]) for s in values["signatures"] or ()),
        signer_addresses=tuple(str(a) for a in values["signer_addresses"] or ()),
    )


def fetch_line_state(conn: Connection, cycle_id: int) -> StoredLineState | None:
    """The stored line state of a cycle id, or None."""
    row = conn.execute(
        select(*_SUMMARY_COLUMNS).where(line_state_table.c.cycle_id == cycle_id)
    ).first()
    return None if row is None else _stored(row._mapping)


def fetch_line_states(conn: Connection) -> list[StoredLineState]:
    """Every stored line state that went to the chain (not `empty`), by cycle id."""
    rows = conn.execute(
        select(*_SUMMARY_COLUMNS)
        .where(line_state_table.c.status != LineStateStatus.EMPTY)
        .order_by(line_state_table.c.cycle_id)
    )
    return [_stored(row._mapping) for row in rows]


def fetch_latest_line_state(conn: Connection) -> StoredLineState | None:
    """The newest line state that went to the chain, or None."""
    row = conn.execute(
        select(*_SUMMARY_COLUMNS)
        .where(line_state_table.c.status != LineStateStatus.EMPTY)
        .order_by(line_state_table.c.cycle_id.desc())
        .limit(1)
    ).first()
    return None if row is None else _stored(row._mapping)


class _LineStateCache:
    """The last few line states loaded, by (cycle id, root): a stored one never changes."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._states: OrderedDict[tuple[int, bytes], LineState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, bytes]) -> LineState | None:
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
            return state

    def put(self, key: tuple[int, bytes], state: LineState) -> None:
        with self._lock:
            self._states[key] = state
            while len(self._states) > self._size:
                self._states.popitem(last=False)


_STATES = _LineStateCache(TREE_CACHE_SIZE)


def load_line_state(conn: Connection, stored: StoredLineState, *, cache: bool = True) -> LineState:
    """The stored balances and tree of a line state (cached unless `cache` is False);
    ConflictError when the blobs do not match the stored root, count and total."""
    if stored.root is None:
        raise NotFoundError(f"cycle {stored.cycle_id} has no line state", field="cycle_id")
    key = (stored.cycle_id, stored.root)
    cached = _STATES.get(key)
    if cached is not None:
        return cached
    row = conn.execute(
        select(line_state_table.c.leaves_blob, line_state_table.c.tree_blob).where(
            line_state_table.c.cycle_id == stored.cycle_id
        )
    ).one()
    leaves, tree = bytes(row.leaves_blob), MerkleTree.from_bytes(bytes(row.tree_blob))
    total_fen = Fen(
        sum(
            int.from_bytes(leaves[offset + AGREEMENT_ID_BYTES : offset + LEAF_RECORD_BYTES])
            for offset in range(0, len(leaves), LEAF_RECORD_BYTES)
        )
    )
    state = LineState(stored.cycle_id, leaves, tree, total_fen)
    if (
        state.root != stored.root
        or state.leaf_count != stored.leaf_count
        or len(leaves) != state.leaf_count * LEAF_RECORD_BYTES
        or total_fen != stored.total_outstanding_fen
    ):
        raise ConflictError(
            f"the stored line state of cycle {stored.cycle_id} does not match its root",
            field="cycle_id",
            code="line_state_corrupt",
        )
    if cache:
        _STATES.put(key, state)
    return state


def _store_empty(conn: Connection, cycle_id: int, cycle_date: date) -> None:
    conn.execute(
        insert(line_state_table).values(
            cycle_id=cycle_id,
            cycle_date=cycle_date,
            status=LineStateStatus.EMPTY,
            root=None,
            leaf_count=0,
            total_outstanding_fen=0,
            created_at=get_utc_now(),
        )
    )


def _store_queued(
    conn: Connection, cycle_date: date, state: LineState, gathering: SignatureGathering
) -> None:
    conn.execute(
        insert(line_state_table).values(
            cycle_id=state.cycle_id,
            cycle_date=cycle_date,
            status=LineStateStatus.QUEUED,
            root="0x" + state.root.hex(),
            leaf_count=state.leaf_count,
            total_outstanding_fen=state.total_outstanding_fen,
            signatures=["0x" + signature.hex() for signature in gathering.signatures],
            signer_addresses=list(gathering.signers),
            leaves_blob=state.leaves,
            tree_blob=state.tree.to_bytes(),
            created_at=get_utc_now(),
        )
    )
    commitment = LineStateCommitment(
        cycle_id=state.cycle_id,
        root=state.root,
        leaf_count=state.leaf_count,
        total_outstanding_fen=state.total_outstanding_fen,
        signatures=tuple(gathering.signatures),
    )
    enqueue_core(conn, [commitment])


def _write_once(database: Database, cycle_id: int, write: Callable[[Connection], None]) -> None:
    """Run `write` in a write transaction unless the line state is stored already (a
    concurrent committer that won keeps its row)."""
    try:
        with database.engine.begin() as conn:
            begin_write(conn)
            if fetch_line_state(conn, cycle_id) is None:
                write(conn)
    except IntegrityError:
        with database.engine.connect() as conn:
            if fetch_line_state(conn, cycle_id) is None:
                raise


def commit_line_state(database: Database, cycle_date: date, signers: SignerSet) -> StoredLineState:
    """Compute, sign and queue the line state of `cycle_date` (see the module doc); the
    stored one when it exists. QuorumNotReachedError when too few signers agree."""
    cycle_id = get_cycle_id(cycle_date)
    with database.engine.connect() as conn:
        existing = fetch_line_state(conn, cycle_id)
        if existing is not None:
            return existing
        state = compute_line_state(conn, cycle_date)
    if state is None:
        _write_once(database, cycle_id, lambda conn: _store_empty(conn, cycle_id, cycle_date))
    else:
        gathering = signers.gather_line_state_signatures(state.report)
        if gathering.refusals:
            logger.warning(
                "signers refused a line-state report",
                extra={"cycle_id": cycle_id, "refusals": len(gathering.refusals)},
            )
        _write_once(
            database, cycle_id, lambda conn: _store_queued(conn, cycle_date, state, gathering)
        )
    with database.engine.connect() as conn:
        stored = fetch_line_state(conn, cycle_id)
    assert stored is not None
    logger.info(
        "line state stored",
        extra={"cycle_id": cycle_id, "status": stored.status, "leaves": stored.leaf_count},
    )
    return stored


def fetch_dates_without_line_state(conn: Connection, limit: int = DATES_PER_PASS_MAX) -> list[date]:
    """Business dates whose cycle was proposed and that have no line state, oldest first."""
    stored = select(line_state_table.c.cycle_date).scalar_subquery()
    dates = conn.execute(
        select(cycle_table.c.cycle_date)
        .where(
            cycle_table.c.status.in_(sorted(SETTLED_CYCLE_STATES))
            & cycle_table.c.cycle_date.not_in(stored)
        )
        .group_by(cycle_table.c.cycle_date)
        .order_by(cycle_table.c.cycle_date)
        .limit(limit)
    ).scalars()
    return list(dates)


@dataclass
class LineStatePass:
    """What one `commit_line_states` call did, by cycle id."""

    queued: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    """Dates the signers did not sign (retried next pass), with why."""


def commit_line_states(
    database: Database, signers: SignerSet, *, limit: int = DATES_PER_PASS_MAX
) -> LineStatePass:
    """Commit the line state of every proposed cycle's date that has none, oldest first
    (at most `limit`). A date without a quorum is logged and left for the next pass."""
    done = LineStatePass()
    with database.engine.connect() as conn:
        dates = fetch_dates_without_line_state(conn, limit)
    for cycle_date in dates:
        try:
            stored = commit_line_state(database, cycle_date, signers)
        except QuorumNotReachedError as error:
            cycle_id = get_cycle_id(cycle_date)
            logger.warning("line state not signed by a quorum", extra={"cycle_id": cycle_id})
            done.refused[cycle_id] = error.detail
            continue
        if stored.status == LineStateStatus.EMPTY:
            done.empty.append(stored.cycle_id)
        else:
            done.queued.append(stored.cycle_id)
    return done


# --- proofs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineBalanceProof:
    """One agreement's balance in a committed line state, with its proof (leaf to root)
    and the delivery of the commitment (its outbox row)."""

    agreement_id: str
    cycle_id: int
    outstanding_fen: Fen
    leaf: bytes
    proof: list[bytes]
    root: bytes
    leaf_count: int
    total_outstanding_fen: Fen
    outbox_status: str | None
    tx_hash: str | None


def _parse_agreement_id(agreement_id: str) -> bytes:
    text = agreement_id.lower()
    if not text.startswith("0x") or len(text) != 66:
        raise CreditNetValueError("an agreement id is 0x + 64 hex digits", field="agreement_id")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise CreditNetValueError(
            "an agreement id is 0x + 64 hex digits", field="agreement_id"
        ) from None


def prove_line_balance(
    conn: Connection, agreement_id: str, cycle_id: int | None = None
) -> LineBalanceProof:
    """An agreement's balance in the line state of `cycle_id` (default: the newest) with
    its Merkle proof. NotFoundError when there is no such line state or the agreement has
    no balance in it."""
    wanted = _parse_agreement_id(agreement_id)
    stored = fetch_latest_line_state(conn) if cycle_id is None else fetch_line_state(conn, cycle_id)
    if stored is None or stored.root is None:
        where = "any cycle" if cycle_id is None else f"cycle {cycle_id}"
        raise NotFoundError(f"no line state was committed for {where}", field="cycle_id")
    state = load_line_state(conn, stored)
    index = state.find(wanted)
    if index is None:
        raise NotFoundError(
            f"the line state of cycle {stored.cycle_id} has no balance for this agreement",
            field="agreement_id",
        )
    balance = state.balance(index)
    leaf = compute_line_leaf(wanted, stored.cycle_id, balance.outstanding_fen)
    if state.tree.leaf(index) != leaf:
        raise ConflictError(
            f"the stored line state of cycle {stored.cycle_id} does not match its tree",
            field="cycle_id",
            code="line_state_corrupt",
        )
    delivery = conn.execute(
        select(OUTBOX_TABLE.c.status, OUTBOX_TABLE.c.tx_hash).where(
            OUTBOX_TABLE.c.business_key == f"line_state:{stored.cycle_id}"
        )
    ).first()
    return LineBalanceProof(
        agreement_id="0x" + wanted.hex(),
        cycle_id=stored.cycle_id,
        outstanding_fen=balance.outstanding_fen,
        leaf=leaf,
        proof=state.tree.proof(index),
        root=state.root,
        leaf_count=state.leaf_count,
        total_outstanding_fen=state.total_outstanding_fen,
        outbox_status=None if delivery is None else str(delivery.status),
        tx_hash=None if delivery is None or delivery.tx_hash is None else str(delivery.tx_hash),
    )


def iter_line_state_balances(conn: Connection, stored: StoredLineState) -> Iterator[LineBalance]:
    """The balances of a stored line state, ascending agreement id (for the audit export)."""
    yield from load_line_state(conn, stored, cache=False).balances()
