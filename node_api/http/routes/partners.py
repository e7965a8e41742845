"""Settlement partners and cycles over HTTP.

Admins register partners (each registration also queues its on-chain registration),
name product guarantors, and list cycles. A partner key (role `partner`) sees only its
own data: the cycles it has a position in, its net position and the on-chain status the
indexer mirrored, and its entries with Merkle proofs, paged or streamed as NDJSON (the
first line states the cycle's root and the partner's position; every other line is one
entry, as `creditnet verify` reads it). Each entry carries its private leaf `salt`; a
partner may also fetch its own leaf secret (`GET /v1/partner/leaf-secret`) to re-derive
its salts itself (`settlement.salts`). No route ever shows the node's root secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Final, Literal

import orjson
from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Connection

from node_api.auth.keys import Principal
from node_api.http.authz import AdminDep, ExaminerDep, PartnerDep
from node_api.http.deps import DatabaseDep, SessionDep, SettingsDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import (
    PROBLEMS,
    AddressStr,
    IdentifierStr,
    PathIdText,
    ProductCodeStr,
    StrictBody,
)
from node_api.idempotency import IDEMPOTENCY_HEADER
from node_api.kernel.chain import EntryKind, PartnerRole
from node_api.kernel.db import Database
from node_api.kernel.errors import ForbiddenError, NotFoundError
from node_api.kernel.money import Fen
from settlement.cycle_close import describe_cycle, fetch_cycle, fetch_cycles
from settlement.netting import ClosedCycle
from settlement.partner_views import (
    StoredPosition,
    fetch_mirrored_cycle,
    fetch_mirrored_position,
    fetch_partner_cycle_ids,
    fetch_registered_partner_ids,
    fetch_stored_position,
)
from settlement.partners import (
    Partner,
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
from settlement.salts import PARTNER_SECRET_DOMAIN, LeafSalts, PartnerSalts

router = APIRouter(tags=["settlement"])

CycleId = Annotated[
    int,
    PathIdText,
    Path(
        ge=19_000_101,
        le=99 * 10**8 + 99_991_231,
        description="cycle id: `attempt * 10**8 + yyyymmdd` (the date itself for a first attempt)",
    ),
]
ROLE_NAMES = {role.name.lower(): role for role in PartnerRole}


class PartnerIn(StrictBody):
    ref: IdentifierStr
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
    product_code: ProductCodeStr
    guarantor_ref: IdentifierStr
    share_ppm: int = Field(strict=True, ge=1, le=1_000_000)


class GuaranteeOut(BaseModel):
    product_code: str
    partner_id: int
    share_ppm: int


class ChainStatusOut(BaseModel):
    """The cycle as the indexer mirrored it from the chain (null before it landed)."""

    status: int
    status_name: str
    dispute_deadline: int
    funded_fen: Fen
    claimed_fen: Fen
    proposed_tx: str


class CycleOut(BaseModel):
    cycle_id: int
    cycle_date: str
    state: str
    entries_root: str | None
    entry_count: int
    event_count: int
    partner_count: int
    total_due_fen: Fen
    signatures: int
    chain: ChainStatusOut | None


BOOKS: Final = "The books' (the node's own record): "
CHAIN: Final = "The chain's (the ClearingHouse, as the indexer mirrored it): "


class PartnerCycleOut(BaseModel):
    """Your position in one cycle. Fields named `books_...` (and `state`,
    `net_position_fen`, `entry_count`) are the node's books; `chain...` fields are what
    the ClearingHouse shows, null until the indexer has seen the cycle on-chain."""

    cycle_id: int
    cycle_date: str
    state: str = Field(description=BOOKS + "the cycle's close state (same as books_state).")
    books_state: str = Field(
        description=BOOKS + "closed, signed, submitted, ... (what the node has done)."
    )
    chain_state: str | None = Field(
        description=CHAIN + "proposed, disputed, finalized, funded or rejected."
    )
    entries_root: str | None = Field(description=BOOKS + "the Merkle root of the entries.")
    partner_id: int
    net_position_fen: Fen = Field(description=BOOKS + "your net position.")
    entry_count: int
    chain: ChainStatusOut | None = Field(description=CHAIN + "the cycle's status and funding.")
    chain_position_settled_fen: Fen | None = Field(
        description=CHAIN + "what you funded (a debtor) or claimed (a creditor)."
    )
    chain_position_disputed: bool | None = Field(description=CHAIN + "whether you disputed.")


class EntryOut(BaseModel):
    cycle_id: int
    entry_id: int
    partner_id: int
    kind: int
    kind_name: str
    amount_fen: Fen
    salt: str = Field(
        description="The entry's private 32-byte leaf salt (0x-hex), part of its leaf; "
        "derivable from your leaf secret (GET /v1/partner/leaf-secret)."
    )
    proof: list[str]


class EntryPageOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    cycle_id: int
    partner_id: int
    entries_root: str
    entries: list[EntryOut]
    next_after: int | None
    """Pass as `after` for the next page; null on the last page."""


class EntryStreamHeader(BaseModel):
    """The first line of the NDJSON stream of a partner's entries."""

    cycle_id: int
    partner_id: int
    entries_root: str
    net_position_fen: Fen
    entry_count: int
    kinds: dict[str, int]


