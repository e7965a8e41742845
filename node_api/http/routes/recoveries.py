"""After a line goes bad: recoveries on charged-off or compensated lines
(`/v1/credit-lines/{id}/recoveries`), guarantee agreements and guarantor compensations
(代偿, `/v1/collections/guarantees`, `/v1/collections/compensations`), and sales of
charged-off debt to a collection agency (`/v1/collections/debt-sales`).

Operators record money collected; lender administrators set guarantee agreements, run
compensations and sell debt. Every amount is in fen.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from node_api.collections.compensation import (
    CompensationTermsView,
    CompensationView,
    Coverage,
    compensate_line,
    fetch_compensation_terms,
    fetch_compensations,
    run_due_compensations,
    set_compensation_terms,
)
from node_api.collections.debt_sale import DebtSaleView, fetch_debt_sales, sell_debt
from node_api.collections.policy import load_policy
from node_api.collections.recoveries import (
    RecoveryView,
    fetch_recoverable,
    fetch_recoveries,
    record_recovery,
)
from node_api.http.authz import AdminDep, OperatorDep, ReaderDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import (
    ID_MAX,
    AmountFen,
    IdentifierStr,
    LineId,
    ProductCodeStr,
    StrictBody,
    documented,
    fetch_as_of,
)
from node_api.kernel.money import Fen
from node_api.lending.core.context import LendingCaches

router = APIRouter(tags=["collections"])

SALE_LINES_MAX = 1_000


# ---------------------------------------------------------------- models


class RecoveryIn(StrictBody):
    amount_fen: AmountFen
    payment_ref: IdentifierStr | None = None
    """The payer's reference (bank transaction id, agency remittance); not personal data."""
    as_of: date | None = None
    """Default: the node's business date."""


class RecoverableOut(BaseModel):
    credit_line_id: int
    charged_off_on: date | None
    sold: bool
    written_off_fen: Fen
    """Written off and not yet recovered or sold."""
    claims_fen: dict[str, int]
    """Each compensating guarantor's open claim, by partner ref, in fen."""
    recoverable_fen: Fen
    """The most a recovery may still collect."""


class RecoveriesOut(BaseModel):
    recoverable: RecoverableOut
    recoveries: list[RecoveryView]


class CompensationTermsIn(StrictBody):
    product_code: ProductCodeStr
    guarantor_ref: IdentifierStr
    """A settlement partner registered with the guarantor role."""
    coverage: Coverage
    """`overdue`: the guarantor pays the past-due amounts; `balance`: the whole balance."""


class CompensationIn(StrictBody):
    as_of: date | None = None
    """Default: the node's business date."""


class CompensationRunOut(BaseModel):
    as_of: date
    compensated: int
    amount_fen: Fen
    compensations: list[CompensationView]


class DebtSaleIn(StrictBody):
    buyer_ref: IdentifierStr
    """The collection agency: a registered settlement partner other than the lender."""
    credit_line_ids: list[Annotated[int, Field(ge=1, le=ID_MAX)]] = Field(
        min_length=1, max_length=SALE_LINES_MAX
    )
    """Charged-off lines, each sold once, with no guarantor claim open."""
    price_fen: AmountFen
    """The price of the whole portfolio, at most its face value."""
    as_of: date | None = None
    """Default: the node's business date."""


# ---------------------------------------------------------------- examples

