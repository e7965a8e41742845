"""A partner's cycles and money through them, paged and aggregated in SQL for the console.

The cycle list is one query per page: the partner's stored positions joined with the
cycles and with what the indexer mirrored of each cycle and position on-chain, newest
first, paged by cycle id (`before`).

Amounts are the partner's settlement entries as the books hold them (positive: the
partner receives; negative: it pays). Cash flows per cycle sum them by entry kind for
the partner's latest cycles. Funded principal by month reads only two kinds: principal
the partner funded (`PRINCIPAL_FUNDED`, negative for a funder: it pays the lender its
share of each disbursement) and principal paid back to it (`PRINCIPAL_REPAID`,
positive); outstanding is funded minus repaid, cumulated month by month over the cycle
dates. Void cycles (rejected, defaulted) are left out: their events are settled again
under the date's next attempt, so counting both would count them twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, extract, func, select
from sqlalchemy.engine import Connection

from node_api.kernel.chain import EntryKind
from node_api.kernel.money import FEN_ZERO, Fen
from oracles.tables import CHAIN_CYCLE_TABLE, CHAIN_POSITION_TABLE
from settlement.netting import CycleState
from settlement.tables import cycle_table, entry_table, partner_table, position_table

VOID_STATES = tuple(state.value for state in CycleState if state.is_void)


@dataclass(frozen=True, slots=True)
class CycleFlows:
    cycle_id: int
    cycle_date: date
    by_kind_fen: dict[str, Fen]
    """Kind name (lower case) to the sum of the partner's entries of that kind."""
    net_fen: Fen


@dataclass(frozen=True, slots=True)
class MonthPrincipal:
    month: str
    """`YYYY-MM` of the cycle dates."""
    funded_fen: Fen
    repaid_fen: Fen
    outstanding_fen: Fen
    """Funded minus repaid, cumulated through this month."""


@dataclass(frozen=True, slots=True)
class PartnerCycleRow:
    """One cycle the partner has a position in: the books' facts, then the chain's as the
    indexer mirrored them (None before it saw the cycle or the position)."""

    cycle_id: int
    cycle_date: date
    books_state: str
    entries_root: str
    net_position_fen: Fen
    entry_count: int
    chain_status: int | None
    chain_funded_fen: Fen | None
    chain_claimed_fen: Fen | None
    chain_settled_fen: Fen | None
    chain_disputed: bool | None


def fetch_partner_ref(conn: Connection, partner_id: int) -> str | None:
    """The id the books use for the partner (funding splits, payables), or None."""
    ref = conn.execute(
        select(partner_table.c.ref).where(partner_table.c.id == partner_id)
    ).scalar_one_or_none()
    return None if ref is None else str(ref)