def _chain_status(conn: Connection, cycle_id: int) -> ChainStatusOut | None:
    cycle = fetch_mirrored_cycle(conn, cycle_id)
    if cycle is None:
        return None
    return ChainStatusOut(
        status=cycle.status,
        status_name=cycle.status_name,
        dispute_deadline=cycle.dispute_deadline,
        funded_fen=cycle.funded_fen,
        claimed_fen=cycle.claimed_fen,
        proposed_tx=cycle.proposed_tx,
    )


def _partner_view(partner: Partner, on_chain: set[int]) -> PartnerOut:
    return PartnerOut(
        partner_id=partner.partner_id,
        ref=partner.ref,
        role=partner.role.name.lower(),
        display_name=partner.display_name,
        payout_address=partner.payout_address,
        active=partner.active,
        registered_on_chain=partner.partner_id in on_chain,
    )


@router.post(
    "/v1/partners",
    name="partners_create",
    status_code=201,
    response_model=PartnerOut,
    responses=PROBLEMS,
    summary=f"Register a settlement partner (requires {IDEMPOTENCY_HEADER})",
)
def post_partner(body: PartnerIn, who: AdminDep, once: OnceDep) -> Response:
    """Register a lender, funder, channel or guarantor; its on-chain registration (role and
    payout address) is queued for the relayer in the same transaction."""

    def operation(_caches: object) -> PartnerOut:
        conn = once.session.connection()
        partner, _created = register_partner(
            conn,
            ref=body.ref,
            role=ROLE_NAMES[body.role],
            payout_address=body.payout_address,
            display_name=body.display_name,
            partner_id=body.partner_id,
        )
        return _partner_view(partner, fetch_registered_partner_ids(conn))

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/partners", name="partners_list", response_model=list[PartnerOut], responses=PROBLEMS
)
def get_partners(session: SessionDep, who: ExaminerDep) -> list[PartnerOut]:
    """Every partner, with whether the chain shows it registered yet."""
    conn = session.connection()
    on_chain = fetch_registered_partner_ids(conn)
    return [_partner_view(partner, on_chain) for partner in fetch_partners(conn)]


@router.post(
    "/v1/partners/guarantees",
    name="guarantees_create",
    status_code=201,
    response_model=GuaranteeOut,
    responses=PROBLEMS,
    summary=f"Name a product's guarantor (requires {IDEMPOTENCY_HEADER})",
)
def post_guarantee(body: GuaranteeIn, who: AdminDep, once: OnceDep) -> Response:
    """The guarantor pays `share_ppm` of each charged-off principal of the product."""

    def operation(_caches: object) -> GuaranteeOut:
        terms = set_guarantee(
            once.session.connection(),
            product_code=body.product_code,
            guarantor_ref=body.guarantor_ref,
            share_ppm=body.share_ppm,
        )
        return GuaranteeOut(
            product_code=body.product_code, partner_id=terms.partner_id, share_ppm=terms.share_ppm
        )

    return once.run(who, body, 201, operation)


