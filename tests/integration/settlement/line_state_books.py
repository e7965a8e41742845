"""Books for the line-state tests: lines opened with an agreement (the application that
links them and the agreement's opening in the outbox, as onboarding writes them), a
settled business date, and the node's in-process signers over these books."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import sqlalchemy as sa
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.outbox import AgreementOpening, enqueue_core
from node_api.onboarding.tables import application_table
from oracles.chain import LocalAccounts
from oracles.signers import (
    LineStateReport,
    LocalSigner,
    ReportSources,
    SignerSet,
    SigningDomain,
)
from settlement.line_state import get_day_start, line_state_sources
from settlement.netting import CycleState, get_cycle_id
from settlement.tables import cycle_table

NOW = datetime(2025, 3, 3, 23, 0)


def agreement_of(line_id: int) -> bytes:
    return (0xA5 << 248 | line_id).to_bytes(32, "big")


def anchor_lines(database: Database, opened_on: dict[int, date]) -> dict[int, bytes]:
    """Give each line (id -> opening date) an agreement; returns line id -> agreement id."""
    agreements = {line_id: agreement_of(line_id) for line_id in opened_on}
    with database.engine.begin() as conn:
        for line_id, day in opened_on.items():
            agreement_id = agreements[line_id]
            conn.execute(
                application_table.insert().values(
                    id=f"app-line-{line_id}", customer_id=f"cust-{line_id}", product_code="REV1",
                    product_version=1, policy_version=1, channel_id="app",
                    applied_at=datetime(day.year, day.month, day.day, 9, 0), business_date=day,
                    inputs_enc=b"x", model_id="m", score=600, score_detail={}, signals={},
                    fraud_hits=[], decision="approve", reason_codes=[], limits={},
                    existing_customer=False, status="approved", credit_line_id=line_id,
                    agreement_id="0x" + agreement_id.hex(),
                )
            )  # fmt: skip
            opening = AgreementOpening(
                agreement_id=agreement_id,
                borrower_ref=(0xB5 << 248 | line_id).to_bytes(32, "big"),
                terms_hash=Web3.keccak(text="REV1 v1"),
                product_code=7,
                limit_fen=500_000,
                apr_bps=1_825,
                opened_at=get_day_start(day),
            )
            enqueue_core(conn, [opening])
    return agreements


def mark_proposed(database: Database, day: date) -> int:
    """Record `day`'s settlement cycle as proposed (what the settlement scheduler does
    before it commits the date's line state); returns the cycle id."""
    cycle_id = get_cycle_id(day)
    with database.engine.begin() as conn:
        conn.execute(
            sa.insert(cycle_table).values(
                cycle_id=cycle_id,
                cycle_date=day,
                status=CycleState.PROPOSED.value,
                entries_root="0x" + "c1" * 32,
                entry_count=1,
                event_count=1,
                partner_count=2,
                total_due_fen=1,
                closed_at=NOW,
                proposed_at=NOW,
            )
        )
    return cycle_id


def line_state_signers(
    database: Database, domain: SigningDomain, *, tampered: int = 0, count: int = 3
) -> SignerSet:
    """The dev signers (threshold 2) recomputing line states from `database`; the last
    `tampered` of them keep books whose totals are off by one fen."""
    honest = line_state_sources(ReportSources(), database)
    assert honest.line_state is not None
    recompute = honest.line_state

    def off_by_one(cycle_id: int) -> LineStateReport | None:
        report = recompute(cycle_id)
        return None if report is None else replace(report, total_outstanding_fen=1)

    dishonest = ReportSources(line_state=off_by_one)
    sources = [honest] * (count - tampered) + [dishonest] * tampered
    accounts = LocalAccounts().signers(count)
    return SignerSet(
        [LocalSigner(a, s, domain) for a, s in zip(accounts, sources, strict=True)], threshold=2
    )
