"""Books for the recovery and compensation tests: a product co-funded 30 % lender, 50 %
bank-a, 20 % bank-b, guaranteed by `guard`; lines bought on through real purchases and
aged by real end of day, or set past due directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.collections.compensation import Coverage, set_compensation_terms
from node_api.collections.policy import CollectionsPolicy
from node_api.kernel.chain import EntryKind
from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod.context import EodContext
from node_api.lending.eod.step_fund import run_funding_batch
from node_api.onboarding.tables import application_table
from settlement.cycle_close import close_settlement_cycle
from settlement.netting import ClosedCycle
from settlement.salts import LeafSalts
from settlement.tables import entry_table
from tests.integration.lending.eod_helpers import buy, eod_product_data, open_eod_line
from tests.integration.lending.helpers import register
from tests.integration.settlement.books import register_partners

OPENED = date(2025, 3, 1)
PRODUCT = "GUAR1"
LENDER, BANK_A, BANK_B, APP, GUARD = 1, 2, 3, 4, 6
PARTNER_REFS = ("lender", "bank-a", "bank-b", "app", "guard")
SALTS = LeafSalts(b"test-recoveries-leaf-salt-secret")
AGREEMENT = "0x" + "cd" * 32
POLICY = CollectionsPolicy(compensation_days_past_due=5)
"""Compensation 5 days past due: the first bill (5 March, due 25 March) is compensated on
30 March."""


def guaranteed_product(**changes: Any) -> dict[str, Any]:
    """The end-of-day tests' product (bill day 5, due 20 days later, 3 grace days, late
    fee 3,000, 500 ppm a day), charged off more than 10 days past due (short, so the tests
    age few days), funded 30/50/20; the funders bear their shares of a charge-off (no
    buy-back), so recoveries and sale prices are shared with them."""
    changes.setdefault("charge_off_buyback", False)
    return eod_product_data(
        PRODUCT,
        delinquency={"charge_off_days": 10},
        funding_split=[
            {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
            {"partner_id": "bank-a", "share_ppm": 500_000, "funder_rate_bps": 600},
            {"partner_id": "bank-b", "share_ppm": 200_000, "funder_rate_bps": 500},
        ],
        **changes,
    )


@dataclass
class RecoveryBooks:
    """A node with the guaranteed product, its partners and its guarantee agreement."""

    database: Database
    caches: LendingCaches = field(default_factory=LendingCaches)

    def setup(self, coverage: Coverage = Coverage.OVERDUE) -> None:
        with self.database.engine.begin() as conn:
            set_business_date(conn, OPENED)
            register_partners(conn, PARTNER_REFS)
            register(conn, guaranteed_product())
            set_compensation_terms(
                conn, product_code=PRODUCT, guarantor_ref="guard", coverage=coverage,
                on=OPENED, by="admin",
            )  # fmt: skip

    def open_line(self, customer_ref: str, purchase_fen: int, *, agreement: bool = False) -> int:
        """A line with one purchase on the opening day (and an agreement id if asked),
        its funders' shares posted as that day's end of day posts them (`step_fund`), so
        what a test does next returns them."""
        with self.database.engine.begin() as conn:
            line_id = open_eod_line(
                conn, self.caches, OPENED, customer_ref=customer_ref, data=guaranteed_product()
            )
            if agreement:
                conn.execute(application_table.insert().values(application_row(line_id)))
        buy(self.database, self.caches, line_id, purchase_fen)
        with self.database.engine.begin() as conn:
            run_funding_batch(conn, EodContext(caches=self.caches), OPENED, [line_id])
        return line_id


def application_row(line_id: int, agreement_id: str = AGREEMENT) -> dict[str, object]:
    """The approved application that opened the line, naming its agreement."""
    return {
        "id": f"app-rec-{line_id}", "customer_id": f"cust-{line_id}", "product_code": PRODUCT,
        "product_version": 1, "policy_version": 1, "channel_id": "app",
        "applied_at": datetime(2025, 3, 1, 9, 0), "business_date": OPENED,
        "inputs_enc": b"x", "model_id": "m", "score": 600, "score_detail": {}, "signals": {},
        "fraud_hits": [], "decision": "approve", "reason_codes": [], "limits": {},
        "existing_customer": False, "status": "approved", "credit_line_id": line_id,
        "agreement_id": agreement_id,
    }  # fmt: skip


def close_cycle(database: Database, cycle_date: date) -> ClosedCycle:
    return close_settlement_cycle(database, cycle_date, salts=SALTS)


def cycle_entries(conn: Connection, cycle_id: int) -> list[tuple[int, EntryKind, int, str]]:
    """(partner, kind, amount, source event id) of every entry of a cycle, by entry id."""
    table = entry_table
    rows = conn.execute(
        select(table.c.partner_id, table.c.kind, table.c.amount_fen, table.c.source_event_id)
        .where(table.c.cycle_id == cycle_id)
        .order_by(table.c.entry_id)
    )
    return [(int(p), EntryKind(int(k)), int(a), str(s)) for p, k, a, s in rows]
