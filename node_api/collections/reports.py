"""Collections outcomes: per strategy arm, per vintage, and bucket-to-bucket roll rates.

Each arm is the cohort of cases opened under one strategy version in one arm, counted
over their whole life so far; a vintage is the cohort of lines opened in one month:
- cure rate: cured cases / cases; a case whose line the guarantor compensated while it
  was open counts as compensated, not cured (the borrower did not pay);
- roll rate: cases whose worst bucket is beyond the bucket they opened in / cases;
- promise-kept rate: kept promises / promises decided (kept + broken);
- recovery rate: (recoveries shared by the funders + sale prices) / the amount written
  off at charge-off; the guarantor recovery rate: paid back to guarantors / what they
  compensated. A line's losses and recoveries count for the arm of its latest case.
Rates are in basis points, rounded half-even; None when nothing was counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.collections.model import CaseStatus, PromiseStatus
from node_api.collections.tables import (
    case_table,
    compensation_table,
    debt_sale_line_table,
    promise_table,
    recovery_table,
)
from node_api.kernel.money import BPS_DENOMINATOR, FEN_ZERO, Fen, div_half_even
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table, posting_batch_table, posting_table
from node_api.ledger.settlement_events import EodStep, eod_batch_kind
from node_api.lending.billing_rules import BUCKET_ORDER
from node_api.lending.lines import credit_line_table

_RANK = {bucket.value: index for index, bucket in enumerate(BUCKET_ORDER)}


class ArmReport(BaseModel):
    """The outcomes of one strategy version's arm (also its API view)."""

    model_config = ConfigDict(frozen=True)

    strategy_version: int
    arm: str
    cases: int
    open_cases: int
    cured: int
    compensated: int
    """Cases whose line the guarantor compensated while they were open (not cured)."""
    rolled: int
    promises_kept: int
    promises_broken: int
    cure_rate_bps: int | None
    roll_rate_bps: int | None
    promise_kept_rate_bps: int | None
    charged_off_fen: Fen
    """Written off at charge-off on the lines whose latest case is in this arm."""
    recovered_fen: Fen
    """Recovered on those lines after charge-off and shared by the funders."""
    sold_fen: Fen
    """Prices of those lines sold to collection agencies."""
    recovery_rate_bps: int | None
    """(recovered + sold) / charged off."""


def compute_rate_bps(count: int, total: int) -> int | None:
    """count / total in bps, half-even; None for an empty total."""
    return div_half_even(count * BPS_DENOMINATOR, total) if total else None


def fetch_arm_reports(conn: Connection) -> list[ArmReport]:
    """One report per (strategy version, arm) that has cases, by version then arm."""
    rows = _case_rows(conn)
    compensated = _compensated_case_ids(conn, rows)
    promises = _promise_counts(conn)
    tallies: dict[tuple[int, str], CaseTally] = {}
    still_open: dict[tuple[int, str], int] = {}
    latest_arm: dict[int, tuple[int, str]] = {}
    for row in rows:
        key = (int(row["strategy_version"]), str(row["arm"]))
        tallies[key] = _tally_case(
            tallies.get(key, CaseTally()),
            row,
            int(row["id"]) in compensated,
            promises.get(int(row["id"]), (0, 0)),
        )
        still_open[key] = still_open.get(key, 0) + (row["status"] == CaseStatus.OPEN.value)
        latest_arm[int(row["credit_line_id"])] = key  # rows are by case id
    losses: dict[tuple[int, str], LossTally] = {}
    for line_id, line_loss in fetch_line_losses(conn).items():
        arm_key = latest_arm.get(line_id)
        if arm_key is not None:
            losses[arm_key] = losses.get(arm_key, NO_LOSS).plus(line_loss)
    reports = []
    for (version, arm), tally in sorted(tallies.items()):
        loss = losses.get((version, arm), NO_LOSS)
        reports.append(
            ArmReport(
                strategy_version=version,
                arm=arm,
                cases=tally.cases,
                open_cases=still_open[(version, arm)],
                cured=tally.cured,
                compensated=tally.compensated,
                rolled=tally.rolled,
                promises_kept=tally.promises_kept,
                promises_broken=tally.promises_broken,
                cure_rate_bps=compute_rate_bps(tally.cured, tally.cases),
                roll_rate_bps=compute_rate_bps(tally.rolled, tally.cases),
                promise_kept_rate_bps=compute_rate_bps(
                    tally.promises_kept, tally.promises_kept + tally.promises_broken
                ),
                charged_off_fen=loss.charged_off_fen,
                recovered_fen=loss.recovered_fen,
                sold_fen=loss.sold_fen,
                recovery_rate_bps=loss.recovery_rate_bps,
            )
        )
    return reports


