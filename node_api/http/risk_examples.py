"""Examples of the decisioning bodies (`routes/risk_models.py`), merged into `EXAMPLES`."""

from __future__ import annotations

from typing import Final

from pydantic import JsonValue

JsonObject = dict[str, JsonValue]

_MODEL_ID = "sha256:5e37ac94c92b6da9cd48c9fafeefb3f44baf5fce5e92dd95d65f64c483228854"
_PREVIOUS_MODEL_ID = "sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
_DATA_SHA256 = "sha256:9b1a4c8f6e2d3b7a0c5e9f1d2a6b8c4e7f3a0d5b9c2e6f1a4d8b3c7e0f5a2d9b"
_AT = "2025-06-30T09:00:00+00:00"

_MODEL: JsonObject = {
    "version": 3,
    "model_id": _MODEL_ID,
    "label": "german-2025q2",
    "characteristics": ["status_of_existing_checking_account", "duration_in_month"],
    "metrics": {
        "auc": 0.797,
        "ks": 0.482,
        "gini": 0.595,
        "n_rows": 1_000,
        "bad_rate": 0.3,
        "folds": 5,
        "auc_by_fold": [0.78, 0.81, 0.8, 0.79, 0.805],
    },
    "data_fingerprint": _DATA_SHA256,
    "fingerprint_source": "data",
    "registered_by": "3f9a1c2b7d4e5f60",
    "registered_at": _AT,
}
_ACTIVATION: JsonObject = {
    "product_code": "PAY1",
    "policy_version": 4,
    "model_version": 3,
    "model_id": _MODEL_ID,
    "previous_model_version": None,
    "previous_model_id": _PREVIOUS_MODEL_ID,
    "activated_by": "3f9a1c2b7d4e5f60",
    "activated_at": _AT,
}
_DECILES: list[JsonValue] = [402, 471, 498, 516, 531, 545, 559, 574, 590, 612, 688]


def _arm(arm: str, share: int) -> JsonObject:
    decided = 1_000 * share // 100
    return {
        "arm": arm,
        "model_ids": [_MODEL_ID if arm == "challenger" else _PREVIOUS_MODEL_ID],
        "decided": {
            "applications": decided,
            "approved": decided // 2,
            "approval_rate_bps": 5_000,
            "score_deciles": _DECILES,
        },
        "scored": {
            "applications": 1_000,
            "approved": 512,
            "approval_rate_bps": 5_120,
            "score_deciles": _DECILES,
        },
        "lines_opened": decided // 2,
        "first_payment_default": {"matured": decided // 4, "events": 3, "rate_bps": 120},
        "m1_plus_at_3_months": {"matured": 0, "events": 0, "rate_bps": None},
    }


def _cell(applications: int, old_fen: int, new_fen: int) -> JsonObject:
    return {
        "applications": applications,
        "old_limit_total_fen": old_fen,
        "new_limit_total_fen": new_fen,
        "old_expected_bad_rate_bps": 610,
        "new_expected_bad_rate_bps": 585,
    }


def _side(approved: int, review: int, limit_fen: int, rate_bps: int) -> JsonObject:
    return {
        "applications": 120,
        "approved": approved,
        "review": review,
        "declined": 120 - approved - review,
        "approval_rate_bps": approved * 10_000 // 120,
        "expected_bad_rate_bps": rate_bps,
        "approved_limit_total_fen": limit_fen,
    }


_NONCE = "5f1c0e7a9b3d4c2e8f6a1b0c9d7e3f24"
_SIGNED_LIVENESS: JsonObject = {
    "result": {
        "format": "creditnet.liveness.v1",
        "provider_id": "creditnet-test",
        "nonce": _NONCE,
        "subject_hash": "6037ecf571b784f1ba88b6145691b611dbe200e4a3c6d8b7966f5bad2a68f1fe",
        "live": True,
        "face_match_bps": 9_400,
    },
    "signature": (
        "bvl98sJDiEdJ8yuaEXcUi3lph7HoSil/b8W3cDf9hWEnuvMjGoZtoCeVAp+mC6nAsgC+pgEs/acHYYlOS98vCg=="
    ),
}
_PSI: JsonObject = {"psi": 0.031, "band": "stable", "live_count": 1_240}


RISK_EXAMPLES: Final[dict[str, JsonValue]] = {
    "LivenessChallengeOut": {"nonce": _NONCE, "expires_at": "2025-06-30T09:10:00+00:00"},
    "SignedLivenessIn": _SIGNED_LIVENESS,
    "TestCheckIn": {"nonce": _NONCE, "id_number": "330106198803141234", "outcome": "pass"},
    "ProvidersOut": {
        "providers": [
            {
                "provider_id": "creditnet-test",
                "public_key": "k3PnDa1lX1D04UgQAjbYI0o8NlW9srz7ugIri2UTcMQ=",
            }
        ]
    },
    "ProductStabilityOut": {
        "product_code": "PAY1",
        "as_of": "2025-09-29",
        "model_id": _MODEL_ID,
        "model_version": 3,
        "training_gini": 0.595,
        "psi": {
            "card": "PAY1",
            "model_id": _MODEL_ID,
            "total": _PSI,
            "characteristics": {"duration_in_month": {**_PSI, "psi": 0.262, "band": "shift"}},
        },
        "weekly_gini": [
            {"week_start": "2025-06-30", "lines": 310, "matured": 296, "bads": 41, "gini": 0.47},
            {"week_start": "2025-07-07", "lines": 288, "matured": 270, "bads": 37, "gini": 0.58},
        ],
        "alerts": [
            {"kind": "psi", "subject": "duration_in_month", "value": 0.262, "threshold": 0.25},
            {"kind": "gini", "subject": "2025-06-30", "value": 0.47, "threshold": 0.495},
        ],
    },
    "ModelIn": {
        "card": {
            "format": "creditnet.scorecard",
            "version": 1,
            "model_id": _MODEL_ID,
            "characteristics": [],
        },
        "label": "german-2025q2",
    },
    "ModelOut": _MODEL,
    "ModelRegisteredOut": {**_MODEL, "created": True},
    "ModelListOut": {"models": [_MODEL]},
    "ActivationIn": {"product_code": "PAY1"},
    "ActivationOut": {"product_code": "PAY1", "policy_version": 4, "activation": _ACTIVATION},
    "ActivationListOut": {"activations": [_ACTIVATION]},
    "ChampionChallengerOut": {
        "product_code": "PAY1",
        "as_of": "2025-06-30",
        "experiments": ["q3-card"],
        "arms": [_arm("champion", 80), _arm("challenger", 20)],
    },
    "SimulationIn": {
        "product_code": "PAY1",
        "from_date": "2025-06-01",
        "to_date": "2025-06-30",
        "policy_version": 4,
    },
    "SimulationOut": {
        "product_code": "PAY1",
        "from_date": "2025-06-01",
        "to_date": "2025-06-30",
        "candidate_model_id": _MODEL_ID,
        "applications": 120,
        "skipped_existing_customers": 3,
        "swap_set": {
            "approved_by_both": _cell(52, 98_000_000, 97_500_000),
            "approved_by_old_only": _cell(6, 9_000_000, 0),
            "approved_by_new_only": _cell(9, 0, 13_500_000),
            "approved_by_neither": _cell(53, 0, 0),
        },
        "old": _side(58, 14, 107_000_000, 598),
        "new": _side(61, 12, 111_000_000, 583),
    },
}
"""Examples by the name of the schema they illustrate."""
