"""How `creditnet risk simulate` prints a simulation: one JSON object, or a text table."""

from __future__ import annotations

from typing import Any

from node_api.onboarding.simulation import SimulationReport
from node_api.risk.decision_stats import SwapCell

_CELL_NAMES = {
    SwapCell.APPROVED_BY_BOTH: "approved by both",
    SwapCell.APPROVED_BY_OLD_ONLY: "approved by old only",
    SwapCell.APPROVED_BY_NEW_ONLY: "approved by new only",
    SwapCell.APPROVED_BY_NEITHER: "approved by neither",
}


def simulation_json(report: SimulationReport) -> dict[str, Any]:
    return report.to_dict()


def _bps(value: int | None) -> str:
    """Basis points as a percentage with two decimals (rates here are never negative)."""
    if value is None:
        return "-"
    whole, hundredths = divmod(value, 100)
    return f"{whole}.{hundredths:02d}%"


def _yuan(amount_fen: int) -> str:
    yuan, fen = divmod(amount_fen, 100)
    return f"{yuan:,}.{fen:02d}"


def format_simulation_table(report: SimulationReport) -> str:
    """The swap set and both sides' rates and limits, for a terminal."""
    summary = report.summary
    lines = [
        f"product {report.product_code}, business dates {report.from_date} to {report.to_date}: "
        f"{summary.applications} applications replayed "
        f"({report.skipped_existing_customers} existing customers left out)",
        f"candidate model {report.candidate_model_id}",
        "",
        f"{'swap set':<22}{'applications':>13}{'old limits (yuan)':>20}"
        f"{'new limits (yuan)':>20}{'old exp. bad':>14}{'new exp. bad':>14}",
    ]
    for cell, name in _CELL_NAMES.items():
        item = summary.cells[cell]
        lines.append(
            f"{name:<22}{item.applications:>13}{_yuan(item.old_limit_total_fen):>20}"
            f"{_yuan(item.new_limit_total_fen):>20}{_bps(item.old_expected_bad_rate_bps):>14}"
            f"{_bps(item.new_expected_bad_rate_bps):>14}"
        )
    lines += [
        "",
        f"{'side':<6}{'approved':>10}{'review':>8}{'declined':>10}{'approval rate':>15}"
        f"{'exp. bad rate':>15}{'approved limits (yuan)':>24}",
    ]
    for name, side in (("old", summary.old), ("new", summary.new)):
        lines.append(
            f"{name:<6}{side.approved:>10}{side.review:>8}{side.declined:>10}"
            f"{_bps(side.approval_rate_bps):>15}{_bps(side.expected_bad_rate_bps):>15}"
            f"{_yuan(side.approved_limit_total_fen):>24}"
        )
    return "\n".join(lines)
