"""End-of-day tables: each line's delinquency state, and the run's checkpoints.

`line_delinquency` holds, per credit line, what end of day last decided: whether the
line pays revolving interest (it lost its interest-free period), its days past due and
bucket, and the day it was charged off; its five-tier class, the day it became
non-accrual (None while it accrues) and the loan-loss provision held for it. A line
without a row is current, normal and not revolving.

`line_accrual` holds, per credit line and accrual component (`interest`, `penalty`),
the rounding carry of its daily accrual (`node_api.lending.interest.AccrualCarry`: the
running exact total modulo 2 fen, as `remainder / denominator` fen) and the last
business date it accrued, so a day is never carried twice.

Checkpoints: `eod_run` has one row per business date (`running`, then `done`);
`eod_step` one row per date and step (`done` once every batch of the step committed);
`eod_batch` one row per committed batch of lines, written in the same transaction as
that batch's postings, with the last line id it covered, so a run that crashed
resumes after the last committed batch and a committed batch is never redone.

A date run in shards (`shards`: several workers) also has `eod_shard`: one row per date,
step and shard, created for every step when the date's run opens with more than one
shard (`shards` is the same on every row of a date: a run resumed with another number
of workers keeps it). Each shard batch locks its row, advances `batches` and
`last_line_id` in the batch's own transaction, and also writes its `eod_batch` row
(numbered `batches * shards + shard + 1`, so shards never collide); the row is `done`
once the shard has no line left in the step, and the step's `eod_step` row once every
shard's is. A shard is run by whoever claims it (`claims`: the coordinator's workers or
another node's): `claim_holder` and `claim_epoch` name the claim a batch must still hold
to write (the epoch rises at every claim), `claim_expires_at` when another worker may
take the shard over unless a committed batch renews it (naive UTC, the claimer's clock).
"""

from __future__ import annotations

from sqlalchemy.schema import Column, Table
from sqlalchemy.types import BigInteger, Boolean, Date, DateTime, Integer, String

from node_api.ledger.schema import fk_column, metadata

line_delinquency_table = Table(
    "line_delinquency",
    metadata,
    fk_column("credit_line_id", "credit_line.id", "fk_line_delinquency_line", primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("revolving", Boolean, nullable=False),
    Column("days_past_due", Integer, nullable=False),
    Column("bucket", String(4), nullable=False),
    Column("charged_off_on", Date, nullable=True),
    Column("loan_class", String(16), nullable=False, server_default="normal"),
    Column("non_accrual_since", Date, nullable=True),
    Column("provision_fen", BigInteger, nullable=False, server_default="0"),
    Column("customer_id", String(64), nullable=True),
)

line_accrual_table = Table(
    "line_accrual",
    metadata,
    fk_column("credit_line_id", "credit_line.id", "fk_line_accrual_line", primary_key=True),
    Column("component", String(16), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("remainder", BigInteger, nullable=False),
    Column("denominator", BigInteger, nullable=False),
    Column("customer_id", String(64), nullable=True),
)

eod_run_table = Table(
    "eod_run",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("status", String(16), nullable=False),
)

eod_step_table = Table(
    "eod_step",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("step", String(24), primary_key=True),
    Column("status", String(16), nullable=False),
)

eod_batch_table = Table(
    "eod_batch",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("step", String(24), primary_key=True),
    Column("batch_no", Integer, primary_key=True, autoincrement=False),
    Column("last_line_id", BigInteger, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("postings", Integer, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
)

eod_shard_table = Table(
    "eod_shard",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("step", String(24), primary_key=True),
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("shards", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("batches", Integer, nullable=False, server_default="0"),
    Column("last_line_id", BigInteger, nullable=False, server_default="0"),
    Column("claim_holder", String(128), nullable=True),
    Column("claim_epoch", Integer, nullable=True),
    Column("claim_expires_at", DateTime, nullable=True),
)
