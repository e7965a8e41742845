"""Examples of the console's bodies (`routes/console_*.py`), merged into `EXAMPLES`."""

from __future__ import annotations

from typing import Final

from pydantic import JsonValue

JsonObject = dict[str, JsonValue]

_ROOT = "0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_APPLICATION_ID = "5f0c2a7e9b1d4c3f8a6e2d1b0c9f8e7a"
_MODEL_ID = "sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"

_CYCLE: JsonObject = {
    "cycle_id": 20250630,
    "cycle_date": "2025-06-30",
    "books_state": "proposed",
    "entries_root": _ROOT,
    "net_position_fen": -195_076,
    "entry_count": 37,
    "chain_state": "funded",
    "chain_funded_fen": 195_076,
    "chain_claimed_fen": 195_076,
    "chain_position_settled_fen": 195_076,
    "chain_position_disputed": False,
}
_FLOWS: JsonObject = {
    "cycle_id": 20250630,
    "cycle_date": "2025-06-30",
    "by_kind_fen": {"principal_funded": -620_415, "principal_repaid": 420_847, "refund": 700},
    "net_fen": -198_868,
}
_MONTH: JsonObject = {
    "month": "2025-06",
    "funded_fen": 620_415,
    "repaid_fen": 420_847,
    "outstanding_fen": 199_568,
}
_HOUR: JsonObject = {"hour": "2025-06-30T09:00", "approved": 41, "declined": 12, "review": 3}
_EOD_RUN: JsonObject = {
    "as_of": "2025-06-30",
    "status": "done",
    "steps": [
        {
            "step": "accrue",
            "status": "done",
            "batches": 2,
            "lines": 3_412,
            "postings": 3_398,
            "amount_fen": 1_204_511,
        }
    ],
}
_OUTBOX_AGE: JsonObject = {
    "kind": "agreement",
    "waiting": 3,
    "oldest_created_at": "2025-06-30T09:00:00Z",
    "oldest_age_s": 12.5,
}
_BUCKET: JsonObject = {"bucket": "M0", "lines": 9_812, "balance_fen": 4_120_558_100}

CONSOLE_EXAMPLES: Final[dict[str, JsonValue]] = {
    "ConsoleSessionOut": {
        "key_id": "k_3f9a1c2b",
        "role": "partner",
        "partner_id": 2,
        "chain_id": 31337,
        "rpc_url_suggested": "http://127.0.0.1:8545",
    },
    "PartnerCyclePageOut": {"items": [_CYCLE], "next_before": None},
    "CycleFlowsOut": _FLOWS,
    "FundedVintageOut": {
        "vintage": "2025-06",
        "lines": 7_000,
        "balance_fen": 2_934_244_950,
        "m1_plus_bps": 170,
        "m3_plus_bps": 12,
    },
    "MonthPrincipalOut": _MONTH,
    "ReviewQueueOut": {
        "items": [
            {
                "application_id": _APPLICATION_ID,
                "product_code": "PAY1",
                "product_version": 1,
                "channel_id": "app",
                "score": 519,
                "model_id": _MODEL_ID,
                "reason_codes": ["SCORE_BORDERLINE"],
                "limit_total_fen": 500_000,
                "applied_at": "2025-06-30T09:00:00Z",
                "business_date": "2025-06-30",
            }
        ],
        "total": 1,
        "next_after": None,
    },
    "HourlyDecisionsOut": _HOUR,
    "EodRunOut": _EOD_RUN,
    "OutboxAgeOut": _OUTBOX_AGE,
    "StepTimingOut": {"step": "accrue", "dates": 30, "total_s": 4.5, "mean_s": 0.15},
    "ConsolePortfolioOut": {
        "buckets": [_BUCKET, {"bucket": "M1", "lines": 188, "balance_fen": 71_220_400}],
        "total_fen": 4_191_778_500,
        "non_performing_fen": 0,
        "npl_ratio_bps": 0,
        "written_off_fen": 0,
        "vintages": [
            {
                "vintage": "2025-06",
                "lines": 10_000,
                "balance_fen": 4_191_778_500,
                "m1_plus_fen": 71_220_400,
                "m3_plus_fen": 0,
                "m1_plus_bps": 170,
                "m3_plus_bps": 0,
            }
        ],
    },
    "AuditStartedOut": {"job_id": "3f9a1c2b7d4e6a80"},
    "AuditJobOut": {
        "job_id": "3f9a1c2b7d4e6a80",
        "state": "running",
        "stage": "replaying the chain's events",
        "replay_total_blocks": 1_200,
        "replay_done_blocks": 400,
        "started_at": 1_751_274_000.0,
        "finished_at": None,
        "error": None,
        "report": None,
    },
}
