"""What the settlement API shows a partner or an admin, read in one place: the cycles'
and partners' on-chain state as the indexer mirrored it, and the stored positions.

Every function takes a connection and returns typed rows; none writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from node_api.kernel.chain import CycleStatus
from node_api.kernel.money import Fen
from oracles.tables import CHAIN_CYCLE_TABLE, CHAIN_PARTNER_TABLE, CHAIN_POSITION_TABLE
from settlement.tables import position_table

_STATUS_NAMES = {int(s): s.name.lower() for s in CycleStatus if s is not CycleStatus.NONE}


@dataclass(frozen=True, slots=True)
class MirroredCycle:
    """A cycle as the ClearingHouse shows it (mirrored by the indexer)."""

    status: int
    dispute_deadline: int
    funded_fen: Fen
    claimed_fen: Fen
    proposed_tx: str

    @property
    def status_name(self) -> str:
        """`proposed` ... `rejected`; `unknown` for a value the contract does not define."""
        return _STATUS_NAMES.get(self.status, "unknown")


@dataclass(frozen=True, slots=True)
class StoredPosition:
    """A partner's net position in a closed cycle, as the node stored it."""

    cycle_id: int
    partner_id: int
    net_position_fen: Fen
    entry_count: int


@dataclass(frozen=True, slots=True)
class MirroredPosition:
    """A partner's position in a cycle as the ClearingHouse shows it."""

    settled_fen: Fen
    disputed: bool


def fetch_mirrored_cycle(conn: Connection, cycle_id: int) -> MirroredCycle | None:
    """The cycle's on-chain state, or None before the indexer saw it proposed."""
    table = CHAIN_CYCLE_TABLE
    row = conn.execute(
        select(
            table.c.status,
            table.c.dispute_deadline,
            table.c.funded_fen,
            table.c.claimed_fen,
            table.c.proposed_tx,
        ).where(table.c.cycle_id == cycle_id)
    ).first()
    if row is None:
        return None
    status, deadline, funded, claimed, proposed_tx = row
    return MirroredCycle(
        int(status), int(deadline), Fen(int(funded)), Fen(int(claimed)), str(proposed_tx)
    )


def fetch_registered_partner_ids(conn: Connection) -> set[int]:
    """The ids of the partners the chain shows registered."""
    return {
        int(value) for value in conn.execute(select(CHAIN_PARTNER_TABLE.c.partner_id)).scalars()
    }


def fetch_stored_position(
    conn: Connection, cycle_id: int, partner_id: int
) -> StoredPosition | None:
    """The partner's stored position in the cycle, or None if it has none."""
    table = position_table
    row = conn.execute(
        select(table.c.net_position_fen, table.c.entry_count).where(
            and_(table.c.cycle_id == cycle_id, table.c.partner_id == partner_id)
        )
    ).first()
    if row is None:
        return None
    return StoredPosition(cycle_id, partner_id, Fen(int(row[0])), int(row[1]))


def fetch_mirrored_position(
    conn: Connection, cycle_id: int, partner_id: int
) -> MirroredPosition | None:
    """The partner's on-chain position in the cycle, or None before it was mirrored."""
    table = CHAIN_POSITION_TABLE
    row = conn.execute(
        select(table.c.settled_fen, table.c.disputed).where(
            and_(table.c.cycle_id == cycle_id, table.c.partner_id == partner_id)
        )
    ).first()
    if row is None:
        return None
    return MirroredPosition(Fen(int(row[0])), bool(row[1]))


def fetch_partner_cycle_ids(conn: Connection, partner_id: int, limit: int) -> list[int]:
    """The cycles the partner has a stored position in, newest first."""
    table = position_table
    ids = conn.execute(
        select(table.c.cycle_id)
        .where(table.c.partner_id == partner_id)
        .order_by(table.c.cycle_id.desc())
        .limit(limit)
    ).scalars()
    return [int(cycle_id) for cycle_id in ids]