# ---------------------------------------------------------------- after the line goes bad


class LossTally(BaseModel):
    """What went bad on a set of lines and what came back, in fen (also its API view)."""

    model_config = ConfigDict(frozen=True)

    charged_off_fen: Fen
    """Written off at charge-off (gross: before recoveries and sales)."""
    recovered_fen: Fen
    """Collected on charged-off lines and shared by the funders (recoveries)."""
    sold_fen: Fen
    """Prices of sales of charged-off debt."""
    compensated_fen: Fen
    """Paid by guarantors at the compensation day."""
    guarantor_recovered_fen: Fen
    """Paid back to guarantors out of later collections."""

    def plus(self, other: LossTally) -> LossTally:
        return LossTally(
            **{name: getattr(self, name) + getattr(other, name) for name in LOSS_FIELDS}
        )

    @property
    def recovery_rate_bps(self) -> int | None:
        """(recovered + sold) / charged off."""
        return compute_rate_bps(self.recovered_fen + self.sold_fen, self.charged_off_fen)

    @property
    def guarantor_recovery_rate_bps(self) -> int | None:
        """Paid back to guarantors / compensated."""
        return compute_rate_bps(self.guarantor_recovered_fen, self.compensated_fen)


LOSS_FIELDS: tuple[str, ...] = (
    "charged_off_fen",
    "recovered_fen",
    "sold_fen",
    "compensated_fen",
    "guarantor_recovered_fen",
)
NO_LOSS = LossTally(**dict.fromkeys(LOSS_FIELDS, FEN_ZERO))
"""Nothing lost, nothing recovered: the tally of a set of lines before any is added."""


def fetch_line_losses(conn: Connection) -> dict[int, LossTally]:
    """Each line's losses and what came back (lines with none are left out)."""
    accounts, postings, batches = ledger_account_table, posting_table, posting_batch_table
    sums: dict[int, dict[str, Fen]] = {}

    def add(rows: Iterable[tuple[Any, ...]], *names: str) -> None:
        for line_id, *values in rows:
            tally = sums.setdefault(int(line_id), {})
            for name, value in zip(names, values, strict=True):
                tally[name] = Fen(tally.get(name, FEN_ZERO) + int(value or 0))

    add(
        conn.execute(
            select(accounts.c.credit_line_id, func.sum(postings.c.amount_fen))
            .join(postings, postings.c.account_id == accounts.c.id)
            .join(batches, batches.c.id == postings.c.batch_id)
            .where(
                (accounts.c.account_type == AccountType.WRITTEN_OFF.value)
                & (batches.c.kind == eod_batch_kind(EodStep.CHARGE_OFF))
            )
            .group_by(accounts.c.credit_line_id)
        ),
        "charged_off_fen",
    )
    recoveries = recovery_table
    add(
        conn.execute(
            select(
                recoveries.c.credit_line_id,
                func.sum(recoveries.c.shared_fen),
                func.sum(recoveries.c.guarantor_fen),
            ).group_by(recoveries.c.credit_line_id)
        ),
        "recovered_fen",
        "guarantor_recovered_fen",
    )
    sold = debt_sale_line_table
    add(
        conn.execute(
            select(sold.c.credit_line_id, func.sum(sold.c.price_fen)).group_by(
                sold.c.credit_line_id
            )
        ),
        "sold_fen",
    )
    compensations = compensation_table
    add(
        conn.execute(
            select(compensations.c.credit_line_id, func.sum(compensations.c.amount_fen)).group_by(
                compensations.c.credit_line_id
            )
        ),
        "compensated_fen",
    )
    return {line_id: NO_LOSS.model_copy(update=tally) for line_id, tally in sums.items()}


