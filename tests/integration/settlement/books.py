"""Books for the settlement tests: a product co-funded by two banks, partners, lines, and
real lending operations (purchases through two channels, refunds, repayments and their
reversal, end of day) that write the ledger's settlement events."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.http.renderers import render_use
from node_api.idempotency import KeyClaim
from node_api.kernel.chain import PartnerRole
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.ledger.schema import settlement_event_table
from node_api.lending.core.batch import run_use_batch
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind, UseRequest
from node_api.lending.eod import run_eod
from node_api.lending.limits import ProductGroup
from node_api.lending.lines import LineOpening, ProductLimit, open_credit_line
from node_api.lending.product_versions import register_product_version
from node_api.lending.products import parse_product_terms
from node_api.lending.purchase_tables import purchase_table
from node_api.lending.purchases import refund_purchase
from node_api.lending.repayments import repay, reverse_repayment
from settlement.partners import register_partner, set_guarantee
from tests.integration.lending.helpers import product_data as lending_product_data

FIRST_DAY = date(2025, 3, 3)
LENDER, BANK_A, BANK_B, APP, POS, GUARD = 1, 2, 3, 4, 5, 6
PARTNERS: dict[str, tuple[int, PartnerRole, int]] = {
    "lender": (LENDER, PartnerRole.LENDER, 10),
    "bank-a": (BANK_A, PartnerRole.FUNDER, 11),
    "bank-b": (BANK_B, PartnerRole.FUNDER, 12),
    "app": (APP, PartnerRole.CHANNEL, 13),
    "pos": (POS, PartnerRole.CHANNEL, 14),
    "guard": (GUARD, PartnerRole.GUARANTOR, 15),
}
_keys = itertools.count()


def payout_of(index: int) -> str:
    """A distinct, valid payout address per partner (not a real key's address)."""
    return "0x" + f"{index:040x}"


def product_data(code: str = "REV1") -> dict[str, Any]:
    """A revolving product accruing from day one, funded 30 % lender, 50 % bank-a at 6 %,
    20 % bank-b at 5 %, sold through two channels at 55 bps commission."""
    return lending_product_data(
        code,
        free_interest_days=0,
        funding_split=[
            {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
            {"partner_id": "bank-a", "share_ppm": 500_000, "funder_rate_bps": 600},
            {"partner_id": "bank-b", "share_ppm": 200_000, "funder_rate_bps": 500},
        ],
    )


def three_partner_product_data() -> dict[str, Any]:
    """The same product funded 30 % by the lender and 70 % by bank-a alone, sold by `app`."""
    data = product_data()
    data["funding_split"] = [
        {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
        {"partner_id": "bank-a", "share_ppm": 700_000, "funder_rate_bps": 600},
    ]
    data["eligible_channels"] = ["app"]
    return data


def register_partners(
    conn: Connection,
    refs: tuple[str, ...] = tuple(PARTNERS),
    payouts: Mapping[str, str] | None = None,
) -> None:
    for ref in refs:
        partner_id, role, address_index = PARTNERS[ref]
        register_partner(
            conn,
            ref=ref,
            role=role,
            payout_address=(payouts or {}).get(ref) or payout_of(address_index),
            display_name=f"{ref} Ltd",
            partner_id=partner_id,
        )


@dataclass
class Books:
    """The lines opened and uses made, so operations can pick from them."""

    database: Database
    caches: LendingCaches = field(default_factory=LendingCaches)
    line_ids: list[int] = field(default_factory=list)
    repayment_ids: list[tuple[int, int]] = field(default_factory=list)

    def setup(
        self,
        line_count: int = 3,
        *,
        partner_refs: tuple[str, ...] = tuple(PARTNERS),
        product: dict[str, Any] | None = None,
        payouts: Mapping[str, str] | None = None,
    ) -> None:
        with self.database.engine.begin() as conn:
            set_business_date(conn, FIRST_DAY)
            register_product_version(conn, parse_product_terms(product or product_data()))
            register_partners(conn, partner_refs, payouts)
            if "guard" in partner_refs:
                set_guarantee(conn, product_code="REV1", guarantor_ref="guard", share_ppm=800_000)
            for number in range(line_count):
                opening = LineOpening(
                    f"cust-{number}",
                    FIRST_DAY,
                    500_000,
                    {ProductGroup.PURCHASE: 500_000},
                    [ProductLimit("REV1", 1, 500_000, {})],
                )
                self.line_ids.append(open_credit_line(conn, opening, self.caches.products))

    def purchase(self, line_id: int, amount_fen: int, channel_id: str = "app") -> None:
        request = UseRequest(
            kind=UseKind.PURCHASE,
            credit_line_id=line_id,
            amount_fen=amount_fen,
            currency="CNY",
            channel_id=channel_id,
            claim=KeyClaim("settlement-test", f"k-{next(_keys)}", "hash"),
            merchant_id="m-1",
        )
        with self.database.engine.begin() as conn:
            run_use_batch(conn, self.caches, [request], render_use)

    def repay(self, line_id: int, amount_fen: int) -> None:
        with self.database.engine.begin() as conn:
            result = repay(
                conn, self.caches, line_id=line_id, amount_fen=amount_fen, currency="CNY",
                as_of=None,
            )  # fmt: skip
        self.repayment_ids.append((line_id, int(result.repayment_id)))

    def reverse_last_repayment(self) -> None:
        if not self.repayment_ids:
            return
        line_id, repayment_id = self.repayment_ids.pop()
        with self.database.engine.begin() as conn:
            reverse_repayment(
                conn, self.caches, line_id=line_id, repayment_id=repayment_id, as_of=None
            )

    def refund_some(self, rng: random.Random) -> None:
        with self.database.engine.begin() as conn:
            rows = conn.execute(
                select(purchase_table.c.id, purchase_table.c.credit_line_id)
                .where(purchase_table.c.kind == "purchase")
                .order_by(purchase_table.c.id)
            ).all()
            if not rows:
                return
            purchase_id, line_id = rng.choice(rows)
            try:
                refund_purchase(
                    conn, self.caches, line_id=int(line_id), purchase_id=int(purchase_id),
                    amount_fen=rng.randrange(1, 3_000), as_of=None,
                )  # fmt: skip
            except ConflictError:
                return  # already refunded this far: nothing happens

    def end_day(self) -> date:
        """Run end of day for the business date; return the date it closed."""
        with self.database.engine.connect() as conn:
            today = fetch_business_date(conn)
        assert today is not None
        run_eod(self.database, today)
        return today


def random_day(books: Books, rng: random.Random, operations: int) -> date:
    """`operations` random lending operations on the business date, then its end of day."""
    for _ in range(operations):
        line_id = rng.choice(books.line_ids)
        action = rng.choices(["purchase", "repay", "refund", "reverse"], [6, 4, 2, 1])[0]
        if action == "purchase":
            books.purchase(line_id, rng.randrange(100, 60_000), rng.choice(["app", "pos"]))
        elif action == "repay":
            books.repay(line_id, rng.randrange(100, 40_000))
        elif action == "refund":
            books.refund_some(rng)
        else:
            books.reverse_last_repayment()
    return books.end_day()


def count_events(conn: Connection, through: date) -> int:
    return int(
        conn.execute(
            select(func.count()).where(settlement_event_table.c.as_of <= through)
        ).scalar_one()
    )


def next_day(day: date) -> date:
    return day + timedelta(days=1)
