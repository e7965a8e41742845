"""An example of every request and response body of the API, by schema name.

`node_api.http.openapi` puts each on its schema and on every operation that sends or
returns it; `tests/integration/node_api/test_openapi.py` validates each against its
model, so an example cannot drift from the schema it illustrates. All values are made
up: no example is a real person.
"""

from __future__ import annotations

from typing import Final

from pydantic import JsonValue

from node_api.http.console_examples import CONSOLE_EXAMPLES
from node_api.http.risk_examples import RISK_EXAMPLES
from node_api.risk.samples import APPROVED_CHARACTERISTICS

JsonObject = dict[str, JsonValue]

_AS_OF = "2025-06-30"
_APPLICATION_ID = "5f0c2a7e9b1d4c3f8a6e2d1b0c9f8e7a"
_AGREEMENT_ID = "0x8c1e0f3f5e9a4b7c2d6e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c"
_TX = "0x4d2f8e1c0b9a7f6e5d4c3b2a19081726354453627180f9e8d7c6b5a493827161"
_TERMS_HASH = "0x2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe"
_ROOT = "0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_SALT = "0x6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19"
_MODEL_ID = "sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"

CHARACTERISTICS: Final[JsonObject] = {**APPROVED_CHARACTERISTICS}
"""A profile the default (German) card scores 620: approved under the default policy."""

