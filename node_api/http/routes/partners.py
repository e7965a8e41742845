"""Settlement partners and cycles over HTTP.

Admins register partners (each registration also queues its on-chain registration),
name product guarantors, and list cycles. A partner key (role `partner`) sees only its
own data: the cycles it has a position in, its net position and the on-chain status the
indexer mirrored, and its entries with Merkle proofs, paged or streamed as NDJSON (the
first line states the cycle's root and the partner's position; every other line is one
entry, as `creditnet verify` reads it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from node_api.auth.keys import Principal, Role
from node_api.http.deps import DatabaseDep, SessionDep, require
from node_api.http.routes.credit_lines import PROBLEMS
from node_api.idempotency import (
    IDEMPOTENCY_HEADER,
    KeyClaim,
    compute_request_hash,
    get_idempotency_key,
    run_idempotent,
    to_response,
)
from node_api.kernel.errors import ForbiddenError, NotFoundError
from oracles.tables import CYCLE_TABLE, PARTNER_TABLE, POSITION_TABLE
from settlement.cycle_close import ClosedCycle, describe_cycle, fetch_cycle, fetch_cycles
from settlement.entries import EntryKind
from settlement.partners import (
    Partner,
    PartnerRole,
    fetch_partners,
    register_partner,
    set_guarantee,
)
from settlement.proofs import (
    PAGE_LIMIT_MAX,
    fetch_partner_entries,
    fetch_tree,
    iterate_proven_entries,
    prove,
    to_json,
)
from settlement.tables import position_table

router = APIRouter(tags=["settlement"])

RefStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
AddressStr = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
CycleId = Annotated[int, Path(ge=19_000_101, le=99_991_231, description="cycle id yyyymmdd")]
IdempotencyKey = Annotated[str, Depends(get_idempotency_key)]
AdminDep = Annotated[Principal, Depends(require(Role.LENDER_ADMIN))]
ReaderDep = Annotated[Principal, Depends(require(Role.LENDER_ADMIN, Role.AUDITOR))]
PartnerDep = Annotated[Principal, Depends(require(Role.PARTNER))]
ROLE_NAMES = {role.name.lower(): role for role in PartnerRole}


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnerIn(StrictBody):
    ref: RefStr
    """The id the books use (funding splits, channel ids)."""
    role: Literal["lender", "funder", "channel", "guarantor"]
    payout_address: AddressStr
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    """The organisation's name (never a person's)."""
    partner_id: int | None = Field(default=None, strict=True, ge=1, le=2**32 - 1)


class PartnerOut(BaseModel):
    partner_id: int
    ref: str
    role: str
    display_name: str
    payout_address: str
    active: bool
    registered_on_chain: bool


class GuaranteeIn(StrictBody):
    product_code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,31}$")]
    guarantor_ref: RefStr
    share_ppm: int = Field(strict=True, ge=1, le=1_000_000)


class ChainStatusOut(BaseModel):
    """The cycle as the indexer mirrored it from the chain (null before it landed)."""

    status: int
    status_name: str
    dispute_deadline: int
    funded_fen: int
    claimed_fen: int
    proposed_tx: str


class CycleOut(BaseModel):
    cycle_id: int
    cycle_date: str
    state: str
    entries_root: str | None
    entry_count: int
    event_count: int
    partner_count: int
    total_due_fen: int
    signatures: int
    chain: ChainStatusOut | None


class PartnerCycleOut(BaseModel):
    cycle_id: int
    cycle_date: str
    state: str
    entries_root: str | None
    partner_id: int
    net_position_fen: int
    entry_count: int
    chain: ChainStatusOut | None
    chain_position_settled_fen: int | None
    chain_position_disputed: bool | None


class EntryOut(BaseModel):
    cycle_id: int
    entry_id: int
    partner_id: int
    kind: int
    kind_name: str
    amount_fen: int
    proof: list[str]


class EntryPageOut(BaseModel):
    cycle_id: int
    partner_id: int
    entries_root: str
    entries: list[EntryOut]
    next_after: int | None
    """Pass as `after` for the next page; null on the last page."""


_STATUS_NAMES = {1: "proposed", 2: "disputed", 3: "finalized", 4: "funded", 5: "rejected"}


def _chain_status(conn: Connection, cycle_id: int) -> ChainStatusOut | None:
    row = conn.execute(select(CYCLE_TABLE).where(CYCLE_TABLE.c.cycle_id == cycle_id)).first()
    if row is None:
        return None
    values = row._mapping
    return ChainStatusOut(
        status=int(values["status"]),
        status_name=_STATUS_NAMES.get(int(values["status"]), "unknown"),
        dispute_deadline=int(values["dispute_deadline"]),
        funded_fen=int(values["funded_fen"]),
        claimed_fen=int(values["claimed_fen"]),
        proposed_tx=str(values["proposed_tx"]),
    )


def _partner_view(partner: Partner, on_chain: set[int]) -> dict[str, Any]:
    return PartnerOut(
        partner_id=partner.partner_id,
        ref=partner.ref,
        role=partner.role.name.lower(),
        display_name=partner.display_name,
        payout_address=partner.payout_address,
        active=partner.active,
        registered_on_chain=partner.partner_id in on_chain,
    ).model_dump(mode="json")


def _registered_on_chain(conn: Connection) -> set[int]:
    return {int(value) for value in conn.execute(select(PARTNER_TABLE.c.partner_id)).scalars()}


def _idempotent(
    request: Request,
    session: SessionDep,
    who: Principal,
    key: str,
    body: BaseModel,
    op: Callable[[], dict[str, Any]],
) -> Response:
    """Run `op` once per idempotency key (201 and its body) and commit."""
    payload = body.model_dump(mode="json")
    claim = KeyClaim(who.key_id, key, compute_request_hash("POST", request.url.path, payload))
    stored = run_idempotent(session, claim, lambda: (201, op()))
    session.commit()
    return to_response(stored)


@router.post(
    "/v1/partners",
    status_code=201,
    response_model=PartnerOut,
    responses=PROBLEMS,
    summary=f"Register a settlement partner (requires {IDEMPOTENCY_HEADER})",
)
def post_partner(
    body: PartnerIn, request: Request, session: SessionDep, who: AdminDep, key: IdempotencyKey
) -> Response:
    """Register a lender, funder, channel or guarantor; its on-chain registration (role and
    payout address) is queued for the relayer in the same transaction."""

    def operation() -> dict[str, Any]:
        conn = session.connection()
        partner, _created = register_partner(
            conn,
            ref=body.ref,
            role=ROLE_NAMES[body.role],
            payout_address=body.payout_address,
            display_name=body.display_name,
            partner_id=body.partner_id,
        )
        return _partner_view(partner, _registered_on_chain(conn))

    return _idempotent(request, session, who, key, body, operation)


@router.get("/v1/partners", response_model=list[PartnerOut], responses=PROBLEMS)
def get_partners(session: SessionDep, who: ReaderDep) -> list[dict[str, Any]]:
    """Every partner, with whether the chain shows it registered yet."""
    conn = session.connection()
    on_chain = _registered_on_chain(conn)
    return [_partner_view(partner, on_chain) for partner in fetch_partners(conn)]


@router.post(
    "/v1/partners/guarantees",
    status_code=201,
    responses=PROBLEMS,
    summary=f"Name a product's guarantor (requires {IDEMPOTENCY_HEADER})",
)
def post_guarantee(
    body: GuaranteeIn, request: Request, session: SessionDep, who: AdminDep, key: IdempotencyKey
) -> Response:
    """The guarantor pays `share_ppm` of each charged-off principal of the product."""

    def operation() -> dict[str, Any]:
        terms = set_guarantee(
            session.connection(),
            product_code=body.product_code,
            guarantor_ref=body.guarantor_ref,
            share_ppm=body.share_ppm,
        )
        return {
            "product_code": body.product_code,
            "partner_id": terms.partner_id,
            "share_ppm": terms.share_ppm,
        }

    return _idempotent(request, session, who, key, body, operation)


def _cycle_view(conn: Connection, cycle: ClosedCycle) -> dict[str, Any]:
    view = describe_cycle(cycle)
    view["chain"] = _chain_status(conn, cycle.cycle_id)
    return CycleOut.model_validate(view).model_dump(mode="json")


@router.get("/v1/settlement/cycles", response_model=list[CycleOut], responses=PROBLEMS)
def get_cycles(
    session: SessionDep, who: ReaderDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The latest cycles, newest first, with their on-chain status."""
    conn = session.connection()
    return [_cycle_view(conn, cycle) for cycle in fetch_cycles(conn, limit=limit)]


