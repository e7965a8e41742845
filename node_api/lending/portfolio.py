"""The portfolio summary: receivables by delinquency bucket and the NPL ratio.

Balances are the running balances of every line's receivables (principal, interest,
fees and penalty, whatever their stage), grouped by the bucket end of day last gave the
line (a line never aged is M0). NPL = balance in M4 and beyond / total balance, given in
basis points rounded half-even (0 when nothing is owed). Charged-off amounts have left
the receivables; they are reported apart as `written_off_fen`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.money import BPS_DENOMINATOR, Fen, div_half_even
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.bills import RECEIVABLE_TYPES
from node_api.lending.eod.tables import line_delinquency_table

NON_PERFORMING: tuple[DelinquencyBucket, ...] = (
    DelinquencyBucket.M4,
    DelinquencyBucket.M5,
    DelinquencyBucket.M6,
    DelinquencyBucket.M7_PLUS,
)


@dataclass(frozen=True, slots=True)
class BucketBalance:
    bucket: DelinquencyBucket
    lines: int
    balance_fen: Fen


@dataclass(frozen=True, slots=True)
class PortfolioSummary:
    buckets: tuple[BucketBalance, ...]
    written_off_fen: Fen

    @property
    def total_fen(self) -> Fen:
        return Fen(sum(item.balance_fen for item in self.buckets))

    @property
    def non_performing_fen(self) -> Fen:
        return Fen(sum(item.balance_fen for item in self.buckets if item.bucket in NON_PERFORMING))

    @property
    def npl_ratio_bps(self) -> int:
        """M4+ balance / total balance, in bps, half-even (0 when nothing is owed)."""
        if self.total_fen <= 0:
            return 0
        return div_half_even(self.non_performing_fen * BPS_DENOMINATOR, self.total_fen)


def compute_portfolio_summary(
    per_line: dict[int, tuple[DelinquencyBucket, int]], written_off_fen: Fen
) -> PortfolioSummary:
    """Group (bucket, balance) per line into every bucket (empty ones included)."""
    lines = {bucket: 0 for bucket in DelinquencyBucket}
    balances = {bucket: 0 for bucket in DelinquencyBucket}
    for bucket, balance_fen in per_line.values():
        if balance_fen:
            lines[bucket] += 1
            balances[bucket] += balance_fen
    return PortfolioSummary(
        tuple(
            BucketBalance(bucket, lines[bucket], Fen(balances[bucket]))
            for bucket in DelinquencyBucket
        ),
        written_off_fen,
    )


def fetch_portfolio_summary(conn: Connection) -> PortfolioSummary:
    """The summary of every line's current receivables (module docstring)."""
    accounts, state = ledger_account_table, line_delinquency_table
    rows = conn.execute(
        select(
            accounts.c.credit_line_id,
            func.coalesce(state.c.bucket, DelinquencyBucket.M0.value),
            func.sum(accounts.c.balance_fen * accounts.c.normal_sign),
        )
        .outerjoin(state, state.c.credit_line_id == accounts.c.credit_line_id)
        .where(accounts.c.account_type.in_([kind.value for kind in RECEIVABLE_TYPES]))
        .group_by(accounts.c.credit_line_id, state.c.bucket)
    )
    per_line = {
        int(line_id): (DelinquencyBucket(bucket), int(balance)) for line_id, bucket, balance in rows
    }
    written = conn.execute(
        select(func.coalesce(func.sum(accounts.c.balance_fen), 0)).where(
            accounts.c.account_type == AccountType.WRITTEN_OFF.value
        )
    ).scalar_one()
    return compute_portfolio_summary(per_line, Fen(int(written)))