@dataclass(frozen=True, slots=True)
class CaseTally:
    """Case outcomes of a cohort (see the module docstring for the rates)."""

    cases: int = 0
    cured: int = 0
    compensated: int = 0
    """Cases whose line's guarantor compensated it while they were open: neither cured
    by the borrower nor counted as cured."""
    rolled: int = 0
    promises_kept: int = 0
    promises_broken: int = 0


class VintageReport(BaseModel):
    """One vintage (the month its lines were opened): how its lines went bad and what
    came back (also its API view). Rates in basis points, half-even; None when nothing
    was counted."""

    model_config = ConfigDict(frozen=True)

    vintage: str
    """The month the lines were opened (`YYYY-MM`)."""
    lines: int
    delinquent_lines: int
    cases: int
    cured: int
    compensated: int
    rolled: int
    promises_kept: int
    promises_broken: int
    charged_off_lines: int
    losses: LossTally
    cure_rate_bps: int | None
    roll_rate_bps: int | None
    promise_kept_rate_bps: int | None
    recovery_rate_bps: int | None
    """(recovered + sold) / charged off."""
    guarantor_recovery_rate_bps: int | None
    """Paid back to guarantors / compensated."""


def _case_rows(conn: Connection) -> list[RowMapping]:
    cases = case_table
    return list(
        conn.execute(
            select(
                cases.c.id,
                cases.c.credit_line_id,
                cases.c.strategy_version,
                cases.c.arm,
                cases.c.status,
                cases.c.opened_on,
                cases.c.closed_on,
                cases.c.opened_bucket,
                cases.c.worst_bucket,
            ).order_by(cases.c.id)
        ).mappings()
    )


def _compensated_case_ids(conn: Connection, rows: Sequence[RowMapping]) -> set[int]:
    """Cases during which their line was compensated (opened on or before the
    compensation, not closed before it)."""
    table = compensation_table
    days: dict[int, list[date]] = {}
    for line_id, as_of in conn.execute(select(table.c.credit_line_id, table.c.as_of)):
        days.setdefault(int(line_id), []).append(as_of)
    return {
        int(row["id"])
        for row in rows
        for day in days.get(int(row["credit_line_id"]), [])
        if row["opened_on"] <= day and (row["closed_on"] is None or day <= row["closed_on"])
    }


def _promise_counts(conn: Connection) -> dict[int, tuple[int, int]]:
    """(kept, broken) per case."""
    promises = promise_table
    counts: dict[int, list[int]] = {}
    for case_id, status, count in conn.execute(
        select(promises.c.case_id, promises.c.status, func.count())
        .where(promises.c.status.in_([PromiseStatus.KEPT.value, PromiseStatus.BROKEN.value]))
        .group_by(promises.c.case_id, promises.c.status)
    ):
        pair = counts.setdefault(int(case_id), [0, 0])
        pair[0 if status == PromiseStatus.KEPT.value else 1] += int(count)
    return {case_id: (kept, broken) for case_id, (kept, broken) in counts.items()}


def _tally_case(
    tally: CaseTally, row: RowMapping, compensated: bool, promises: tuple[int, int]
) -> CaseTally:
    cured = row["status"] == CaseStatus.CURED.value
    return CaseTally(
        cases=tally.cases + 1,
        cured=tally.cured + (1 if cured and not compensated else 0),
        compensated=tally.compensated + (1 if compensated else 0),
        rolled=tally.rolled
        + (1 if _RANK[str(row["worst_bucket"])] > _RANK[str(row["opened_bucket"])] else 0),
        promises_kept=tally.promises_kept + promises[0],
        promises_broken=tally.promises_broken + promises[1],
    )