_RECOVERY = {
    "id": 4, "credit_line_id": 42, "seq": 1, "amount_fen": 30_000, "guarantor_fen": 20_000,
    "shared_fen": 10_000, "guarantor_ref": "guard", "payment_ref": "bank-tx-981",
    "as_of": "2025-09-01", "recorded_by": "k_3f9a",
}  # fmt: skip
_RECOVERABLE = {
    "credit_line_id": 42, "charged_off_on": "2025-08-28", "sold": False,
    "written_off_fen": 90_000, "claims_fen": {}, "recoverable_fen": 90_000,
}  # fmt: skip
_TERMS = {
    "product_code": "REV1", "guarantor_ref": "guard", "coverage": "overdue",
    "set_on": "2025-06-01", "set_by": "k_admin",
}  # fmt: skip
_COMPENSATION = {
    "id": 3, "credit_line_id": 42, "product_code": "REV1", "guarantor_ref": "guard",
    "coverage": "overdue", "days_past_due": 90, "amount_fen": 52_000, "repayment_id": 77,
    "as_of": "2025-07-30", "agreement_change_seq": 1, "recorded_by": "system",
}  # fmt: skip
_SALE = {
    "id": 2, "buyer_ref": "agency-a", "face_fen": 400_000, "price_fen": 60_000,
    "as_of": "2025-10-01", "recorded_by": "k_admin",
    "lines": [{"credit_line_id": 42, "face_fen": 300_000, "price_fen": 45_000},
              {"credit_line_id": 43, "face_fen": 100_000, "price_fen": 15_000}],
}  # fmt: skip


# ---------------------------------------------------------------- recoveries


@router.post(
    "/v1/credit-lines/{credit_line_id}/recoveries",
    name="recoveries_create",
    status_code=201,
    response_model=RecoveryView,
    **documented(201, _RECOVERY, {"amount_fen": 30_000, "payment_ref": "bank-tx-981"}),
)
def post_recovery(
    credit_line_id: LineId, body: RecoveryIn, who: OperatorDep, once: OnceDep
) -> Response:
    """Post money collected on a charged-off or compensated line: the guarantor's claim is
    paid back first, the rest is shared by the funders' funded shares in the next
    settlement cycle."""

    def operation(caches: LendingCaches) -> RecoveryView:
        conn = once.session.connection()
        return record_recovery(
            conn,
            caches.accounts,
            line_id=credit_line_id,
            amount_fen=body.amount_fen,
            as_of=fetch_as_of(conn, body.as_of),
            payment_ref=body.payment_ref,
            by=who.key_id,
        )

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/credit-lines/{credit_line_id}/recoveries",
    name="recoveries_list",
    response_model=RecoveriesOut,
    **documented(200, {"recoverable": _RECOVERABLE, "recoveries": [_RECOVERY]}),
)
def get_recoveries(credit_line_id: LineId, session: SessionDep, who: ReaderDep) -> RecoveriesOut:
    """What the line can still recover, and its recoveries, oldest first."""
    conn = session.connection()
    recoveries = fetch_recoveries(conn, credit_line_id)
    recoverable = fetch_recoverable(conn, credit_line_id)
    return RecoveriesOut(
        recoverable=RecoverableOut(
            credit_line_id=credit_line_id,
            charged_off_on=recoverable.charged_off_on,
            sold=recoverable.sold,
            written_off_fen=recoverable.written_off_fen,
            claims_fen=dict(recoverable.claims_fen),
            recoverable_fen=recoverable.total_fen,
        ),
        recoveries=recoveries,
    )


# ---------------------------------------------------------------- guarantees and compensation


@router.post(
    "/v1/collections/guarantees",
    name="collections_guarantees_set",
    response_model=CompensationTermsView,
    **documented(
        200, _TERMS, {"product_code": "REV1", "guarantor_ref": "guard", "coverage": "overdue"}
    ),
)
def post_guarantee(body: CompensationTermsIn, who: AdminDep, once: OnceDep) -> Response:
    """Set a product's guarantee agreement: its guarantor and what it pays on the
    compensation day (replaces the product's earlier agreement)."""

    def operation(_caches: object) -> CompensationTermsView:
        conn = once.session.connection()
        return set_compensation_terms(
            conn,
            product_code=body.product_code,
            guarantor_ref=body.guarantor_ref,
            coverage=body.coverage,
            on=fetch_as_of(conn),
            by=who.key_id,
        )

    return once.run(who, body, 200, operation)


