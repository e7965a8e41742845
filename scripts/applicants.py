"""Synthetic applicants' credit characteristics, shared by the demo and the benchmarks.

The keys and values are those of the German credit data set the scorecard is trained
on (`node_api.risk`); no real person is described.
"""

from __future__ import annotations

from node_api.risk.samples import APPROVED_CHARACTERISTICS

Characteristics = dict[str, str | int]
"""An application's `characteristics` object: category names and whole numbers."""

GOOD_PROFILE: Characteristics = dict(APPROVED_CHARACTERISTICS)
"""An applicant the scorecard approves."""

POOR_PROFILE: Characteristics = {
    "status_of_existing_checking_account": "... < 0 DM",
    "credit_history": "all credits at this bank paid back duly, no credits taken/ all credits "
    "paid back duly",
    "duration_in_month": 48,
    "savings_account_and_bonds": "... < 100 DM",
    "purpose": "education",
    "credit_amount": 12000,
    "property": "unknown / no property",
    "age_in_years": 22,
    "present_employment_since": "unemployed",
    "housing": "for free",
    "other_installment_plans": "bank, stores",
    "installment_rate_in_percentage_of_disposable_income": 4,
}
"""An applicant the scorecard declines (it scores 386, below the cut-off)."""
