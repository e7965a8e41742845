"""Product validation: structure (field by field) and the all-in cost cap.

`parse_product` is the one entry point for untrusted product definitions: it builds the
terms (every structural error becomes `InvalidProductError` naming the dotted field,
e.g. `fees.late_fee_cap_per_bill_fen`) and then checks the cost cap.

Cost cap: for every allowed tenor, the all-in EFFECTIVE annual rate ((1 + monthly
IRR)^12 − 1, fees included, see `pricing`) must not exceed the cap (default 2,400 bps,
i.e. 24%). The check runs at both ends of the limit range, because a fixed fee weighs
most on the smallest amount. Revolving-purchase products also have their revolving
interest rate annualised (effective, compounded monthly) against the same cap. The
comparison is on the reported figure (rounded half-even to 1 bps).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from node_api.kernel.errors import CreditNetError, CreditNetValueError
from node_api.kernel.money import Bps
from node_api.lending.products.model import InvalidProductError, ProductTerms, ProductType
from node_api.lending.products.pricing import (
    AllInCost,
    compute_all_in_apr,
    compute_revolving_annual_rates,
)

DEFAULT_COST_CAP_BPS = Bps(2_400)


class ProductCostAboveCapError(CreditNetValueError):
    """A product (or a plan) whose all-in effective annual cost exceeds the cap."""

    code = "product_cost_above_cap"


def format_bps_as_percent(rate_bps: int) -> str:
    """2,417 bps → '24.17%' (exact; for messages only)."""
    sign = "-" if rate_bps < 0 else ""
    whole, hundredths = divmod(abs(rate_bps), 100)
    return f"{sign}{whole}.{hundredths:02d}%"


def parse_product_terms(data: Mapping[str, Any]) -> ProductTerms:
    """Build terms from untrusted data; the first error becomes `InvalidProductError`.

    Every offending field is listed in the error's `invalid_fields` (names only, never
    the values, which could carry anything).
    """
    try:
        return ProductTerms.model_validate(data)
    except ValidationError as error:
        raise _invalid_product_error(error) from None


def _invalid_product_error(error: ValidationError) -> InvalidProductError:
    fields: list[str] = []
    details: list[str] = []
    for item in error.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, CreditNetError):
            if cause.field and not path.endswith(cause.field):
                path = f"{path}.{cause.field}" if path else cause.field
            details.append(cause.detail)
        else:
            details.append(item["msg"])
        fields.append(path or "product")
    return InvalidProductError(details[0], field=fields[0], invalid_fields=fields)


def check_all_in_cost(cost: AllInCost, cost_cap_bps: int = DEFAULT_COST_CAP_BPS) -> None:
    """Raise `ProductCostAboveCapError` when a plan's effective annual cost is above the cap."""
    effective_bps = cost.effective_annual_bps
    if effective_bps <= cost_cap_bps:
        return
    raise ProductCostAboveCapError(
        f"the all-in effective annual cost of a {cost.tenor_months}-month plan of "
        f"{cost.principal_fen} fen is {format_bps_as_percent(effective_bps)} "
        f"({effective_bps} bps), above the cap of {format_bps_as_percent(cost_cap_bps)}",
        field="installment.tenors_months",
        tenor_months=cost.tenor_months,
        sample_principal_fen=cost.principal_fen,
        computed_bps=effective_bps,
        nominal_bps=cost.nominal_annual_bps,
        cap_bps=cost_cap_bps,
    )


def validate_product_cost(
    terms: ProductTerms, cost_cap_bps: int = DEFAULT_COST_CAP_BPS
) -> tuple[AllInCost, ...]:
    """Check every tenor at both ends of the limit range (and the revolving rate).

    Returns the computed costs, ascending by tenor then amount, for display.
    """
    samples_fen = sorted({terms.limit_fen_min, terms.limit_fen_max})
    costs = tuple(
        compute_all_in_apr(terms, principal_fen, tenor)
        for tenor in terms.installment.tenors_months
        for principal_fen in samples_fen
    )
    for cost in costs:
        check_all_in_cost(cost, cost_cap_bps)
    if terms.product_type is ProductType.REVOLVING_PURCHASE:
        revolving = compute_revolving_annual_rates(terms.interest)
        if revolving.effective_bps > cost_cap_bps:
            raise ProductCostAboveCapError(
                f"the revolving rate annualises to {format_bps_as_percent(revolving.effective_bps)}"
                f" effective ({revolving.effective_bps} bps; nominal {revolving.nominal_bps} bps),"
                f" above the cap of {format_bps_as_percent(cost_cap_bps)}",
                field="interest.rate",
                computed_bps=revolving.effective_bps,
                nominal_bps=revolving.nominal_bps,
                cap_bps=cost_cap_bps,
            )
    return costs


def parse_product(
    data: Mapping[str, Any], cost_cap_bps: int = DEFAULT_COST_CAP_BPS
) -> ProductTerms:
    """Parse and fully validate a product definition (structure, then cost cap)."""
    terms = parse_product_terms(data)
    validate_product_cost(terms, cost_cap_bps)
    return terms