@router.get(
    "/v1/collections/guarantees",
    name="collections_guarantees_list",
    response_model=list[CompensationTermsView],
    **documented(200, [_TERMS]),
)
def get_guarantees(session: SessionDep, who: ReaderDep) -> list[CompensationTermsView]:
    """Every product's guarantee agreement."""
    return fetch_compensation_terms(session.connection())


@router.post(
    "/v1/credit-lines/{credit_line_id}/compensations",
    name="compensations_create",
    status_code=201,
    response_model=CompensationView,
    **documented(201, _COMPENSATION, {"as_of": "2025-07-30"}),
)
def post_compensation(
    credit_line_id: LineId, who: AdminDep, once: OnceDep, body: CompensationIn | None = None
) -> Response:
    """The line's guarantor compensates it now: refused before the compensation day, on a
    charged-off line, or when the guarantee covers nothing the line owes."""
    request = body or CompensationIn()

    def operation(caches: LendingCaches) -> CompensationView:
        conn = once.session.connection()
        return compensate_line(
            conn,
            caches,
            load_policy(once.services.settings),
            line_id=credit_line_id,
            as_of=fetch_as_of(conn, request.as_of),
            by=who.key_id,
        )

    return once.run(who, request, 201, operation)


@router.post(
    "/v1/collections/compensations/run",
    name="collections_compensations_run",
    response_model=CompensationRunOut,
    **documented(
        200,
        {"as_of": "2025-07-30", "compensated": 1, "amount_fen": 52_000,
         "compensations": [_COMPENSATION]},
        {"as_of": "2025-07-30"},
    ),
)  # fmt: skip
def post_compensation_run(
    who: AdminDep, once: OnceDep, body: CompensationIn | None = None
) -> Response:
    """Compensate every guaranteed line at or past the compensation day (also done after
    each end of day)."""
    request = body or CompensationIn()

    def operation(caches: LendingCaches) -> CompensationRunOut:
        conn = once.session.connection()
        run = run_due_compensations(
            conn,
            caches,
            load_policy(once.services.settings),
            fetch_as_of(conn, request.as_of),
            by=who.key_id,
        )
        return CompensationRunOut(
            as_of=run.as_of,
            compensated=len(run.compensations),
            amount_fen=run.amount_fen,
            compensations=list(run.compensations),
        )

    return once.run(who, request, 200, operation)


@router.get(
    "/v1/collections/compensations",
    name="collections_compensations_list",
    response_model=list[CompensationView],
    **documented(200, [_COMPENSATION]),
)
def get_compensations(
    session: SessionDep,
    who: ReaderDep,
    credit_line_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
) -> list[CompensationView]:
    """Compensations, newest first (of one line when given)."""
    return fetch_compensations(session.connection(), credit_line_id)


# ---------------------------------------------------------------- debt sale


@router.post(
    "/v1/collections/debt-sales",
    name="collections_debt_sales_create",
    status_code=201,
    response_model=DebtSaleView,
    **documented(
        201,
        _SALE,
        {"buyer_ref": "agency-a", "credit_line_ids": [42, 43], "price_fen": 60_000},
    ),
)
def post_debt_sale(body: DebtSaleIn, who: AdminDep, once: OnceDep) -> Response:
    """Sell charged-off lines to a collection agency at a price: the price is split over
    the lines by face value and shared by the funders' funded shares; the lines take no
    more recoveries."""

    def operation(caches: LendingCaches) -> DebtSaleView:
        conn = once.session.connection()
        return sell_debt(
            conn,
            caches.accounts,
            buyer_ref=body.buyer_ref,
            line_ids=body.credit_line_ids,
            price_fen=body.price_fen,
            as_of=fetch_as_of(conn, body.as_of),
            by=who.key_id,
        )

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/collections/debt-sales",
    name="collections_debt_sales_list",
    response_model=list[DebtSaleView],
    **documented(200, [_SALE]),
)
def get_debt_sales(session: SessionDep, who: ReaderDep) -> list[DebtSaleView]:
    """Sales of charged-off debt, newest first, with their lines."""
    return fetch_debt_sales(session.connection())