def _cycle_view(conn: Connection, cycle: ClosedCycle) -> CycleOut:
    return CycleOut.model_validate(
        {**describe_cycle(cycle), "chain": _chain_status(conn, cycle.cycle_id)}
    )


@router.get(
    "/v1/settlement/cycles", name="cycles_list", response_model=list[CycleOut], responses=PROBLEMS
)
def get_cycles(
    session: SessionDep, who: ExaminerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[CycleOut]:
    """The latest cycles, newest first, with their on-chain status."""
    conn = session.connection()
    return [_cycle_view(conn, cycle) for cycle in fetch_cycles(conn, limit=limit)]


def _partner_id(who: Principal) -> int:
    if who.partner_id is None:
        raise ForbiddenError("this partner key names no partner")
    return who.partner_id


def _own_cycle(
    conn: Connection, cycle_id: int, partner_id: int
) -> tuple[ClosedCycle, bytes, StoredPosition]:
    """The cycle, its root and the partner's stored position; 404 unless the partner is in
    it."""
    cycle = fetch_cycle(conn, cycle_id)
    position = fetch_stored_position(conn, cycle_id, partner_id)
    if cycle is None or cycle.entries_root is None or position is None:
        raise NotFoundError(f"you have no position in cycle {cycle_id}", field="cycle_id")
    return cycle, cycle.entries_root, position


def _partner_cycle_view(
    conn: Connection, cycle: ClosedCycle, root: bytes, position: StoredPosition
) -> PartnerCycleOut:
    on_chain = fetch_mirrored_position(conn, cycle.cycle_id, position.partner_id)
    chain = _chain_status(conn, cycle.cycle_id)
    return PartnerCycleOut(
        cycle_id=cycle.cycle_id,
        cycle_date=cycle.cycle_date.isoformat(),
        state=cycle.state.value,
        books_state=cycle.state.value,
        chain_state=None if chain is None else chain.status_name,
        entries_root="0x" + root.hex(),
        partner_id=position.partner_id,
        net_position_fen=position.net_position_fen,
        entry_count=position.entry_count,
        chain=chain,
        chain_position_settled_fen=None if on_chain is None else on_chain.settled_fen,
        chain_position_disputed=None if on_chain is None else on_chain.disputed,
    )


@router.get(
    "/v1/partner/cycles",
    name="partner_cycles_list",
    response_model=list[PartnerCycleOut],
    responses=PROBLEMS,
)
def get_partner_cycles(
    session: SessionDep, who: PartnerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[PartnerCycleOut]:
    """The cycles you have a position in, newest first."""
    partner_id = _partner_id(who)
    conn = session.connection()
    views = []
    for cycle_id in fetch_partner_cycle_ids(conn, partner_id, limit):
        cycle, root, position = _own_cycle(conn, cycle_id, partner_id)
        views.append(_partner_cycle_view(conn, cycle, root, position))
    return views


@router.get(
    "/v1/partner/cycles/{cycle_id}",
    name="partner_cycles_get",
    response_model=PartnerCycleOut,
    responses=PROBLEMS,
)
def get_partner_cycle(cycle_id: CycleId, session: SessionDep, who: PartnerDep) -> PartnerCycleOut:
    """Your net position in one cycle, the cycle's root and its on-chain status."""
    partner_id = _partner_id(who)
    conn = session.connection()
    cycle, root, position = _own_cycle(conn, cycle_id, partner_id)
    return _partner_cycle_view(conn, cycle, root, position)


@router.get(
    "/v1/partner/cycles/{cycle_id}/entries",
    name="partner_entries_list",
    response_model=EntryPageOut,
    responses=PROBLEMS,
)
def get_partner_entries(
    cycle_id: CycleId,
    session: SessionDep,
    who: PartnerDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = 500,
) -> EntryPageOut:
    """A page of your entries with their Merkle proofs, by entry id after `after`."""
    partner_id = _partner_id(who)
    conn = session.connection()
    _cycle, root, _position = _own_cycle(conn, cycle_id, partner_id)
    tree = fetch_tree(conn, cycle_id, root)
    salts = LeafSalts.from_settings(settings).for_partner(partner_id)
    page = fetch_partner_entries(
        conn, cycle_id, partner_id, salts, after_entry_id=after, limit=limit
    )
    return EntryPageOut(
        cycle_id=cycle_id,
        partner_id=partner_id,
        entries_root="0x" + root.hex(),
        entries=[EntryOut.model_validate(to_json(prove(tree, entry))) for entry in page],
        next_after=page[-1].entry_id if len(page) == limit else None,
    )


def _ndjson_lines(
    database: Database,
    cycle_id: int,
    root: bytes,
    salts: PartnerSalts,
    header: EntryStreamHeader,
) -> Iterator[bytes]:
    yield orjson.dumps(header.model_dump(mode="json")) + b"\n"
    with database.engine.connect() as conn:
        for proven in iterate_proven_entries(conn, cycle_id, root, header.partner_id, salts):
            yield orjson.dumps(to_json(proven)) + b"\n"


@router.get(
    "/v1/partner/cycles/{cycle_id}/entries.ndjson",
    name="partner_entries_stream",
    responses={200: {"content": {"application/x-ndjson": {}}}, **PROBLEMS},
)
def stream_partner_entries(
    cycle_id: CycleId,
    database: DatabaseDep,
    session: SessionDep,
    who: PartnerDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """All your entries with proofs as NDJSON, streamed (for large cycles): a header line
    with the root and your net position, then one entry per line."""
    partner_id = _partner_id(who)
    conn = session.connection()
    _cycle, root, position = _own_cycle(conn, cycle_id, partner_id)
    fetch_tree(conn, cycle_id, root)  # fail now, not mid-stream
    header = EntryStreamHeader(
        cycle_id=cycle_id,
        partner_id=partner_id,
        entries_root="0x" + root.hex(),
        net_position_fen=position.net_position_fen,
        entry_count=position.entry_count,
        kinds={kind.name: int(kind) for kind in EntryKind},
    )
    return StreamingResponse(
        _ndjson_lines(
            database,
            cycle_id,
            root,
            LeafSalts.from_settings(settings).for_partner(partner_id),
            header,
        ),
        media_type="application/x-ndjson",
    )


class LeafSecretOut(BaseModel):
    """Your leaf secret: the key of your entries' private leaf salts."""

    partner_id: int
    leaf_secret: str = Field(description="32 bytes, 0x-hex. Keep it private.")
    salt_derivation: str = Field(
        description="How each of your entries' salt derives from `leaf_secret`."
    )


SALT_DERIVATION: Final = (
    "salt = HMAC-SHA256(leaf_secret, uint64_be(cycle_id) || uint64_be(entry_id)); "
    "leaf_secret = HMAC-SHA256(node root secret, "
    f"{PARTNER_SECRET_DOMAIN.decode()!r} || uint32_be(partner_id))"
)


@router.get(
    "/v1/partner/leaf-secret",
    name="partner_leaf_secret_get",
    response_model=LeafSecretOut,
    responses=PROBLEMS,
)
def get_partner_leaf_secret(
    who: PartnerDep, settings: SettingsDep, response: Response
) -> LeafSecretOut:
    """Your own leaf secret, for your own tooling to re-derive the salt of each of your
    entries (`salt` in the entry listings) as `salt_derivation` states: no other partner's
    secret, and never the node's root secret, is served. Partner keys only; the partner is
    the key's, so there is no id to ask for another. Sent with `Cache-Control: no-store`."""
    partner_id = _partner_id(who)
    secret = LeafSalts.from_settings(settings).partner_secret(partner_id)
    response.headers["Cache-Control"] = "no-store"
    return LeafSecretOut(
        partner_id=partner_id, leaf_secret="0x" + secret.hex(), salt_derivation=SALT_DERIVATION
    )