def _partner_id(who: Principal) -> int:
    if who.partner_id is None:
        raise ForbiddenError("this partner key names no partner")
    return who.partner_id


def _own_cycle(conn: Connection, cycle_id: int, partner_id: int) -> tuple[ClosedCycle, Any]:
    """The cycle and the partner's stored position; 404 unless the partner is in it."""
    cycle = fetch_cycle(conn, cycle_id)
    position = conn.execute(
        select(position_table).where(
            and_(position_table.c.cycle_id == cycle_id, position_table.c.partner_id == partner_id)
        )
    ).first()
    if cycle is None or cycle.entries_root is None or position is None:
        raise NotFoundError(f"you have no position in cycle {cycle_id}", field="cycle_id")
    return cycle, position._mapping


def _partner_cycle_view(
    conn: Connection, cycle: ClosedCycle, position: Any, partner_id: int
) -> dict[str, Any]:
    chain_position = conn.execute(
        select(POSITION_TABLE).where(
            and_(
                POSITION_TABLE.c.cycle_id == cycle.cycle_id,
                POSITION_TABLE.c.partner_id == partner_id,
            )
        )
    ).first()
    on_chain = None if chain_position is None else chain_position._mapping
    return PartnerCycleOut(
        cycle_id=cycle.cycle_id,
        cycle_date=cycle.cycle_date.isoformat(),
        state=cycle.state.value,
        entries_root=None if cycle.entries_root is None else "0x" + cycle.entries_root.hex(),
        partner_id=partner_id,
        net_position_fen=int(position["net_position_fen"]),
        entry_count=int(position["entry_count"]),
        chain=_chain_status(conn, cycle.cycle_id),
        chain_position_settled_fen=None if on_chain is None else int(on_chain["settled_fen"]),
        chain_position_disputed=None if on_chain is None else bool(on_chain["disputed"]),
    ).model_dump(mode="json")


