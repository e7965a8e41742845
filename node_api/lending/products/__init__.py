"""The product factory: versioned, immutable product terms, their validation, hash and
pricing. Pure: plain data in, plain data out; storage and HTTP live elsewhere."""

from node_api.lending.products.canonical import canonical_terms_json, terms_hash, terms_hash_hex
from node_api.lending.products.model import (
    AllocationOrder,
    DelinquencyTerms,
    DelinquencyThreshold,
    FeeTerms,
    FundingShare,
    InstallmentTerms,
    InterestTerms,
    InvalidProductError,
    MinimumPaymentRule,
    ProductTerms,
    ProductType,
)
from node_api.lending.products.pricing import (
    AllInCost,
    AnnualRates,
    compute_all_in_apr,
    compute_annualised_irr,
    compute_revolving_annual_rates,
    compute_upfront_fee,
)
from node_api.lending.products.validation import (
    DEFAULT_COST_CAP_BPS,
    ProductCostAboveCapError,
    check_all_in_cost,
    parse_product,
    parse_product_terms,
    validate_product_cost,
)
from node_api.lending.products.whatif import Quote, price_payoff, price_purchase

__all__ = [
    "DEFAULT_COST_CAP_BPS",
    "AllInCost",
    "AllocationOrder",
    "AnnualRates",
    "DelinquencyTerms",
    "DelinquencyThreshold",
    "FeeTerms",
    "FundingShare",
    "InstallmentTerms",
    "InterestTerms",
    "InvalidProductError",
    "MinimumPaymentRule",
    "ProductCostAboveCapError",
    "ProductTerms",
    "ProductType",
    "Quote",
    "canonical_terms_json",
    "check_all_in_cost",
    "compute_all_in_apr",
    "compute_annualised_irr",
    "compute_revolving_annual_rates",
    "compute_upfront_fee",
    "parse_product",
    "parse_product_terms",
    "price_payoff",
    "price_purchase",
    "terms_hash",
    "terms_hash_hex",
    "validate_product_cost",
]
