"""Sample product definitions shared by the lending unit and property tests."""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_THRESHOLDS = [
    {"days_past_due_min": 1, "bucket": "M1"},
    {"days_past_due_min": 31, "bucket": "M2"},
    {"days_past_due_min": 61, "bucket": "M3"},
    {"days_past_due_min": 91, "bucket": "M4"},
    {"days_past_due_min": 121, "bucket": "M5"},
    {"days_past_due_min": 151, "bucket": "M6"},
    {"days_past_due_min": 181, "bucket": "M7+"},
]

_INSTALLMENT_PRODUCT: dict[str, Any] = {
    "product_code": "INST-12",
    "version": 1,
    "product_type": "installment",
    "currency": "CNY",
    "limit_fen_min": 100_000,
    "limit_fen_max": 5_000_000,
    "interest": {"method": "apr_bps", "rate": 1200, "day_count": "ACT/365"},
    "free_interest_days": 0,
    "bill_day_options": [20, 5, 10],
    "due_date_offset_days": 20,
    "minimum_payment": {"principal_share_bps": 1000, "floor_fen": 5000},
    "installment": {
        "tenors_months": [12, 3, 6],
        "pricing_method": "annuity",
        "rate_bps": 1200,
        "cancellation_days": 7,
    },
    "fees": {
        "origination_fee_bps": 0,
        "origination_fee_fixed_fen": 0,
        "installment_fee_fen": 0,
        "late_fee_fixed_fen": 3000,
        "late_fee_cap_bps": 150,
        "late_fee_cap_per_bill_fen": 5000,
        "early_repayment_fee_bps": 100,
    },
    "penalty_rate_ppm_per_day": 500,
    "grace_days": 3,
    "allocation": {"order": ["penalty", "fees", "interest", "principal"], "past_due_first": True},
    "delinquency": {"thresholds": DEFAULT_THRESHOLDS, "charge_off_days": 180},
    "funding_split": [
        {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
        {"partner_id": "bank-a", "share_ppm": 700_000, "funder_rate_bps": 600},
    ],
    "channel_commission_bps": 50,
    "eligible_channels": ["pos", "app"],
}

_REVOLVING_PRODUCT_CHANGES: dict[str, Any] = {
    "product_code": "REV-PAY",
    "product_type": "revolving_purchase",
    "interest": {"method": "daily_ppm", "rate": 500, "day_count": "ACT/365"},
    "free_interest_days": 50,
    "installment": {
        "tenors_months": [3, 6, 12],
        "pricing_method": "flat_monthly_fee",
        "rate_bps": 60,
        "cancellation_days": 0,
    },
}


def installment_product_data() -> dict[str, Any]:
    """A fresh copy of an annuity installment product at 12% (safe to mutate)."""
    return copy.deepcopy(_INSTALLMENT_PRODUCT)


def revolving_product_data() -> dict[str, Any]:
    """A revolving purchase line at 500 ppm a day with 0.6%-a-month bill installments."""
    data = installment_product_data()
    data.update(copy.deepcopy(_REVOLVING_PRODUCT_CHANGES))
    return data
