"""`/v1/products`: publish immutable product versions, list them, price a sample purchase.

A version never changes once published: publishing the same (code, version) with other
terms is a 409; lines booked on an old version keep its terms.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from node_api.http.authz import AdminDep, ReaderDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import (
    AMOUNT_FEN_MAX,
    PROBLEMS,
    PathIdText,
    ProductCodePath,
    ScheduledInstallmentOut,
    StrictBody,
)
from node_api.http.services import ServicesDep
from node_api.kernel.money import Fen
from node_api.ledger.schema import product_version_table
from node_api.lending.product_versions import (
    fetch_product_terms,
    register_product_version,
)
from node_api.lending.products import ProductTerms, parse_product_terms, terms_hash_hex
from node_api.lending.products.pricing import compute_all_in_apr
from node_api.lending.products.validation import validate_product_cost
from node_api.lending.products.whatif import price_purchase

router = APIRouter(tags=["products"])

Version = Annotated[int, PathIdText, Path(ge=1, le=1_000_000)]


class TenorCostOut(BaseModel):
    tenor_months: int
    sample_principal_fen: Fen
    nominal_annual_bps: int
    effective_annual_bps: int


class ProductOut(BaseModel):
    product_code: str
    version: int
    product_type: str
    terms_hash: str
    terms: ProductTerms


class ProductPublishedOut(ProductOut):
    all_in_costs: list[TenorCostOut]


class WhatIfIn(StrictBody):
    amount_fen: Fen = Field(strict=True, gt=0, le=AMOUNT_FEN_MAX)
    tenor_months: int = Field(strict=True, ge=1, le=60)
    start_date: date
    bill_day: int | None = Field(default=None, strict=True, ge=1, le=31)


class WhatIfInstallmentOut(ScheduledInstallmentOut):
    balance_after_fen: Fen


class WhatIfQuoteOut(BaseModel):
    product_code: str
    product_version: int
    terms_hash: str
    amount_fen: Fen
    tenor_months: int
    bill_day: int
    upfront_fee_fen: Fen
    total_interest_fen: Fen
    total_fees_fen: Fen
    total_repayment_fen: Fen
    nominal_annual_bps: int
    """12 × the monthly IRR of the flows on the payment due dates, rounded up to the bps."""
    effective_annual_bps: int
    """(1 + the monthly IRR)^12 − 1 on the payment due dates, rounded up to the bps."""
    annualization: Literal["nominal", "effective"]
    """Which of the two the node compares with its cost cap."""
    annual_cost_bps: int
    cost_cap_bps: int
    within_cost_cap: bool
    """Whether a plan on these terms and dates could be booked (the cap, decided exactly)."""
    installments: list[WhatIfInstallmentOut]


def _product_view(terms: ProductTerms) -> ProductOut:
    return ProductOut(
        product_code=terms.product_code,
        version=terms.version,
        product_type=terms.product_type.value,
        terms_hash=terms_hash_hex(terms),
        terms=terms,
    )


def _costs(terms: ProductTerms) -> list[TenorCostOut]:
    """The all-in cost at the product's largest limit for each allowed tenor."""
    return [
        TenorCostOut(
            tenor_months=tenor,
            sample_principal_fen=terms.limit_fen_max,
            nominal_annual_bps=int(cost.nominal_annual_bps),
            effective_annual_bps=int(cost.effective_annual_bps),
        )
        for tenor in terms.installment.tenors_months
        for cost in [compute_all_in_apr(terms, terms.limit_fen_max, tenor)]
    ]


@router.post(
    "/v1/products",
    name="products_create",
    status_code=201,
    response_model=ProductPublishedOut,
    responses=PROBLEMS,
)
def publish_product(body: ProductTerms, who: AdminDep, once: OnceDep) -> Response:
    """Publish a product version after checking its all-in cost against the cap."""

    def operation(_caches: object) -> ProductPublishedOut:
        terms = parse_product_terms(body.model_dump(mode="json"))
        cap = once.services.lending.policy.cost_cap
        validate_product_cost(terms, cap.cap_bps, cap.annualization)
        register_product_version(once.session.connection(), terms)
        return ProductPublishedOut(**dict(_product_view(terms)), all_in_costs=_costs(terms))

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/products", name="products_list", response_model=list[ProductOut], responses=PROBLEMS
)
def list_products(session: SessionDep, _who: ReaderDep) -> list[ProductOut]:
    """Every published version, by code then version."""
    table = product_version_table
    rows = session.connection().execute(
        select(table.c.terms_json).order_by(table.c.product_code, table.c.version)
    )
    return [_product_view(parse_product_terms(orjson.loads(row[0]))) for row in rows]


@router.get(
    "/v1/products/{product_code}/versions/{version}",
    name="products_get",
    response_model=ProductOut,
    responses=PROBLEMS,
)
def get_product(
    product_code: ProductCodePath, version: Version, session: SessionDep, _who: ReaderDep
) -> ProductOut:
    """One published product version: its terms and their hash (`termsHash` on-chain)."""
    return _product_view(fetch_product_terms(session.connection(), product_code, version))


@router.post(
    "/v1/products/{product_code}/versions/{version}/what-if",
    name="products_what_if",
    response_model=WhatIfQuoteOut,
    responses=PROBLEMS,
)
def what_if(
    product_code: ProductCodePath,
    version: Version,
    body: WhatIfIn,
    session: SessionDep,
    services: ServicesDep,
    _who: ReaderDep,
) -> WhatIfQuoteOut:
    """Price a sample purchase under a published version without booking anything: its
    installments with their bill and payment due dates, and its all-in annual cost on
    those due dates against the node's cap."""
    terms = fetch_product_terms(session.connection(), product_code, version)
    quote = price_purchase(
        terms,
        body.amount_fen,
        body.tenor_months,
        body.start_date,
        body.bill_day,
        services.lending.policy.cost_cap,
    )
    return WhatIfQuoteOut(
        product_code=quote.product_code,
        product_version=quote.product_version,
        terms_hash="0x" + quote.terms_hash.hex(),
        amount_fen=quote.amount_fen,
        tenor_months=quote.tenor_months,
        bill_day=quote.bill_day,
        upfront_fee_fen=quote.upfront_fee_fen,
        total_interest_fen=quote.total_interest_fen,
        total_fees_fen=quote.total_fees_fen,
        total_repayment_fen=quote.total_repayment_fen,
        nominal_annual_bps=quote.nominal_annual_bps,
        effective_annual_bps=quote.effective_annual_bps,
        annualization=quote.annualization.value,
        annual_cost_bps=quote.annual_cost_bps,
        cost_cap_bps=quote.cost_cap_bps,
        within_cost_cap=quote.within_cost_cap,
        installments=[
            WhatIfInstallmentOut(
                number=item.number,
                bill_date=item.due_date,
                due_date=due_date,
                principal_fen=item.principal_fen,
                interest_fen=item.interest_fen,
                fee_fen=item.fee_fen,
                payment_fen=item.payment_fen,
                balance_after_fen=item.balance_after_fen,
            )
            for item, due_date in zip(
                quote.schedule.installments, quote.bill_due_dates, strict=True
            )
        ],
    )
