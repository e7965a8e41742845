"""Reading a cycle's ledger events and the terms to allocate them, from the books.

Which events a cycle takes: at close, every `settlement_event` with a business date on or
before the cycle date that no earlier cycle claimed; the claim is written in the close's
transaction (`settlement_event_claim`), so an event committed late for an already closed
date is taken by the next cycle, and no event is ever taken twice. A recomputation (a
signer checking a report) reads exactly the events the cycle claimed.

Everything read here is append-only or immutable (events, postings, product versions,
partner ids), except guarantees, so a recomputation gives the same entries as the close.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import (
    ledger_account_table,
    posting_batch_table,
    posting_table,
    settlement_event_table,
)
from node_api.ledger.settlement_events import (
    ProductKey,
    SettlementTerms,
    SettlementTermsCache,
    fetch_line_products,
    get_days_in_year,
)
from settlement.allocate_events import (
    INCOME_EVENT_KINDS,
    PARTNER_EVENT_KINDS,
    AllocationBook,
    LedgerMovement,
    ProductParties,
)
from settlement.allocation import FunderShare, PartyTerms
from settlement.partners import PartnerDirectory
from settlement.tables import event_claim_table


def _movement_select() -> Select[Any]:
    events, batches = settlement_event_table, posting_batch_table
    return (
        select(
            events.c.id.label("event_id"),
            events.c.batch_id,
            batches.c.kind.label("batch_kind"),
            events.c.kind,
            events.c.as_of,
            events.c.amount_fen,
            events.c.credit_line_id,
            events.c.product_code,
            events.c.product_version,
            events.c.partner_ref,
        )
        .join(batches, batches.c.id == events.c.batch_id)
        .order_by(events.c.id)
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _to_movements(rows: Iterable[RowMapping]) -> list[LedgerMovement]:
    return [
        LedgerMovement(
            event_id=int(row["event_id"]),
            batch_id=int(row["batch_id"]),
            batch_kind=str(row["batch_kind"]),
            kind=str(row["kind"]),
            as_of=row["as_of"],
            amount_fen=Fen(int(row["amount_fen"])),
            credit_line_id=_optional_int(row["credit_line_id"]),
            product_code=_optional_str(row["product_code"]),
            product_version=_optional_int(row["product_version"]),
            partner_ref=_optional_str(row["partner_ref"]),
        )
        for row in rows
    ]


def fetch_unclaimed_movements(conn: Connection, cycle_date: date) -> list[LedgerMovement]:
    """Events dated on or before `cycle_date` that no cycle has taken yet, by id."""
    events, claims = settlement_event_table, event_claim_table
    statement = (
        _movement_select()
        .outerjoin(claims, claims.c.event_id == events.c.id)
        .where(and_(events.c.as_of <= cycle_date, claims.c.event_id.is_(None)))
    )
    return _to_movements(conn.execute(statement).mappings())


def fetch_claimed_movements(conn: Connection, cycle_id: int) -> list[LedgerMovement]:
    """The events a closed cycle took, by id."""
    events, claims = settlement_event_table, event_claim_table
    statement = (
        _movement_select()
        .join(claims, claims.c.event_id == events.c.id)
        .where(claims.c.cycle_id == cycle_id)
    )
    return _to_movements(conn.execute(statement).mappings())


def claim_movements(conn: Connection, cycle_id: int, movements: Sequence[LedgerMovement]) -> None:
    """Record that `cycle_id` took these events (fails if another cycle took one)."""
    rows = [{"event_id": movement.event_id, "cycle_id": cycle_id} for movement in movements]
    if rows:
        conn.execute(event_claim_table.insert(), rows)


def _funded_before(conn: Connection, line_id: int, batch_id: int) -> dict[str, int]:
    """Funded principal per product code of a line just before `batch_id` (all funders,
    the lender's own share included): the funding payables' credit balance."""
    accounts, postings = ledger_account_table, posting_table
    rows = conn.execute(
        select(accounts.c.code, func.sum(postings.c.amount_fen))
        .join(postings, postings.c.account_id == accounts.c.id)
        .where(
            and_(
                accounts.c.credit_line_id == line_id,
                accounts.c.account_type == AccountType.FUNDING_PAYABLE.value,
                postings.c.batch_id < batch_id,
            )
        )
        .group_by(accounts.c.code)
    )
    funded: dict[str, int] = {}
    for code, total in rows:
        product_code = str(code).split(":")[3]
        funded[product_code] = funded.get(product_code, 0) - int(total or 0)
    return funded


def fetch_line_weights(
    conn: Connection, movements: Sequence[LedgerMovement]
) -> dict[tuple[int, int], tuple[tuple[ProductKey, int], ...]]:
    """Product weights for every (line, batch) whose income events name no product."""
    wanted = sorted(
        {
            (movement.credit_line_id, movement.batch_id)
            for movement in movements
            if movement.kind in INCOME_EVENT_KINDS
            and movement.product_code is None
            and movement.credit_line_id is not None
        }
    )
    products_of: dict[int, list[ProductKey]] = {}
    weights: dict[tuple[int, int], tuple[tuple[ProductKey, int], ...]] = {}
    for line_id, batch_id in wanted:
        if line_id not in products_of:
            products_of[line_id] = fetch_line_products(conn, line_id)
        products = products_of[line_id]
        if len(products) <= 1:
            weights[(line_id, batch_id)] = tuple((key, 1) for key in products)
            continue
        funded = _funded_before(conn, line_id, batch_id)
        weights[(line_id, batch_id)] = tuple((key, funded.get(key[0], 0)) for key in products)
    return weights


def compute_product_parties(terms: SettlementTerms, directory: PartnerDirectory) -> ProductParties:
    """The settlement parties of one product version: the lender (its own share of the
    funding split moves nothing), each other funder at its rate, the guarantee if any."""
    lender = directory.get_lender()
    funders = tuple(
        FunderShare(directory.get_id(share.partner_ref), share.share_ppm, share.funder_rate_bps)
        for share in terms.funding_split
        if share.partner_ref != lender.ref
    )
    party_terms = PartyTerms(
        lender_id=lender.partner_id,
        funders=funders,
        guarantee=directory.guarantees.get(terms.product_code),
        year_basis_days=get_days_in_year(terms.day_count),
        lender_buys_back_charge_offs=terms.charge_off_buyback,
    )
    return ProductParties(party_terms, terms.interest_method, terms.interest_rate)


def build_allocation_book(
    conn: Connection,
    movements: Sequence[LedgerMovement],
    directory: PartnerDirectory,
    products: SettlementTermsCache | None = None,
) -> AllocationBook:
    """Partners, the product terms the events need, guarantees and line weights."""
    cache = products or SettlementTermsCache()
    line_weights = fetch_line_weights(conn, movements)
    keys: set[ProductKey] = {key for weights in line_weights.values() for key, _weight in weights}
    keys.update(
        (movement.product_code, movement.product_version)
        for movement in movements
        if movement.product_code is not None and movement.product_version is not None
    )
    parties = {
        key: compute_product_parties(cache.get(conn, key[0], key[1]), directory)
        for key in sorted(keys)
    }
    relevant = any(movement.kind in PARTNER_EVENT_KINDS for movement in movements)
    lender = directory.get_lender() if relevant else None
    return AllocationBook(
        lender_id=lender.partner_id if lender else 0,
        lender_ref=lender.ref if lender else "",
        partner_ids={partner.ref: partner.partner_id for partner in directory.partners},
        products=parties,
        guarantees=directory.guarantees,
        line_weights=line_weights,
    )
