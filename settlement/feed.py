"""A partner's feed: every state change of the cycles it is in, in order, with a cursor.

Two sources say what happened to a cycle, and the feed reads both:

- the books' cycle table (`settlement.tables.cycle_table`): a cycle is `closed` (frozen:
  its root, entries and positions are stored, so the partner can download its entries);
- the chain's events as the indexer stored them (`oracles.tables.EVENT_TABLE`, the very
  events it folds into `CHAIN_CYCLE_TABLE`): `CycleProposed` (proposed, with its dispute
  deadline), `CycleDisputed`, `DisputeResolved` (rejected when upheld, proposed again
  when not), `CycleFinalized`, `CycleFullyFunded` (funded) and `CycleDefaulted`.

A cycle concerns a partner when the books or the ClearingHouse list a position of it.

**The cursor** (`FeedCursor`, written `chain.closed_us.cycle`) is where a reader stands in
both sources at once: the id of the last chain event it was given (ids grow in the order
the indexer stores events, which is chain order) and the (closed time in microseconds,
cycle id) of the last books close it was given (cycles close one at a time, so that
order is the order of their commits). Each event carries the cursor just past it; every
part only grows, so a reader that resumes after any event's cursor gets each later event
exactly once. Within one read, books closes come first and a chain event is held back
until its cycle's close was given, so a cycle's `closed` always precedes its chain events.

Limits: a chain reorganization removes the rolled-back events and the indexer stores the
canonical ones anew; a reader already past the removed ones is not told they went, and on
SQLite (whose row ids are reused after the highest rows are deleted) it may miss their
replacements. The ClearingHouse itself stays the reference (`creditnet verify` reads it).

Every function takes a connection and only reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import String, and_, cast, literal, or_, select, union
from sqlalchemy.engine import Connection

from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import FEN_ZERO, Fen
from oracles.tables import CHAIN_CYCLE_TABLE, CHAIN_POSITION_TABLE, EVENT_TABLE
from settlement.netting import CycleState, get_cycle_attempt, get_cycle_date
from settlement.tables import cycle_table, position_table

FEED_BATCH_MAX: Final = 500
"""The most events one read returns (a reader catching up reads again at once)."""

BOOKS_CLOSED: Final = "closed"
"""The status of a books event: the cycle is frozen in the books."""

_EPOCH: Final = datetime(1970, 1, 1)
_MICROSECOND: Final = timedelta(microseconds=1)
_CURSOR_PATTERN: Final = re.compile(r"^(\d{1,19})\.(\d{1,19})\.(\d{1,19})$")
_STATUS_EVENTS: Final = {
    "CycleProposed": CycleStatus.PROPOSED,
    "CycleDisputed": CycleStatus.DISPUTED,
    "DisputeResolved": CycleStatus.REJECTED,  # PROPOSED again when not upheld
    "CycleFinalized": CycleStatus.FINALIZED,
    "CycleFullyFunded": CycleStatus.FUNDED,
    "CycleDefaulted": CycleStatus.DEFAULTED,
}
"""The ClearingHouse events that change a cycle's status, and the status they set."""


@dataclass(frozen=True, slots=True, order=True)
class FeedCursor:
    """Where a reader stands: the last chain event id and the last books close given."""

    chain_event_id: int = 0
    closed_at_us: int = 0
    closed_cycle_id: int = 0

    def __str__(self) -> str:
        return f"{self.chain_event_id}.{self.closed_at_us}.{self.closed_cycle_id}"

    @classmethod
    def parse(cls, text: str, *, field: str = "Last-Event-ID") -> FeedCursor:
        """The cursor written by `str`; CreditNetValueError for anything else."""
        match = _CURSOR_PATTERN.fullmatch(text.strip())
        if match is None:
            raise CreditNetValueError(
                "not a feed cursor: give the `id` of the last event received", field=field
            )
        chain_event_id, closed_at_us, closed_cycle_id = (int(part) for part in match.groups())
        if max(chain_event_id, closed_at_us, closed_cycle_id) >= 2**63:
            raise CreditNetValueError("feed cursor out of range", field=field)
        return cls(chain_event_id, closed_at_us, closed_cycle_id)

    @property
    def closed_at(self) -> datetime:
        """The books part's close time (naive UTC, as the books store it)."""
        return _EPOCH + self.closed_at_us * _MICROSECOND


