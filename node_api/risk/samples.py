"""A sample applicant's credit characteristics, for the API's examples, the demo and the
benchmarks.

The keys and values are those of the German credit data set the default card is trained
on; no real person is described. The default card scores this profile 620, which the
default policy approves.
"""

from __future__ import annotations

from typing import Final

APPROVED_CHARACTERISTICS: Final[dict[str, str | int]] = {
    "status_of_existing_checking_account": "no checking account",
    "credit_history": "critical account/ other credits existing (not at this bank)",
    "duration_in_month": 12,
    "savings_account_and_bonds": "unknown/ no savings account",
    "purpose": "radio/television",
    "credit_amount": 2000,
    "property": "real estate",
    "age_in_years": 40,
    "present_employment_since": "... >= 7 years",
    "housing": "own",
    "other_installment_plans": "none",
    "installment_rate_in_percentage_of_disposable_income": 2,
}