@router.get("/v1/partner/cycles", response_model=list[PartnerCycleOut], responses=PROBLEMS)
def get_partner_cycles(
    session: SessionDep, who: PartnerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The cycles you have a position in, newest first."""
    partner_id = _partner_id(who)
    conn = session.connection()
    ids = conn.execute(
        select(position_table.c.cycle_id)
        .where(position_table.c.partner_id == partner_id)
        .order_by(position_table.c.cycle_id.desc())
        .limit(limit)
    ).scalars()
    views = []
    for cycle_id in ids:
        cycle, position = _own_cycle(conn, int(cycle_id), partner_id)
        views.append(_partner_cycle_view(conn, cycle, position, partner_id))
    return views


@router.get("/v1/partner/cycles/{cycle_id}", response_model=PartnerCycleOut, responses=PROBLEMS)
def get_partner_cycle(cycle_id: CycleId, session: SessionDep, who: PartnerDep) -> dict[str, Any]:
    """Your net position in one cycle, the cycle's root and its on-chain status."""
    partner_id = _partner_id(who)
    conn = session.connection()
    cycle, position = _own_cycle(conn, cycle_id, partner_id)
    return _partner_cycle_view(conn, cycle, position, partner_id)


@router.get(
    "/v1/partner/cycles/{cycle_id}/entries", response_model=EntryPageOut, responses=PROBLEMS
)
def get_partner_entries(
    cycle_id: CycleId,
    session: SessionDep,
    who: PartnerDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = 500,
) -> dict[str, Any]:
    """A page of your entries with their Merkle proofs, by entry id after `after`."""
    partner_id = _partner_id(who)
    conn = session.connection()
    cycle, _position = _own_cycle(conn, cycle_id, partner_id)
    assert cycle.entries_root is not None
    tree = fetch_tree(conn, cycle_id, cycle.entries_root)
    page = fetch_partner_entries(conn, cycle_id, partner_id, after_entry_id=after, limit=limit)
    return EntryPageOut(
        cycle_id=cycle_id,
        partner_id=partner_id,
        entries_root="0x" + cycle.entries_root.hex(),
        entries=[EntryOut.model_validate(to_json(prove(tree, entry))) for entry in page],
        next_after=page[-1].entry_id if len(page) == limit else None,
    ).model_dump(mode="json")


def _ndjson_lines(
    database: DatabaseDep, cycle: ClosedCycle, partner_id: int, header: dict[str, Any]
) -> Iterator[bytes]:
    yield orjson.dumps(header) + b"\n"
    assert cycle.entries_root is not None
    with database.engine.connect() as conn:
        for proven in iterate_proven_entries(conn, cycle.cycle_id, cycle.entries_root, partner_id):
            yield orjson.dumps(to_json(proven)) + b"\n"


@router.get(
    "/v1/partner/cycles/{cycle_id}/entries.ndjson",
    responses={200: {"content": {"application/x-ndjson": {}}}, **PROBLEMS},
)
def stream_partner_entries(
    cycle_id: CycleId, database: DatabaseDep, session: SessionDep, who: PartnerDep
) -> StreamingResponse:
    """All your entries with proofs as NDJSON, streamed (for large cycles): a header line
    with the root and your net position, then one entry per line."""
    partner_id = _partner_id(who)
    conn = session.connection()
    cycle, position = _own_cycle(conn, cycle_id, partner_id)
    assert cycle.entries_root is not None
    fetch_tree(conn, cycle_id, cycle.entries_root)  # fail now, not mid-stream
    header = {
        "cycle_id": cycle_id,
        "partner_id": partner_id,
        "entries_root": "0x" + cycle.entries_root.hex(),
        "net_position_fen": int(position["net_position_fen"]),
        "entry_count": int(position["entry_count"]),
        "kinds": {kind.name: int(kind) for kind in EntryKind},
    }
    return StreamingResponse(
        _ndjson_lines(database, cycle, partner_id, header), media_type="application/x-ndjson"
    )