START: Final = FeedCursor()
"""Before every event: a reader starting here gets the whole history."""


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One state change of a cycle that concerns the partner, and the cursor past it.

    `status` is `closed` for a books event, else the ClearingHouse status the chain event
    set (`proposed` ... `defaulted`). `net_position_fen` is the partner's: the books' for
    a books event, the ClearingHouse's for a chain event.
    """

    cursor: FeedCursor
    cycle_id: int
    status: str
    source: str
    """`books` or `chain`."""
    chain_event: str | None
    entries_root: str | None
    dispute_deadline: int | None
    """Unix seconds until which the partner may dispute; known once proposed on-chain."""
    net_position_fen: Fen
    block_number: int | None
    tx_hash: str | None

    def to_json(self) -> dict[str, object]:
        """The event's JSON form: every field but the cursor, with the cycle's business date
        and attempt (amounts in fen, times in unix seconds)."""
        values: dict[str, object] = {
            item.name: getattr(self, item.name) for item in fields(self) if item.name != "cursor"
        }
        values["cycle_date"] = get_cycle_date(self.cycle_id).isoformat()
        values["attempt"] = get_cycle_attempt(self.cycle_id)
        return values


def _closed_at_us(value: datetime) -> int:
    return (value.replace(tzinfo=None) - _EPOCH) // _MICROSECOND


def _books_events(
    conn: Connection, partner_id: int, after: FeedCursor, limit: int
) -> list[tuple[int, int, str | None, Fen]]:
    """(closed_at_us, cycle_id, root, net position) of the partner's closes after `after`."""
    cycles, positions = cycle_table, position_table
    after_time = after.closed_at
    rows = conn.execute(
        select(
            cycles.c.closed_at,
            cycles.c.cycle_id,
            cycles.c.entries_root,
            positions.c.net_position_fen,
        )
        .join(
            positions,
            and_(positions.c.cycle_id == cycles.c.cycle_id, positions.c.partner_id == partner_id),
        )
        .where(
            cycles.c.status != CycleState.EMPTY.value,
            or_(
                cycles.c.closed_at > after_time,
                and_(
                    cycles.c.closed_at == after_time,
                    cycles.c.cycle_id > after.closed_cycle_id,
                ),
            ),
        )
        .order_by(cycles.c.closed_at, cycles.c.cycle_id)
        .limit(limit)
    ).all()
    return [
        (_closed_at_us(closed_at), int(cycle_id), root, Fen(int(net)))
        for closed_at, cycle_id, root, net in rows
    ]


def _own_cycle_subjects(partner_id: int) -> Any:
    """The chain-event subjects (`cycle:N`) of every cycle the partner is in."""
    own = union(
        select(position_table.c.cycle_id.label("cycle_id")).where(
            position_table.c.partner_id == partner_id
        ),
        select(CHAIN_POSITION_TABLE.c.cycle_id.label("cycle_id")).where(
            CHAIN_POSITION_TABLE.c.partner_id == partner_id
        ),
    ).subquery()
    return select(literal("cycle:") + cast(own.c.cycle_id, String))


def _chain_rows(conn: Connection, partner_id: int, after: FeedCursor, limit: int) -> Sequence[Any]:
    events = EVENT_TABLE
    return conn.execute(
        select(
            events.c.id,
            events.c.event,
            events.c.subject,
            events.c.args,
            events.c.block_number,
            events.c.tx_hash,
        )
        .where(
            events.c.id > after.chain_event_id,
            events.c.event.in_(list(_STATUS_EVENTS)),
            events.c.subject.in_(_own_cycle_subjects(partner_id)),
        )
        .order_by(events.c.id)
        .limit(limit)
    ).all()


def _by_cycle(conn: Connection, table: Any, cycle_ids: set[int], *columns: Any) -> dict[int, Any]:
    if not cycle_ids:
        return {}
    rows = conn.execute(
        select(table.c.cycle_id, *columns).where(table.c.cycle_id.in_(sorted(cycle_ids)))
    ).all()
    return {int(row[0]): row[1:] for row in rows}