_LIMITS: JsonObject = {
    "total": 3_000_000,
    "total/purchase": 3_000_000,
    "total/purchase/PAY1": 3_000_000,
}
_FRAUD_HIT: JsonObject = {
    "code": "DEVICE_SHARED",
    "severity": "review",
    "evidence": {"identities": 4},
}
_SCORE_REASON: JsonObject = {
    "code": "DURATION",
    "characteristic": "duration_in_month",
    "text": "Duration of the credit",
    "points_lost": 4.5,
}
_REPLAY_SIDE: JsonObject = {
    "model_id": _MODEL_ID,
    "score": 620,
    "decision": "approved",
    "reason_codes": [],
    "fraud_hits": [],
    "limits": _LIMITS,
}
_LIMIT_NODE: JsonObject = {
    "path": "total/purchase/PAY1",
    "level": "product",
    "product_code": "PAY1",
    "product_version": 1,
    "limit_fen": 3_000_000,
    "temp_raise_fen": 0,
    "temp_raise_expires_on": None,
    "effective_limit_fen": 3_000_000,
    "used_fen": 12_900,
    "available_fen": 2_987_100,
}
_LINE: JsonObject = {
    "id": 42,
    "customer_ref": "cust-7f3a9c",
    "status": "active",
    "currency": "CNY",
    "opened_on": "2025-06-01",
    "bill_day": 5,
    "as_of": _AS_OF,
    "limits": [
        {**_LIMIT_NODE, "path": "total", "level": "total", "product_code": None,
         "product_version": None},
        {**_LIMIT_NODE, "path": "total/purchase", "level": "group", "product_code": None,
         "product_version": None},
        _LIMIT_NODE,
    ],
}  # fmt: skip
PRODUCT_TERMS: Final[JsonObject] = {
    "product_code": "PAY1",
    "version": 1,
    "product_type": "revolving_purchase",
    "currency": "CNY",
    "limit_fen_min": 10_000,
    "limit_fen_max": 5_000_000,
    "interest": {"method": "daily_ppm", "rate": 500, "day_count": "ACT/365"},
    "free_interest_days": 50,
    "bill_day_options": [5, 20],
    "due_date_offset_days": 20,
    "minimum_payment": {"principal_share_bps": 1000, "floor_fen": 5000},
    "penalty_rate_ppm_per_day": 500,
    "grace_days": 3,
    "funding_split": [
        {"partner_id": "bank-a", "share_ppm": 700_000, "funder_rate_bps": 600},
        {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
    ],
    "channel_commission_bps": 55,
    "eligible_channels": ["app", "pos"],
}
"""A revolving purchase product's terms, as `POST /v1/products` takes them; the tests and
the benchmarks build their products from it."""
_PRODUCT: JsonObject = {
    "product_code": "PAY1",
    "version": 1,
    "product_type": "revolving_purchase",
    "terms_hash": _TERMS_HASH,
    "terms": PRODUCT_TERMS,
}
_INSTALLMENT: JsonObject = {
    "number": 1,
    "bill_date": "2025-07-05",
    "due_date": "2025-07-25",
    "principal_fen": 96_500,
    "interest_fen": 8_700,
    "fee_fen": 0,
    "payment_fen": 105_200,
    "status": "scheduled",
}
_PLAN: JsonObject = {
    "id": 7,
    "credit_line_id": 42,
    "source": "purchase",
    "purchase_id": 1001,
    "bill_id": None,
    "product_code": "PAY1",
    "product_version": 1,
    "principal_fen": 1_200_000,
    "tenor_months": 12,
    "pricing_method": "annuity",
    "rate_bps": 1500,
    "start_date": _AS_OF,
    "status": "active",
    "closed_on": None,
    "installments": [_INSTALLMENT],
}
_PAYOFF_QUOTE: JsonObject = {
    "kind": "early_repayment",
    "as_of": _AS_OF,
    "principal_fen": 1_103_500,
    "interest_fen": 4_100,
    "fee_fen": 0,
    "total_fen": 1_107_600,
    "accrual_days": 10,
}
_REPAYMENT: JsonObject = {
    "repayment_id": 301,
    "credit_line_id": 42,
    "amount_fen": 50_000,
    "currency": "CNY",
    "as_of": _AS_OF,
    "status": "posted",
    "allocations": [
        {"account": "interest_receivable", "component": "interest", "amount_fen": 1_800},
        {"account": "principal_receivable", "component": "principal", "amount_fen": 48_200},
    ],
    "customer_credit_fen": 0,
}
_BILL: JsonObject = {
    "id": 12,
    "bill_date": "2025-06-05",
    "cycle_start": "2025-05-05",
    "due_date": "2025-06-25",
    "product_code": "PAY1",
    "product_version": 1,
    "statement_balance_fen": 129_000,
    "minimum_payment_fen": 12_900,
    "carried_fen": 0,
    "past_due_fen": 0,
    "new_principal_fen": 129_000,
    "revolving_principal_fen": 0,
    "interest_fen": 0,
    "fee_fen": 0,
    "penalty_fen": 0,
    "installment_principal_fen": 0,
    "installment_interest_fen": 0,
    "installment_fee_fen": 0,
    "purchases_fen": 129_000,
    "refunds_fen": 0,
    "payments_fen": 0,
    "credit_balance_fen": 0,
    "plan_principal_fen": 0,
    "total_balance_fen": 129_000,
    "days_past_due": 0,
    "bucket": "M0",
    "outcome": {
        "decided_on": "2025-06-25",
        "paid_fen": 129_000,
        "paid_in_full": True,
        "unpaid_minimum_fen": 0,
        "moved_to_past_due_fen": 0,
        "retro_interest_fen": 0,
    },
}
_CHAIN_CYCLE: JsonObject = {
    "status": 4,
    "status_name": "funded",
    "dispute_deadline": 1751328000,
    "funded_fen": 1_250_000,
    "claimed_fen": 0,
    "proposed_tx": _TX,
}
_CYCLE: JsonObject = {
    "cycle_id": 20250630,
    "cycle_date": _AS_OF,
    "state": "submitted",
    "entries_root": _ROOT,
    "entry_count": 1840,
    "event_count": 920,
    "partner_count": 4,
    "total_due_fen": 1_250_000,
    "signatures": 2,
    "chain": _CHAIN_CYCLE,
}
_PARTNER_CYCLE: JsonObject = {
    "cycle_id": 20250630,
    "cycle_date": _AS_OF,
    "state": "submitted",
    "books_state": "submitted",
    "chain_state": "funded",
    "entries_root": _ROOT,
    "partner_id": 2,
    "net_position_fen": 830_000,
    "entry_count": 611,
    "chain": _CHAIN_CYCLE,
    "chain_position_settled_fen": 0,
    "chain_position_disputed": False,
}
_ENTRY: JsonObject = {
    "cycle_id": 20250630,
    "entry_id": 17,
    "partner_id": 2,
    "kind": 3,
    "kind_name": "INTEREST_SHARE",
    "amount_fen": 1_830,
    "salt": _SALT,
    "proof": [_TX, _ROOT],
}
_PARTNER: JsonObject = {
    "partner_id": 2,
    "ref": "bank-a",
    "role": "funder",
    "display_name": "Bank A Consumer Finance Co.",
    "payout_address": "0x8ba1f109551bD432803012645Ac136ddd64DBA72",
    "active": True,
    "registered_on_chain": True,
}
_KEY: JsonObject = {
    "key_id": "3f9a1c2b7d4e5f60",
    "role": "partner",
    "partner_id": 2,
    "label": "bank-a settlement desk",
    "created_at": "2025-06-30T09:00:00",
    "revoked_at": None,
}
_CARD_CHARACTERISTIC: JsonObject = {
    "name": "status_of_existing_checking_account",
    "kind": "categorical",
    "reason_code": "CHECKING",
    "description": "Status of existing checking account",
    "allowed_values": ["... < 0 DM", "0 <= ... < 200 DM", "no checking account"],
    "bins": ["... < 0 DM", "0 <= ... < 200 DM", "no checking account", "missing"],
    "numeric_edges": [],
}

_POLICY: JsonObject = {
    "card": "german",
    "risk": {
        "approve_score_min": 521,
        "decline_score_below": 484,
        "limit_bands": [
            {"score_min": 484, "income_multiplier_bps": 10_000, "total_limit_fen_max": 500_000},
            {"score_min": 521, "income_multiplier_bps": 20_000, "total_limit_fen_max": 2_000_000},
        ],
        "total_limit_fen_min": 50_000,
        "total_limit_fen_max": 10_000_000,
    },
}
_CODE_ABI: list[JsonValue] = [
    {
        "type": "function",
        "name": "verifyEntry",
        "stateMutability": "view",
        "inputs": [
            {"name": "cycleId", "type": "uint64", "internalType": "uint64"},
            {"name": "entryId", "type": "uint64", "internalType": "uint64"},
            {"name": "partnerId", "type": "uint32", "internalType": "uint32"},
            {"name": "kind", "type": "uint8", "internalType": "uint8"},
            {"name": "amountFen", "type": "int256", "internalType": "int256"},
            {"name": "salt", "type": "bytes32", "internalType": "bytes32"},
            {"name": "proof", "type": "bytes32[]", "internalType": "bytes32[]"},
        ],
        "outputs": [{"name": "", "type": "bool", "internalType": "bool"}],
    }
]

EXAMPLES: Final[dict[str, JsonValue]] = {
    # applications
    "ApplicationIn": {
        "product_code": "PAY1",
        "name": "Wang Example",
        "id_number": "110101198503120279",
        "phone": "13900000001",
        "birth_date": "1985-03-12",
        "gender": "male",
        "monthly_income_fen": 1_500_000,
        "device_id": "device-7f3a9c",
        "ip": "203.0.113.7",
        "channel_id": "app",
        "characteristics": CHARACTERISTICS,
    },
    "ApplicationOut": {
        "application_id": _APPLICATION_ID,
        "decision": "approved",
        "reason_codes": [],
        "score": 620,
        "model_id": _MODEL_ID,
        "score_reasons": [_SCORE_REASON],
        "fraud_hits": [],
        "limits": _LIMITS,
        "credit_line_id": 42,
        "agreement_id": _AGREEMENT_ID,
        "existing_customer": False,
        "product_code": "PAY1",
        "product_version": 1,
    },
    "ApplicationDetailOut": {
        "application_id": _APPLICATION_ID,
        "customer_id": "c5e1b0a4d3f2e1c0b9a8f7e6d5c4b3a2",
        "status": "approved",
        "decision": "review",
        "reason_codes": ["DEVICE_SHARED"],
        "score": 560,
        "model_id": _MODEL_ID,
        "score_detail": {
            "score_exact": 560.37,
            "score_band": 6,
            "bin_indices": {"duration_in_month": 1, "housing": 2},
            "missing": [],
            "reasons": [_SCORE_REASON],
        },
        "fraud_signals": {
            "prior_applications": {"device:24h": 1},
            "other_identities": {"device": 3},
            "blacklisted": [],
            "ring_identities": 1,
        },
        "fraud_hits": [_FRAUD_HIT],
        "limits": _LIMITS,
        "existing_customer": False,
        "credit_line_id": 42,
        "agreement_id": _AGREEMENT_ID,
        "product_code": "PAY1",
        "product_version": 1,
        "policy_version": 1,
        "channel_id": "app",
        "applied_at": "2025-06-30T09:12:44.120000+00:00",
        "business_date": _AS_OF,
        "review": {
            "action": "approve",
            "reason_code": "INCOME_VERIFIED",
            "reviewer_key_id": "k_3f9a1c2b",
            "reviewed_at": "2025-06-30T10:02:11+00:00",
        },
    },
    "ReplayOut": {"matches": True, "stored": _REPLAY_SIDE, "replayed": _REPLAY_SIDE},
    "ReviewIn": {"action": "approve", "reason_code": "INCOME_VERIFIED"},
    # credit lines
    "LineOpenIn": {
        "customer_ref": "cust-7f3a9c",
        "as_of": "2025-06-01",
        "total_limit_fen": 3_000_000,
        "group_limits": {"purchase": 3_000_000, "cash": 500_000},
        "products": [
            {
                "product_code": "PAY1",
                "version": 1,
                "limit_fen": 3_000_000,
                "channel_limits": {"pos": 1_000_000},
            }
        ],
        "bill_day": 5,
    },
    "LineOut": _LINE,
    "LimitChangeIn": {"path": "total/purchase/PAY1", "limit_fen": 2_500_000},
    "TemporaryRaiseIn": {
        "path": "total",
        "raise_fen": 500_000,
        "expires_on": "2025-07-31",
        "as_of": _AS_OF,
    },
    "StatusChangeIn": {"as_of": _AS_OF},
    # uses
    "PurchaseIn": {
        "merchant_id": "m-coffee-0193",
        "channel_id": "pos",
        "amount_fen": 12_900,
        "currency": "CNY",
        "product_code": "PAY1",
    },
    "DrawdownIn": {"channel_id": "app", "amount_fen": 200_000, "currency": "CNY"},
    "UseOut": {
        "id": 1001,
        "kind": "purchase",
        "status": "authorized",
        "credit_line_id": 42,
        "amount_fen": 12_900,
        "fee_fen": 0,
        "currency": "CNY",
        "as_of": _AS_OF,
        "channel_id": "pos",
        "merchant_id": "m-coffee-0193",
        "product_code": "PAY1",
        "product_version": 1,
        "available_fen": 2_987_100,
    },
    "RefundIn": {"amount_fen": 2_900},
    "RefundOut": {
        "refund_id": 5,
        "purchase_id": 1001,
        "credit_line_id": 42,
        "amount_fen": 2_900,
        "principal_fen": 2_900,
        "customer_credit_fen": 0,
        "as_of": _AS_OF,
        "purchase_refunded_fen": 2_900,
        "purchase_principal_open_fen": 10_000,
    },
    "PurchaseOut": {
        "id": 1001,
        "kind": "purchase",
        "credit_line_id": 42,
        "product_code": "PAY1",
        "product_version": 1,
        "channel_id": "pos",
        "merchant_id": "m-coffee-0193",
        "amount_fen": 12_900,
        "fee_fen": 0,
        "refunded_fen": 2_900,
        "principal_open_fen": 10_000,
        "currency": "CNY",
        "as_of": _AS_OF,
    },
    # repayments
    "RepaymentIn": {"amount_fen": 50_000, "currency": "CNY", "payment_ref": "bank-tx-88412"},
    "RepaymentOut": _REPAYMENT,
    "CreditRefundIn": {"amount_fen": 20_000, "currency": "CNY"},
    "CreditRefundOut": {
        "credit_refund_id": 7,
        "credit_line_id": 42,
        "amount_fen": 20_000,
        "currency": "CNY",
        "as_of": _AS_OF,
        "applied_fen": 0,
        "customer_credit_fen": 0,
    },
    "ReversalIn": {"as_of": _AS_OF},
    "ReversalOut": {
        "repayment_id": 301,
        "credit_line_id": 42,
        "status": "reversed",
        "reversed_on": _AS_OF,
        "reallocated_repayment_ids": [305],
        "reaged_bill_ids": [],
    },
    # installments
    "PlanIn": {"source": "purchase", "source_id": 1001, "tenor_months": 12},
    "PlanOut": _PLAN,
    "PlanListOut": {"credit_line_id": 42, "plans": [_PLAN]},
    "PayoffQuoteOut": _PAYOFF_QUOTE,
    "EarlyRepaymentOut": {
        "plan": {**_PLAN, "status": "repaid_early", "closed_on": _AS_OF},
        "quote": _PAYOFF_QUOTE,
        "repayment": _REPAYMENT,
    },
    "AsOfIn": {"as_of": _AS_OF},
    # bills
    "BillListOut": {"credit_line_id": 42, "bills": [_BILL]},
    "BillDetailOut": {
        **_BILL,
        "lines": [
            {"kind": "purchase", "ref_id": 1001, "posted_on": "2025-05-20", "amount_fen": 129_000}
        ],
        "charges": [],
    },
    "DelinquencyOut": {
        "credit_line_id": 42,
        "as_of": _AS_OF,
        "days_past_due": 0,
        "bucket": "M0",
        "revolving": False,
        "charged_off_on": None,
        "past_due_fen": 0,
        "outstanding_fen": 129_000,
    },
    # products
    "ProductTerms": PRODUCT_TERMS,
    "ProductOut": _PRODUCT,
    "ProductPublishedOut": {
        **_PRODUCT,
        "all_in_costs": [
            {
                "tenor_months": 12,
                "sample_principal_fen": 5_000_000,
                "nominal_annual_bps": 1825,
                "effective_annual_bps": 1990,
            }
        ],
    },
    "WhatIfIn": {"amount_fen": 1_200_000, "tenor_months": 12, "start_date": _AS_OF},
    "WhatIfQuoteOut": {
        "product_code": "INST12",
        "product_version": 1,
        "terms_hash": _TERMS_HASH,
        "amount_fen": 1_200_000,
        "tenor_months": 12,
        "bill_day": 5,
        "upfront_fee_fen": 0,
        "total_interest_fen": 98_400,
        "total_fees_fen": 0,
        "total_repayment_fen": 1_298_400,
        "nominal_annual_bps": 1500,
        "effective_annual_bps": 1608,
        "annualization": "effective",
        "annual_cost_bps": 1608,
        "cost_cap_bps": 2400,
        "within_cost_cap": True,
        "installments": [
            {
                "number": 1,
                "bill_date": "2025-07-05",
                "due_date": "2025-07-25",
                "principal_fen": 93_300,
                "interest_fen": 14_900,
                "fee_fen": 0,
                "payment_fen": 108_200,
                "balance_after_fen": 1_106_700,
            }
        ],
    },
    # ledger
    "TrialBalanceOut": {
        "as_of": _AS_OF,
        "rows": [
            {
                "account_type": "principal_receivable",
                "accounts": 12,
                "debit_fen": 1_290_000,
                "credit_fen": 0,
            },
            {
                "account_type": "funding_payable",
                "accounts": 2,
                "debit_fen": 0,
                "credit_fen": 1_290_000,
            },
        ],
        "total_debit_fen": 1_290_000,
        "total_credit_fen": 1_290_000,
        "balanced": True,
    },
    "LineBalancesOut": {
        "credit_line_id": 42,
        "as_of": _AS_OF,
        "balances_fen": {"principal_receivable": 129_000, "interest_receivable": 0},
    },
    "BusinessDateOut": {"as_of": _AS_OF},
    "BusinessDateIn": {"as_of": _AS_OF},
    # settlement
    "PartnerIn": {
        "ref": "bank-a",
        "role": "funder",
        "payout_address": "0x8ba1f109551bD432803012645Ac136ddd64DBA72",
        "display_name": "Bank A Consumer Finance Co.",
    },
    "PartnerOut": _PARTNER,
    "GuaranteeIn": {"product_code": "PAY1", "guarantor_ref": "guard-co", "share_ppm": 800_000},
    "GuaranteeOut": {"product_code": "PAY1", "partner_id": 4, "share_ppm": 800_000},
    "CycleOut": _CYCLE,
    "PartnerCycleOut": _PARTNER_CYCLE,
    "EntryPageOut": {
        "cycle_id": 20250630,
        "partner_id": 2,
        "entries_root": _ROOT,
        "entries": [_ENTRY],
        "next_after": 17,
    },
    "LeafSecretOut": {
        "partner_id": 2,
        "leaf_secret": "0x3c6ef372fe94f82ba54ff53a5f1d36f1510e527fade682d19b05688c2b3e6c1f",
        "salt_derivation": "salt = HMAC-SHA256(leaf_secret, uint64_be(cycle_id) || "
        "uint64_be(entry_id)); leaf_secret = HMAC-SHA256(node root secret, "
        "'creditnet/partner-leaf-secret/v1' || uint32_be(partner_id))",
    },
    # portfolio
    "PortfolioOut": {
        "buckets": [
            {"bucket": "M0", "lines": 9_812, "balance_fen": 912_000_000},
            {"bucket": "M4", "lines": 41, "balance_fen": 3_100_000},
        ],
        "total_fen": 915_100_000,
        "non_performing_fen": 3_100_000,
        "npl_ratio_bps": 34,
        "written_off_fen": 0,
    },
    # risk
    "MonitoringOut": {
        "cards": [
            {
                "card": "german",
                "model_id": _MODEL_ID,
                "total": {"psi": 0.031, "band": "stable", "live_count": 1_204},
                "characteristics": {
                    "housing": {"psi": 0.012, "band": "stable", "live_count": 1_204}
                },
            }
        ],
    },
    "OnboardingPolicy": _POLICY,
    "PolicyOut": {"product_code": "PAY1", "version": 2, "policy": _POLICY},
    "BlacklistIn": {"kind": "device", "values": ["device-0bad"], "reason_code": "CONFIRMED_FRAUD"},
    "BlacklistOut": {"kind": "device", "submitted": 1, "added": 1},
    "ActiveCardOut": {
        "card": "german",
        "model_id": _MODEL_ID,
        "product_code": "PAY1",
        "policy_version": 1,
        "missing_characteristics_max": 3,
        "characteristics": [_CARD_CHARACTERISTIC],
    },
    **RISK_EXAMPLES,
    **CONSOLE_EXAMPLES,
    # errors
    "Problem": {
        "type": "https://creditnet.dev/problems/over_limit",
        "title": "Declined",
        "status": 409,
        "detail": "the purchase exceeds the available limit at total/purchase/PAY1",
        "code": "over_limit",
        "field": "amount_fen",
        "limit_path": "total/purchase/PAY1",
    },
    # keys
    "KeyIn": {"role": "partner", "partner_id": 2, "label": "bank-a settlement desk"},
    "KeyOut": _KEY,
    "KeyCreatedOut": {**_KEY, "key": "cn_3f9a1c2b7d4e5f60_example-not-a-real-secret"},
    # chain
    "AgreementOut": {
        "agreement_id": _AGREEMENT_ID,
        "anchoring": "on_chain",
        "tx_hash": _TX,
        "block_number": 1_180,
        "confirmations": 25,
        "chain_head": 1_204,
        "terms_hash": _TERMS_HASH,
        "terms_match": True,
        "books": {
            "credit_line_id": 42,
            "outbox_status": "confirmed",
            "attempts": 1,
            "last_error": None,
            "terms_hash": _TERMS_HASH,
            "borrower_ref": _ROOT,
            "product_code": 2_836_130_614,
            "limit_fen": 3_000_000,
            "apr_bps": 1825,
            "opened_at": 1_751_241_600,
        },
        "chain": {
            "status": 1,
            "status_name": "active",
            "terms_hash": _TERMS_HASH,
            "commitment": _ROOT,
            "limit_fen": 3_000_000,
            "apr_bps": 1825,
            "change_count": 0,
            "opened_block": 1_180,
            "opened_tx": _TX,
            "updated_block": 1_180,
        },
    },
    "AgreementLineStateOut": {
        "agreement_id": _AGREEMENT_ID,
        "cycle_id": 20250630,
        "outstanding_fen": 129_000,
        "leaf": _SALT,
        "proof": [_TERMS_HASH, _ROOT],
        "root": _ROOT,
        "leaf_count": 3,
        "total_outstanding_fen": 1_204_500,
        "commitment_status": "confirmed",
        "tx_hash": _TX,
    },
    "ContractsOut": {
        "chain_id": 31337,
        "deployment_block": 9,
        "compiler_version": "0.8.30+commit.73712a01",
        "abi_matches_deployment": True,
        "contracts": [
            {
                "name": "ClearingHouse",
                "address": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
                "deploy_block": 4,
                "deploy_tx": _TX,
                "abi": _CODE_ABI,
            }
        ],
        "leaves": [
            {
                "name": "settlement_entry",
                "contract": "ClearingHouse",
                "verify_function": (
                    "verifyEntry(uint64,uint64,uint32,uint8,int256,bytes32,bytes32[])"
                ),
                "fields": ["cycleId", "entryId", "partnerId", "kind", "amountFen", "salt"],
                "solidity_types": ["uint64", "uint64", "uint32", "uint8", "int256", "bytes32"],
                "hashing": "keccak256(bytes.concat(keccak256(abi.encode(values))))",
                "tree": "OpenZeppelin StandardMerkleTree",
                "salt": "salt = HMAC-SHA256(partnerSecret, uint64_be(cycleId) || "
                "uint64_be(entryId)); private to the entry's partner",
            }
        ],
        "entry_kinds": [{"code": 1, "name": "PRINCIPAL_FUNDED"}],
        "agreement_statuses": [{"code": 1, "name": "Active"}],
        "cycle_statuses": [{"code": 1, "name": "Proposed"}],
        "partner_roles": [{"code": 1, "name": "funder"}],
    },
    "Health": {
        "status": "ok",
        "chain": {
            "rpc": "ok",
            "chain_id": 31337,
            "latest_block": 1_204,
            "contracts": {"CreditRegistry": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
        },
        "database": {"backend": "postgresql", "migration_head": "0007"},
    },
    "OracleStatusPublic": {
        "outbox_by_kind": {"agreement_open": {"confirmed": 118, "pending": 2}},
        "outbox_totals": {"confirmed": 118, "pending": 2},
        "indexer": {
            "last_block": 1_203,
            "last_block_hash": _TX,
            "updated_at": "2025-06-30T09:12:44",
            "chain_head": 1_204,
            "lag_blocks": 1,
        },
        "signers": {
            "addresses": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
            "threshold": 2,
            "remote_endpoints": [],
        },
    },
}
"""Examples by the name of the schema they illustrate."""

OPERATION_EXAMPLES: Final[dict[str, dict[str, JsonValue]]] = {
    "partner_entries_stream": {
        "200": '{"cycle_id":20250630,"partner_id":2,"entries_root":"' + _ROOT + '",'
        '"net_position_fen":830000,"entry_count":611,"kinds":{"INTEREST_SHARE":3}}\n'
        '{"cycle_id":20250630,"entry_id":17,"partner_id":2,"kind":3,'
        '"kind_name":"INTEREST_SHARE","amount_fen":1830,"salt":"' + _SALT + '",'
        '"proof":["' + _ROOT + '"]}\n',
    },
    "audit_export": {
        "200": '{"record":"header","format":"creditnet-audit-export","version":2}\n',
    },
}
"""Examples of bodies that are not JSON objects, by operation id and status."""
