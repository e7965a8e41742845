"""A funding partner's cycles and money through them, for the console (partner keys).

`GET /v1/partner/cycle-page`: its cycles, newest first, a page at a time, with the books'
and the chain's (mirrored) state side by side, in one query per page (`/v1/partner/cycles`
answers the same per cycle, a few queries each, and cannot page past its limit);
`GET /v1/partner/cash-flows`: the partner's settlement entries summed by kind for each of
its latest cycles; `GET /v1/partner/funded-principal`: principal it funded and was repaid
per month, with the outstanding funded principal. Both are aggregated in SQL
(`settlement.partner_flows`) and show only the key's own partner.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from node_api.http.authz import PartnerDep
from node_api.http.deps import SessionDep
from node_api.http.schemas import PROBLEMS, PageOut, from_view, next_cursor
from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import ForbiddenError
from node_api.kernel.money import Fen
from node_api.lending.portfolio_views import fetch_portfolio_snapshot
from settlement.partner_flows import (
    PartnerCycleRow,
    fetch_cash_flows,
    fetch_funded_principal_by_month,
    fetch_partner_cycle_page,
    fetch_partner_ref,
)

router = APIRouter(tags=["settlement"])


class PartnerCycleItemOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    cycle_id: int
    cycle_date: str
    books_state: str
    """The books' close state (closed, proposed, ...)."""
    entries_root: str
    """The books' Merkle root of the cycle's entries."""
    net_position_fen: Fen
    """The books' net position (+ you receive)."""
    entry_count: int
    chain_state: str | None
    """The chain's status as the indexer mirrored it (null before it saw the cycle)."""
    chain_funded_fen: Fen | None
    chain_claimed_fen: Fen | None
    chain_position_settled_fen: Fen | None
    """What you funded (a debtor) or claimed (a creditor) on-chain."""
    chain_position_disputed: bool | None


class PartnerCyclePageOut(PageOut[PartnerCycleItemOut]):
    next_before: int | None
    """Pass as `before` for the next (older) page; null on the last page."""


class CycleFlowsOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    cycle_id: int
    cycle_date: str
    by_kind_fen: dict[str, int]
    """Entry kind (lower case) to the sum of your entries of that kind (+ you receive)."""
    net_fen: Fen


class MonthPrincipalOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    month: str
    funded_fen: Fen
    """Principal you funded in the month's cycles."""
    repaid_fen: Fen
    """Principal paid back to you in the month's cycles."""
    outstanding_fen: Fen
    """Funded minus repaid, cumulated through the month."""


class FundedVintageOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    vintage: str
    """`YYYY-MM`: the month the lines you co-fund were opened."""
    lines: int
    """Those lines that owe something now."""
    balance_fen: Fen
    """The lines' receivables now (whole lines, not only your share)."""
    m1_plus_bps: int
    """Share of those receivables in M1 and beyond, basis points, half-even."""
    m3_plus_bps: int
    """Share in M3 and beyond, basis points, half-even."""


def _partner_id(who_partner_id: int | None) -> int:
    if who_partner_id is None:
        raise ForbiddenError("this partner key names no partner")
    return who_partner_id


def _chain_state(status: int | None) -> str | None:
    if status is None:
        return None
    known = {int(item) for item in CycleStatus}
    return CycleStatus(status).name.lower() if status in known else "unknown"


def _cycle_item(row: PartnerCycleRow) -> PartnerCycleItemOut:
    return PartnerCycleItemOut(
        cycle_id=row.cycle_id,
        cycle_date=row.cycle_date.isoformat(),
        books_state=row.books_state,
        entries_root=row.entries_root,
        net_position_fen=row.net_position_fen,
        entry_count=row.entry_count,
        chain_state=_chain_state(row.chain_status),
        chain_funded_fen=row.chain_funded_fen,
        chain_claimed_fen=row.chain_claimed_fen,
        chain_position_settled_fen=row.chain_settled_fen,
        chain_position_disputed=row.chain_disputed,
    )


@router.get(
    "/v1/partner/cycle-page",
    name="partner_cycle_page",
    response_model=PartnerCyclePageOut,
    responses=PROBLEMS,
)
def get_partner_cycle_page(
    session: SessionDep,
    who: PartnerDep,
    limit: Annotated[int, Query(ge=1, le=366)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> PartnerCyclePageOut:
    """Your cycles, newest first, `limit` at a time below the cycle id `before`, each with
    the books' root, state and position and the chain's mirrored status and settlement."""
    rows = fetch_partner_cycle_page(
        session.connection(), _partner_id(who.partner_id), limit=limit, before=before
    )
    return PartnerCyclePageOut(
        items=[_cycle_item(row) for row in rows],
        next_before=next_cursor(rows, limit, lambda row: row.cycle_id),
    )


@router.get(
    "/v1/partner/vintages",
    name="partner_vintages_list",
    response_model=list[FundedVintageOut],
    responses=PROBLEMS,
)
def get_partner_vintages(session: SessionDep, who: PartnerDep) -> list[FundedVintageOut]:
    """Delinquency by vintage of the loans you co-fund (the lines with a funding payable to
    you): per month opened, their receivables now and the M1+ and M3+ shares."""
    conn = session.connection()
    ref = fetch_partner_ref(conn, _partner_id(who.partner_id))
    if ref is None:
        return []
    snapshot = fetch_portfolio_snapshot(conn, funded_by=ref)
    return [from_view(FundedVintageOut, item) for item in snapshot.vintages]


@router.get(
    "/v1/partner/cash-flows",
    name="partner_cash_flows_list",
    response_model=list[CycleFlowsOut],
    responses=PROBLEMS,
)
def get_partner_cash_flows(
    session: SessionDep, who: PartnerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 90
) -> list[CycleFlowsOut]:
    """Your entries summed by kind per cycle, for your latest `limit` cycles, oldest first
    (void cycles left out: they are settled again under the next attempt)."""
    flows = fetch_cash_flows(session.connection(), _partner_id(who.partner_id), limit=limit)
    return [
        CycleFlowsOut(
            cycle_id=item.cycle_id,
            cycle_date=item.cycle_date.isoformat(),
            by_kind_fen=item.by_kind_fen,
            net_fen=item.net_fen,
        )
        for item in flows
    ]


@router.get(
    "/v1/partner/funded-principal",
    name="partner_funded_principal_list",
    response_model=list[MonthPrincipalOut],
    responses=PROBLEMS,
)
def get_partner_funded_principal(session: SessionDep, who: PartnerDep) -> list[MonthPrincipalOut]:
    """Principal you funded and were repaid per month of cycle date, and the outstanding
    funded principal after each month, oldest month first."""
    months = fetch_funded_principal_by_month(session.connection(), _partner_id(who.partner_id))
    return [from_view(MonthPrincipalOut, item) for item in months]
