"""`GET /v1/agreements/{agreement_id}`: is a credit agreement on-chain yet, and where;
`GET /v1/agreements/{agreement_id}/line-state`: its outstanding balance in a committed
credit-line state, with the Merkle proof `CreditRegistry.verifyLineBalance` checks.

The books' side is the outbox row that carries the agreement's opening to the
CreditRegistry (written with the line); the chain's side is the agreement as the indexer
mirrored it from the contract's events. `anchoring` sums them up: `queued` (waiting for
the relayer), `sent` (in a transaction not yet mined), `mined` (in a block, not yet
indexed), `on_chain` (the registry shows it) or `parked` (it cannot land; see
`books.last_error` and `GET /v1/oracles/status`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.auth.keys import Principal
from node_api.http.authz import PARTNER_ROLES, READER_ROLES, ReaderDep, requires
from node_api.http.deps import SessionDep
from node_api.http.schemas import PROBLEMS
from node_api.http.services import ServicesDep
from node_api.kernel.errors import NotFoundError
from node_api.kernel.money import Fen
from node_api.onboarding.tables import application_table
from oracles.anchoring import AgreementAnchoring, fetch_agreement_anchoring
from settlement.line_state import LineBalanceProof, prove_line_balance

router = APIRouter(tags=["agreements"])

AgreementId = Annotated[
    str,
    Path(
        pattern=r"^0x[0-9a-fA-F]{64}$",
        description="agreement id: 0x and 64 hex digits (an application's `agreement_id`)",
    ),
]
Anchoring = Literal["queued", "sent", "mined", "on_chain", "parked"]


class AgreementBooksOut(BaseModel):
    """The agreement as the node's books queued it for the chain (its outbox row)."""

    credit_line_id: int | None
    outbox_status: str = Field(description="pending, sent, confirmed or parked.")
    attempts: int
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    terms_hash: str = Field(description="keccak256 of the product terms' canonical JSON.")
    borrower_ref: str = Field(description="HMAC of the customer id: never personal data.")
    product_code: int = Field(description="The product's uint32 code on-chain.")
    limit_fen: Fen
    apr_bps: int
    opened_at: int = Field(description="Unix seconds of the opening business date (UTC).")


class AgreementChainOut(BaseModel):
    """The agreement as the CreditRegistry shows it (mirrored by the indexer)."""

    status: int
    status_name: str
    terms_hash: str
    commitment: str = Field(description="keccak256(abi.encode(AgreementInput)) as stored.")
    limit_fen: Fen = Field(description="The credit limit the registry holds.")
    apr_bps: int = Field(description="The annual rate the registry holds.")
    change_count: int = Field(description="Status changes recorded since opening.")
    opened_block: int = Field(description="The block of the opening transaction.")
    opened_tx: str = Field(description="The opening transaction.")
    updated_block: int = Field(description="The block of the last change.")


class AgreementOut(BaseModel):
    agreement_id: str
    anchoring: Anchoring
    tx_hash: str | None = Field(description="The transaction that opened it on-chain.")
    block_number: int | None = Field(description="The block of that transaction.")
    confirmations: int | None = Field(
        description="Blocks from that block to the chain head, itself included (null "
        "before it is mined or when the chain does not answer)."
    )
    chain_head: int | None
    terms_hash: str = Field(description="The terms hash (the chain's once it is on-chain).")
    terms_match: bool | None = Field(
        description="Whether the chain's terms hash equals the books' (null until on-chain)."
    )
    books: AgreementBooksOut | None = Field(description="The books' side: the outbox row.")
    chain: AgreementChainOut | None = Field(description="The chain's side: null until indexed.")


def _anchoring(found: AgreementAnchoring) -> Anchoring:
    if found.mirrored is not None:
        return "on_chain"
    queued, transaction = found.queued, found.transaction
    if queued is not None and queued.status == "parked":
        return "parked"
    if transaction is not None and transaction.block_number is not None:
        return "mined"
    if queued is not None and queued.status in {"sent", "confirmed"}:
        return "sent"
    return "queued"


def _credit_line_id(conn: Connection, agreement_id: str) -> int | None:
    table = application_table
    line_id = conn.execute(
        select(table.c.credit_line_id).where(table.c.agreement_id == agreement_id).limit(1)
    ).scalar_one_or_none()
    return None if line_id is None else int(line_id)


