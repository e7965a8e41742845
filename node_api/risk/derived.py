"""Derived ratios: the features any credit team computes, built from declared column roles.

A data set declares which of its columns play which role (`amount`, `duration`, ...);
every catalog entry whose roles are all declared becomes one feature of the boosted
model, the same way for every data set (nothing here names a data set's columns). Each
entry carries the direction its risk moves in, a domain fact rather than a fit: a larger
monthly installment or installment-to-income never lowers the bad log-odds, a larger
implied income never raises them. The trees are constrained to that direction.

The value of a `ratio` entry is the first column divided by the product of the others
(missing when any input is missing or the divisor is zero); of a `difference` entry, the
first minus the second. Pure Python: serving computes them in `gbm_card.py` from the same
definition, training in `gbm_fit.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from node_api.kernel.errors import CreditNetValueError


class ColumnRole(StrEnum):
    """What a numeric column means, as far as the derived features need to know."""

    AMOUNT = "amount"
    """The credit amount asked for or granted."""
    DURATION = "duration"
    """The term of the credit, in months."""
    AGE = "age"
    """The applicant's age, in years."""
    INCOME = "income"
    """The applicant's income per period."""
    EXPENSES = "expenses"
    """The applicant's expenses per period (the same period as income)."""
    DEBT = "debt"
    """The applicant's outstanding debt."""
    ASSETS = "assets"
    """The applicant's assets."""
    PRICE = "price"
    """The price of the goods the credit pays for."""
    INSTALLMENT_RATE = "installment_rate"
    """The installment as a share of disposable income (any increasing scale)."""


@dataclass(frozen=True, slots=True)
class DerivedDefinition:
    name: str
    kind: Literal["ratio", "difference"]
    roles: tuple[ColumnRole, ...]
    monotone: Literal[-1, 1]
    reason_text: str


R = ColumnRole
CATALOG: tuple[DerivedDefinition, ...] = (
    DerivedDefinition(
        "monthly_installment", "ratio", (R.AMOUNT, R.DURATION), 1, "Monthly installment"
    ),
    DerivedDefinition(
        "amount_per_age_year", "ratio", (R.AMOUNT, R.AGE), 1, "Credit amount per year of age"
    ),
    DerivedDefinition(
        "installment_to_income",
        "ratio",
        (R.AMOUNT, R.DURATION, R.INCOME),
        1,
        "Installment relative to income",
    ),
    DerivedDefinition(
        "implied_income",
        "ratio",
        (R.AMOUNT, R.DURATION, R.INSTALLMENT_RATE),
        -1,
        "Income implied by the installment and its share of income",
    ),
    DerivedDefinition(
        "amount_to_income", "ratio", (R.AMOUNT, R.INCOME), 1, "Credit amount relative to income"
    ),
    DerivedDefinition(
        "expenses_to_income", "ratio", (R.EXPENSES, R.INCOME), 1, "Expenses relative to income"
    ),
    DerivedDefinition("loan_to_value", "ratio", (R.AMOUNT, R.PRICE), 1, "Credit amount to price"),
    DerivedDefinition("debt_to_income", "ratio", (R.DEBT, R.INCOME), 1, "Debt relative to income"),
    DerivedDefinition(
        "income_after_expenses", "difference", (R.INCOME, R.EXPENSES), -1, "Income after expenses"
    ),
    DerivedDefinition(
        "assets_to_amount", "ratio", (R.ASSETS, R.AMOUNT), -1, "Assets relative to credit amount"
    ),
)
"""Every derived feature, in the order the model lists them."""


@dataclass(frozen=True, slots=True)
class DerivedFeature:
    """A catalog entry bound to a data set's columns."""

    name: str
    kind: Literal["ratio", "difference"]
    characteristics: tuple[str, ...]
    monotone: Literal[-1, 1]
    reason_text: str


def parse_roles(items: Mapping[str, str], numeric_columns: set[str]) -> dict[ColumnRole, str]:
    """Role -> column from `role=column` pairs; each column must be a numeric characteristic."""
    roles: dict[ColumnRole, str] = {}
    for role_name, column in items.items():
        try:
            role = ColumnRole(role_name)
        except ValueError:
            raise CreditNetValueError(f"unknown column role {role_name!r}", field="role") from None
        if column not in numeric_columns:
            raise CreditNetValueError(
                "a role's column must be a numeric column of the file", field="role"
            )
        roles[role] = column
    return roles


def bind_derived_features(roles: Mapping[ColumnRole, str]) -> list[DerivedFeature]:
    """The catalog entries whose roles are all declared, bound to their columns."""
    return [
        DerivedFeature(
            definition.name,
            definition.kind,
            tuple(roles[role] for role in definition.roles),
            definition.monotone,
            definition.reason_text,
        )
        for definition in CATALOG
        if all(role in roles for role in definition.roles)
    ]


def compute_derived(kind: str, values: tuple[float | None, ...]) -> float | None:
    """One derived value from its inputs (None: missing, or a zero divisor)."""
    if any(value is None for value in values):
        return None
    first, *rest = (float(value) for value in values if value is not None)
    if kind == "difference":
        return first - rest[0]
    divisor = rest[0]
    for value in rest[1:]:
        divisor = divisor * value
    return None if divisor == 0.0 else first / divisor