def _positions(
    conn: Connection, table: Any, partner_id: int, cycle_ids: set[int]
) -> dict[int, Fen]:
    if not cycle_ids:
        return {}
    rows = conn.execute(
        select(table.c.cycle_id, table.c.net_position_fen).where(
            table.c.partner_id == partner_id, table.c.cycle_id.in_(sorted(cycle_ids))
        )
    ).all()
    return {int(cycle_id): Fen(int(net)) for cycle_id, net in rows}


def _proposed_position(args: Mapping[str, Any], partner_id: int) -> Fen | None:
    partners = [int(value) for value in args.get("partnerIds", ())]
    if partner_id not in partners:
        return None
    return Fen(int(args["netPositions"][partners.index(partner_id)]))


def _chain_status(event: str, args: Mapping[str, Any]) -> str:
    status = _STATUS_EVENTS[event]
    if event == "DisputeResolved" and not args.get("upheld"):
        status = CycleStatus.PROPOSED
    return status.name.lower()


def _chain_events(
    conn: Connection, partner_id: int, after: FeedCursor, limit: int, books_cursor: FeedCursor
) -> list[FeedEvent]:
    """The chain part of a read, stopped before the first event whose cycle closed in
    the books after `books_cursor` (its close is given first, on the next read)."""
    rows = _chain_rows(conn, partner_id, after, limit)
    cycle_ids = {int(str(row.subject).partition(":")[2]) for row in rows}
    mirrored = _by_cycle(
        conn, CHAIN_CYCLE_TABLE, cycle_ids, CHAIN_CYCLE_TABLE.c.entries_root,
        CHAIN_CYCLE_TABLE.c.dispute_deadline,
    )  # fmt: skip
    closes = _by_cycle(conn, cycle_table, cycle_ids, cycle_table.c.closed_at)
    on_chain = _positions(conn, CHAIN_POSITION_TABLE, partner_id, cycle_ids)
    in_books = _positions(conn, position_table, partner_id, cycle_ids)
    books_key = (books_cursor.closed_at_us, books_cursor.closed_cycle_id)
    found: list[FeedEvent] = []
    for row in rows:
        cycle_id = int(str(row.subject).partition(":")[2])
        closed = closes.get(cycle_id)
        if closed is not None and (_closed_at_us(closed[0]), cycle_id) > books_key:
            break
        args: Mapping[str, Any] = row.args or {}
        root, deadline = mirrored.get(cycle_id, (None, None))
        net = on_chain.get(cycle_id, in_books.get(cycle_id, FEN_ZERO))
        if row.event == "CycleProposed":
            root, deadline = args.get("entriesRoot", root), args.get("disputeDeadline", deadline)
            proposed = _proposed_position(args, partner_id)
            net = net if proposed is None else proposed
        found.append(
            FeedEvent(
                cursor=replace(books_cursor, chain_event_id=int(row.id)),
                cycle_id=cycle_id,
                status=_chain_status(str(row.event), args),
                source="chain",
                chain_event=str(row.event),
                entries_root=None if root is None else str(root),
                dispute_deadline=None if deadline is None else int(deadline),
                net_position_fen=net,
                block_number=int(row.block_number),
                tx_hash=str(row.tx_hash),
            )
        )
    return found


def fetch_feed_events(
    conn: Connection, partner_id: int, after: FeedCursor, limit: int = FEED_BATCH_MAX
) -> list[FeedEvent]:
    """The partner's next events after `after`, oldest first, at most about `limit`
    (module doc: books closes first, then chain events). Empty when there is nothing new."""
    if not 0 < limit <= FEED_BATCH_MAX:
        raise CreditNetValueError(f"limit must be 1..{FEED_BATCH_MAX}", field="limit")
    books: list[FeedEvent] = []
    cursor = after
    for closed_at_us, cycle_id, root, net in _books_events(conn, partner_id, after, limit):
        cursor = replace(cursor, closed_at_us=closed_at_us, closed_cycle_id=cycle_id)
        books.append(
            FeedEvent(
                cursor=cursor,
                cycle_id=cycle_id,
                status=BOOKS_CLOSED,
                source="books",
                chain_event=None,
                entries_root=root,
                dispute_deadline=None,
                net_position_fen=net,
                block_number=None,
                tx_hash=None,
            )
        )
    if len(books) == limit:  # more closes may follow: give them before any chain event
        return books
    return books + _chain_events(conn, partner_id, after, limit, cursor)
