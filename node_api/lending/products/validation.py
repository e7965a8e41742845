"""Product validation: structure (field by field) and the all-in cost cap.

`parse_product` is the one entry point for untrusted product definitions: it builds the
terms (every structural error becomes `InvalidProductError` naming the dotted field,
e.g. `fees.late_fee_cap_per_bill_fen`) and then checks the cost cap.

Cost cap (decided exactly, see `cost_cap`): for every allowed tenor, the all-in annual
cost of a plan paid monthly from its start (fees included, see `pricing`) must not
exceed the cap (default 2,400 bps, i.e. 24%), annualised as the node chooses (effective
by default). The check runs at both ends of the limit range, because a fixed fee weighs
most on the smallest amount. Every product's interest, penalty and late-fee rates are
checked against the same cap. A plan's real dates are checked again when it is booked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from node_api.kernel.errors import CreditNetError
from node_api.kernel.money import Bps
from node_api.lending.products.cost_cap import (
    DEFAULT_COST_CAP_BPS as CAP_BPS,
)
from node_api.lending.products.cost_cap import (
    Annualization,
    CostCap,
    CostCapExceededError,
    check_product_rates,
    compute_annual_bps,
    compute_monthly_flows,
    is_within_cap,
)
from node_api.lending.products.cost_cap import (
    format_bps_as_percent as format_bps_as_percent,
)
from node_api.lending.products.model import InvalidProductError, ProductTerms
from node_api.lending.products.pricing import AllInCost, compute_all_in_apr

DEFAULT_COST_CAP_BPS = Bps(CAP_BPS)


class ProductCostAboveCapError(CostCapExceededError):
    """A product (or a plan) whose all-in annual cost exceeds the cap."""

    code = "product_cost_above_cap"


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


def check_all_in_cost(
    cost: AllInCost,
    cost_cap_bps: int = DEFAULT_COST_CAP_BPS,
    annualization: Annualization = Annualization.EFFECTIVE,
) -> None:
    """Raise `ProductCostAboveCapError` when a sample plan's annual cost is above the cap
    (decided exactly on its monthly flows; the figure stated is rounded up)."""
    flows = compute_monthly_flows(cost.cash_flows_fen)
    if is_within_cap(flows, cost_cap_bps, annualization):
        return
    computed_bps = compute_annual_bps(flows, annualization)
    raise ProductCostAboveCapError(
        f"the all-in {annualization.value} annual cost of a {cost.tenor_months}-month plan of "
        f"{cost.principal_fen} fen is {format_bps_as_percent(computed_bps)} "
        f"({computed_bps} bps, rounded up), above the cap of "
        f"{format_bps_as_percent(cost_cap_bps)}",
        field="installment.tenors_months",
        tenor_months=cost.tenor_months,
        sample_principal_fen=cost.principal_fen,
        computed_bps=computed_bps,
        nominal_bps=cost.nominal_annual_bps,
        cap_bps=cost_cap_bps,
        annualization=annualization.value,
    )


def validate_product_cost(
    terms: ProductTerms,
    cost_cap_bps: int = DEFAULT_COST_CAP_BPS,
    annualization: Annualization = Annualization.EFFECTIVE,
) -> tuple[AllInCost, ...]:
    """Check every tenor at both ends of the limit range, and the product's rates.

    Returns the computed costs, ascending by tenor then amount, for display.
    """
    check_product_rates(terms, CostCap(cost_cap_bps, annualization), ProductCostAboveCapError)
    samples_fen = sorted({terms.limit_fen_min, terms.limit_fen_max})
    costs = tuple(
        compute_all_in_apr(terms, principal_fen, tenor)
        for tenor in terms.installment.tenors_months
        for principal_fen in samples_fen
    )
    for cost in costs:
        check_all_in_cost(cost, cost_cap_bps, annualization)
    return costs


def parse_product(
    data: Mapping[str, Any],
    cost_cap_bps: int = DEFAULT_COST_CAP_BPS,
    annualization: Annualization = Annualization.EFFECTIVE,
) -> ProductTerms:
    """Parse and fully validate a product definition (structure, then cost cap)."""
    terms = parse_product_terms(data)
    validate_product_cost(terms, cost_cap_bps, annualization)
    return terms