def agreement_view(
    found: AgreementAnchoring, credit_line_id: int | None, head: int | None
) -> AgreementOut:
    queued, transaction, mirrored = found.queued, found.transaction, found.mirrored
    books = None
    if queued is not None:
        books = AgreementBooksOut(
            credit_line_id=credit_line_id,
            outbox_status=queued.status,
            attempts=queued.attempts,
            last_error=queued.last_error,
            terms_hash=queued.terms_hash,
            borrower_ref=queued.borrower_ref,
            product_code=queued.product_code,
            limit_fen=queued.limit_fen,
            apr_bps=queued.apr_bps,
            opened_at=queued.opened_at,
        )
    chain = None
    if mirrored is not None:
        chain = AgreementChainOut(
            status=mirrored.status,
            status_name=mirrored.status_name,
            terms_hash=mirrored.terms_hash,
            commitment=mirrored.commitment,
            limit_fen=mirrored.limit_fen,
            apr_bps=mirrored.apr_bps,
            change_count=mirrored.change_count,
            opened_block=mirrored.opened_block,
            opened_tx=mirrored.opened_tx,
            updated_block=mirrored.updated_block,
        )
    tx_hash = mirrored.opened_tx if mirrored else (queued.tx_hash if queued else None)
    block = mirrored.opened_block if mirrored else None
    if block is None and transaction is not None:
        block = transaction.block_number
    if block is None and queued is not None:
        block = queued.block_number
    confirmations = None
    if block is not None and head is not None:
        confirmations = max(head - block + 1, 0)
    books_hash = queued.terms_hash if queued else None
    chain_hash = mirrored.terms_hash if mirrored else None
    return AgreementOut(
        agreement_id=found.agreement_id,
        anchoring=_anchoring(found),
        tx_hash=tx_hash,
        block_number=block,
        confirmations=confirmations,
        chain_head=head,
        terms_hash=chain_hash or books_hash or "",
        terms_match=None if chain_hash is None or books_hash is None else chain_hash == books_hash,
        books=books,
        chain=chain,
    )


@router.get(
    "/v1/agreements/{agreement_id}",
    response_model=AgreementOut,
    responses=PROBLEMS,
    name="agreements_get",
)
def get_agreement(
    agreement_id: AgreementId, session: SessionDep, services: ServicesDep, who: ReaderDep
) -> AgreementOut:
    """Whether a credit agreement is on-chain: status, transaction, block, confirmations
    and terms hash, the books' side next to the chain's."""
    agreement_id = agreement_id.lower()
    conn = session.connection()
    found = fetch_agreement_anchoring(conn, agreement_id)
    if found is None:
        raise NotFoundError("no agreement has this id", field="agreement_id")
    head = services.chain.fetch_latest_block() if services.chain is not None else None
    return agreement_view(found, _credit_line_id(conn, agreement_id), head)


LineStateReaderDep = Annotated[Principal, Depends(requires(READER_ROLES | PARTNER_ROLES))]
"""The lender's readers, and partners: a funder proves the balances it funds."""


class AgreementLineStateOut(BaseModel):
    """One agreement's balance in a cycle's credit-line state, provable on-chain with
    `CreditRegistry.verifyLineBalance(agreement_id, cycle_id, outstanding_fen, proof)`."""

    agreement_id: str
    cycle_id: int = Field(description="The cycle: its business date as yyyymmdd.")
    outstanding_fen: Fen = Field(
        description="What the agreement's line owed at the end of the cycle's business date: "
        "principal, interest, fees and penalties, billed or not, past due or not."
    )
    leaf: str = Field(
        description="keccak256(keccak256(abi.encode(agreement_id, cycle_id, outstanding_fen)))."
    )
    proof: list[str] = Field(description="Sibling hashes from the leaf up to the root.")
    root: str = Field(description="The line-state root signed by the oracle quorum.")
    leaf_count: int = Field(description="Agreements under the root.")
    total_outstanding_fen: Fen = Field(description="The sum of every agreement's balance.")
    commitment_status: str | None = Field(
        description="Delivery of the root to the CreditRegistry: pending, sent, confirmed "
        "(on-chain) or parked."
    )
    tx_hash: str | None = Field(description="The transaction that commits the root.")


def line_state_view(found: LineBalanceProof) -> AgreementLineStateOut:
    return AgreementLineStateOut(
        agreement_id=found.agreement_id,
        cycle_id=found.cycle_id,
        outstanding_fen=found.outstanding_fen,
        leaf="0x" + found.leaf.hex(),
        proof=["0x" + node.hex() for node in found.proof],
        root="0x" + found.root.hex(),
        leaf_count=found.leaf_count,
        total_outstanding_fen=found.total_outstanding_fen,
        commitment_status=found.outbox_status,
        tx_hash=found.tx_hash,
    )


@router.get(
    "/v1/agreements/{agreement_id}/line-state",
    response_model=AgreementLineStateOut,
    responses=PROBLEMS,
    name="agreements_line_state",
)
def get_agreement_line_state(
    agreement_id: AgreementId,
    session: SessionDep,
    who: LineStateReaderDep,
    cycle_id: Annotated[
        int | None,
        Query(
            ge=19_000_101,
            le=99_991_231,
            description="The cycle (yyyymmdd); the newest committed line state when omitted.",
        ),
    ] = None,
) -> AgreementLineStateOut:
    """An agreement's outstanding balance at the end of a settled business date, with the
    Merkle proof of it against the line-state root the oracle quorum signed."""
    found = prove_line_balance(session.connection(), agreement_id.lower(), cycle_id)
    return line_state_view(found)