def fetch_partner_cycle_page(
    conn: Connection, partner_id: int, *, limit: int, before: int | None = None
) -> list[PartnerCycleRow]:
    """The partner's cycles with a root, newest first, `limit` of them below `before`."""
    position, cycle = position_table, cycle_table
    chain, chain_position = CHAIN_CYCLE_TABLE, CHAIN_POSITION_TABLE
    query = (
        select(
            position.c.cycle_id,
            cycle.c.cycle_date,
            cycle.c.status,
            cycle.c.entries_root,
            position.c.net_position_fen,
            position.c.entry_count,
            chain.c.status,
            chain.c.funded_fen,
            chain.c.claimed_fen,
            chain_position.c.settled_fen,
            chain_position.c.disputed,
        )
        .join(cycle, cycle.c.cycle_id == position.c.cycle_id)
        .outerjoin(chain, chain.c.cycle_id == position.c.cycle_id)
        .outerjoin(
            chain_position,
            and_(
                chain_position.c.cycle_id == position.c.cycle_id,
                chain_position.c.partner_id == position.c.partner_id,
            ),
        )
        .where(position.c.partner_id == partner_id, cycle.c.entries_root.is_not(None))
        .order_by(position.c.cycle_id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(position.c.cycle_id < before)
    return [
        PartnerCycleRow(
            cycle_id=int(row[0]),
            cycle_date=row[1],
            books_state=str(row[2]),
            entries_root=str(row[3]),
            net_position_fen=Fen(int(row[4])),
            entry_count=int(row[5]),
            chain_status=None if row[6] is None else int(row[6]),
            chain_funded_fen=None if row[7] is None else Fen(int(row[7])),
            chain_claimed_fen=None if row[8] is None else Fen(int(row[8])),
            chain_settled_fen=None if row[9] is None else Fen(int(row[9])),
            chain_disputed=None if row[10] is None else bool(row[10]),
        )
        for row in conn.execute(query)
    ]


def fetch_cash_flows(conn: Connection, partner_id: int, *, limit: int) -> list[CycleFlows]:
    """The partner's entries summed by kind for its latest `limit` cycles that are not
    void, oldest first (the order a chart reads)."""
    latest = (
        select(position_table.c.cycle_id)
        .join(cycle_table, cycle_table.c.cycle_id == position_table.c.cycle_id)
        .where(position_table.c.partner_id == partner_id, cycle_table.c.status.not_in(VOID_STATES))
        .order_by(position_table.c.cycle_id.desc())
        .limit(limit)
        .subquery()
    )
    entries = entry_table
    rows = conn.execute(
        select(
            entries.c.cycle_id,
            cycle_table.c.cycle_date,
            entries.c.kind,
            func.sum(entries.c.amount_fen),
        )
        .join(cycle_table, cycle_table.c.cycle_id == entries.c.cycle_id)
        .where(
            entries.c.partner_id == partner_id, entries.c.cycle_id.in_(select(latest.c.cycle_id))
        )
        .group_by(entries.c.cycle_id, cycle_table.c.cycle_date, entries.c.kind)
        .order_by(entries.c.cycle_id)
    ).all()
    flows: dict[int, CycleFlows] = {}
    for cycle_id, cycle_date, kind, amount in rows:
        item = flows.setdefault(int(cycle_id), CycleFlows(int(cycle_id), cycle_date, {}, FEN_ZERO))
        item.by_kind_fen[EntryKind(int(kind)).name.lower()] = Fen(int(amount))
    return [
        CycleFlows(
            item.cycle_id,
            item.cycle_date,
            item.by_kind_fen,
            Fen(sum(item.by_kind_fen.values())),
        )
        for item in flows.values()
    ]


def fetch_funded_principal_by_month(conn: Connection, partner_id: int) -> list[MonthPrincipal]:
    """The partner's funded and repaid principal per month of cycle date, with the
    outstanding funded principal cumulated (module doc), oldest month first."""
    entries = entry_table
    year = extract("year", cycle_table.c.cycle_date).label("year")
    month = extract("month", cycle_table.c.cycle_date).label("month")
    kinds = (int(EntryKind.PRINCIPAL_FUNDED), int(EntryKind.PRINCIPAL_REPAID))
    rows = conn.execute(
        select(year, month, entries.c.kind, func.sum(entries.c.amount_fen))
        .join(cycle_table, cycle_table.c.cycle_id == entries.c.cycle_id)
        .where(
            entries.c.partner_id == partner_id,
            entries.c.kind.in_(kinds),
            cycle_table.c.status.not_in(VOID_STATES),
        )
        .group_by(year, month, entries.c.kind)
        .order_by(year, month)
    ).all()
    months: dict[str, dict[int, int]] = {}
    for row_year, row_month, kind, amount in rows:
        key = f"{int(row_year):04d}-{int(row_month):02d}"
        months.setdefault(key, {})[int(kind)] = int(amount)
    result = []
    outstanding = 0
    for key in sorted(months):
        funded = -months[key].get(int(EntryKind.PRINCIPAL_FUNDED), 0)
        repaid = months[key].get(int(EntryKind.PRINCIPAL_REPAID), 0)
        outstanding += funded - repaid
        result.append(MonthPrincipal(key, Fen(funded), Fen(repaid), Fen(outstanding)))
    return result