def fetch_vintage_reports(conn: Connection) -> list[VintageReport]:
    """One report per vintage with lines, oldest first."""
    lines = credit_line_table
    vintage_of: dict[int, str] = {
        int(line_id): f"{opened_on.year:04d}-{opened_on.month:02d}"
        for line_id, opened_on in conn.execute(select(lines.c.id, lines.c.opened_on))
    }
    rows = _case_rows(conn)
    compensated = _compensated_case_ids(conn, rows)
    promises = _promise_counts(conn)
    cases: dict[str, CaseTally] = {}
    delinquent: dict[str, set[int]] = {}
    for row in rows:
        vintage = vintage_of[int(row["credit_line_id"])]
        cases[vintage] = _tally_case(
            cases.get(vintage, CaseTally()),
            row,
            int(row["id"]) in compensated,
            promises.get(int(row["id"]), (0, 0)),
        )
        delinquent.setdefault(vintage, set()).add(int(row["credit_line_id"]))
    losses: dict[str, LossTally] = {}
    charged_off: dict[str, int] = {}
    for line_id, line_loss in fetch_line_losses(conn).items():
        vintage = vintage_of[line_id]
        losses[vintage] = losses.get(vintage, NO_LOSS).plus(line_loss)
        charged_off[vintage] = charged_off.get(vintage, 0) + (1 if line_loss.charged_off_fen else 0)
    counts: dict[str, int] = {}
    for vintage in vintage_of.values():
        counts[vintage] = counts.get(vintage, 0) + 1
    reports = []
    for vintage in sorted(counts):
        tally, loss = cases.get(vintage, CaseTally()), losses.get(vintage, NO_LOSS)
        reports.append(
            VintageReport(
                vintage=vintage,
                lines=counts[vintage],
                delinquent_lines=len(delinquent.get(vintage, ())),
                cases=tally.cases,
                cured=tally.cured,
                compensated=tally.compensated,
                rolled=tally.rolled,
                promises_kept=tally.promises_kept,
                promises_broken=tally.promises_broken,
                charged_off_lines=charged_off.get(vintage, 0),
                losses=loss,
                cure_rate_bps=compute_rate_bps(tally.cured, tally.cases),
                roll_rate_bps=compute_rate_bps(tally.rolled, tally.cases),
                promise_kept_rate_bps=compute_rate_bps(
                    tally.promises_kept, tally.promises_kept + tally.promises_broken
                ),
                recovery_rate_bps=loss.recovery_rate_bps,
                guarantor_recovery_rate_bps=loss.guarantor_recovery_rate_bps,
            )
        )
    return reports


class RollRate(BaseModel):
    """Of the cases that reached `from_bucket`, how many went on to `to_bucket` (also its
    API view)."""

    model_config = ConfigDict(frozen=True)

    from_bucket: str
    to_bucket: str
    reached: int
    rolled: int
    roll_rate_bps: int | None


def fetch_roll_rates(conn: Connection) -> list[RollRate]:
    """Bucket-to-bucket roll rates over every case: a case reached each bucket from the
    one it opened in up to its worst one."""
    reached = [0] * len(BUCKET_ORDER)
    rolled = [0] * len(BUCKET_ORDER)
    for row in _case_rows(conn):
        opened, worst = _RANK[str(row["opened_bucket"])], _RANK[str(row["worst_bucket"])]
        for rank in range(opened, worst + 1):
            reached[rank] += 1
            rolled[rank] += 1 if rank < worst else 0
    return [
        RollRate(
            from_bucket=BUCKET_ORDER[rank].value,
            to_bucket=BUCKET_ORDER[rank + 1].value,
            reached=reached[rank],
            rolled=rolled[rank],
            roll_rate_bps=compute_rate_bps(rolled[rank], reached[rank]),
        )
        for rank in range(1, len(BUCKET_ORDER) - 1)
    ]
