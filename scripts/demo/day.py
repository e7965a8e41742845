"""The lending side of the demo, through the node's HTTP API: a month compressed into a
minute, ending on the settlement day.

Day one: the product (co-funded 70 % by a bank at 6 %) and the partners are set up,
applicants apply (most approved, a few declined by the scorecard), approved customers
buy through two channels, one purchase becomes a 6-month installment plan and one is
partly refunded. End of day runs daily: interest accrues and bills are cut on the 5th,
due on the 25th. On the 20th every customer but three pays the bill; the late payers go
past due and are charged a late fee and penalty interest. On the settlement day (the 30th)
customers buy again; of the late payers one is collected (a reminder, a promise, the
payment), one cures on its own, and one's guarantor compensates (`scripts.demo.late_payers`).

No personal data is printed: applicants are synthetic, and only ids and amounts appear.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from node_api.lending.eod import run_eod
from node_api.onboarding.identity import make_resident_id
from node_api.risk.fraud_facts import Gender
from scripts.applicants import GOOD_PROFILE, POOR_PROFILE
from scripts.demo.late_payers import LatePayers, collect, compensate, configure_collections, cure
from scripts.demo.node import DemoNode

FIRST_DAY = date(2025, 6, 1)
PAY_DAY = date(2025, 6, 20)
SETTLEMENT_DAY = date(2025, 6, 30)
PRODUCT_CODE = "PAY1"
BANK_REF = "bank-hz"
CHANNELS = ("app", "pos")
MERCHANTS = ("m-grocer", "m-phones", "m-travel", "m-books")

Tick = Callable[[str], None]
"""Reports one unit of progress with a short description."""


def product_data() -> dict[str, object]:
    """A revolving pay-later product: 14.6 % a year, 6-month installments, late fee."""
    return {
        "product_code": PRODUCT_CODE,
        "version": 1,
        "product_type": "revolving_purchase",
        "currency": "CNY",
        "limit_fen_min": 10_000,
        "limit_fen_max": 5_000_000,
        "interest": {"method": "daily_ppm", "rate": 400, "day_count": "ACT/365"},
        "free_interest_days": 0,
        "bill_day_options": [5],
        "due_date_offset_days": 20,
        "minimum_payment": {"principal_share_bps": 1000, "floor_fen": 5000},
        "installment": {"tenors_months": [3, 6, 12], "pricing_method": "annuity", "rate_bps": 1200},
        "fees": {"late_fee_fixed_fen": 3000, "late_fee_cap_per_bill_fen": 3000},
        "penalty_rate_ppm_per_day": 500,
        "grace_days": 3,
        "funding_split": [
            {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
            {"partner_id": BANK_REF, "share_ppm": 700_000, "funder_rate_bps": 600},
        ],
        "channel_commission_bps": 60,
        "eligible_channels": list(CHANNELS),
    }


@dataclass
class DayStats:
    """What the lending side did, for the summary (counts and fen)."""

    decisions: Counter[str] = field(default_factory=Counter)
    line_ids: list[int] = field(default_factory=list)
    purchases_by_channel: Counter[str] = field(default_factory=Counter)
    purchase_fen_by_channel: Counter[str] = field(default_factory=Counter)
    installment_plans: int = 0
    refunds_fen: int = 0
    repayments: int = 0
    repaid_fen: int = 0
    end_of_days: int = 0
    late: LatePayers = field(default_factory=LatePayers)
    phones: dict[int, str] = field(default_factory=dict)
    template_id: int = 0
    purchase_ids: list[tuple[int, int]] = field(default_factory=list)
    purchases_declined: int = 0


def setup_books(node: DemoNode, stats: DayStats) -> None:
    """Open the first business day, publish the product version, its guarantee agreement
    and a reminder template, over HTTP."""
    node.client.post("/v1/ledger/business-date", {"as_of": FIRST_DAY.isoformat()}, role="admin")
    node.client.post("/v1/products", product_data(), role="admin")
    stats.template_id = configure_collections(node, PRODUCT_CODE)


def _applicant(number: int, good: bool) -> dict[str, object]:
    gender = Gender.MALE if number % 2 else Gender.FEMALE
    birth = date(1980 + number % 15, 1 + number % 12, 1 + number % 28)
    letters = "".join(chr(ord("a") + int(digit)) for digit in f"{number:03d}")
    return {
        "product_code": PRODUCT_CODE,
        "name": f"Demo Applicant {letters}",
        "id_number": make_resident_id(
            "330106", birth, (number * 2 + (gender is Gender.MALE)) % 1000, gender
        ),
        "phone": f"137{number:08d}",
        "monthly_income_fen": 1_200_000 + 50_000 * (number % 7),
        "device_id": f"demo-device-{number}",
        "ip": f"198.51.100.{number % 250 + 1}",
        "channel_id": CHANNELS[number % 2],
        "characteristics": dict(GOOD_PROFILE if good else POOR_PROFILE),
    }


def run_applications(node: DemoNode, stats: DayStats, customers: int, tick: Tick) -> None:
    """Every applicant applies over HTTP; about one in six has a poor profile."""
    for number in range(1, customers + 1):
        applicant = _applicant(number, number % 6 != 0)
        answer = node.client.post("/v1/applications", applicant)
        stats.decisions[answer["decision"]] += 1
        if answer["decision"] == "approved" and answer["credit_line_id"] is not None:
            stats.line_ids.append(int(answer["credit_line_id"]))
            stats.phones[int(answer["credit_line_id"])] = str(applicant["phone"])
        tick(f"application {number}: {answer['decision']}")
    stats.late = LatePayers.pick(stats.line_ids, stats.phones)


def _purchase(node: DemoNode, stats: DayStats, line_id: int, rng: random.Random, n: int) -> None:
    channel = CHANNELS[n % 2]
    amount_fen = rng.randrange(3_000, 90_000)
    body = {
        "merchant_id": rng.choice(MERCHANTS),
        "channel_id": channel,
        "amount_fen": amount_fen,
        "currency": "CNY",
    }
    answer = node.client.post(f"/v1/credit-lines/{line_id}/purchases", body, declines=True)
    if "id" in answer:
        stats.purchases_by_channel[channel] += 1
        stats.purchase_fen_by_channel[channel] += amount_fen
        stats.purchase_ids.append((line_id, int(answer["id"])))
    else:
        stats.purchases_declined += 1


def plan_purchases(stats: DayStats, rng: random.Random) -> dict[int, int]:
    """How many purchases each line makes on day 1: two to four (drawn up front, so the
    progress bar knows its total)."""
    return {line_id: rng.randrange(2, 5) for line_id in stats.line_ids}


def run_purchases(
    node: DemoNode, stats: DayStats, rng: random.Random, plan: dict[int, int], tick: Tick
) -> None:
    """The planned purchases of each line, alternating the two channels."""
    n = 0
    for line_id, count in plan.items():
        for _ in range(count):
            _purchase(node, stats, line_id, rng, n)
            n += 1
            tick(f"purchase on line {line_id}")


def convert_and_refund(node: DemoNode, stats: DayStats) -> None:
    """The first purchase becomes a 6-month plan; the last is refunded in part."""
    line_id, purchase_id = stats.purchase_ids[0]
    node.client.post(
        f"/v1/credit-lines/{line_id}/installment-plans",
        {"source": "purchase", "source_id": purchase_id, "tenor_months": 6},
    )
    stats.installment_plans += 1
    line_id, purchase_id = stats.purchase_ids[-1]
    refund = node.client.post(
        f"/v1/credit-lines/{line_id}/purchases/{purchase_id}/refund", {"amount_fen": 1_000}
    )
    stats.refunds_fen += int(refund["amount_fen"])


def end_days(node: DemoNode, stats: DayStats, through: date, tick: Tick) -> None:
    """End of day for every business date before `through` (the business date moves on)."""
    day = node.client.get("/v1/ledger/business-date")["as_of"]
    current = date.fromisoformat(day)
    while current < through:
        run_eod(node.database, current)
        stats.end_of_days += 1
        tick(f"end of day {current.isoformat()}")
        current += timedelta(days=1)


def _repay(node: DemoNode, stats: DayStats, line_id: int, amount_fen: int) -> None:
    if amount_fen <= 0:
        return
    body = {"amount_fen": amount_fen, "currency": "CNY", "payment_ref": f"bank-tx-{line_id}"}
    node.client.post(f"/v1/credit-lines/{line_id}/repayments", body)
    stats.repayments += 1
    stats.repaid_fen += amount_fen


def pay_bills(node: DemoNode, stats: DayStats, tick: Tick) -> None:
    """Every customer but the late payers pays its latest bill's statement balance."""
    for line_id in stats.line_ids:
        if line_id in stats.late.line_ids():
            continue
        bills = node.client.get(f"/v1/credit-lines/{line_id}/bills", role="app")["bills"]
        if bills:
            _repay(node, stats, line_id, int(bills[0]["statement_balance_fen"]))
        tick(f"bill paid on line {line_id}")


def settlement_day(node: DemoNode, stats: DayStats, rng: random.Random, tick: Tick) -> None:
    """New purchases on the lines in good standing; then the late payers: one collected,
    one cures, one compensated by the guarantor (`scripts.demo.late_payers`)."""
    late = stats.late
    for n, line_id in enumerate(stats.line_ids):
        if line_id not in late.line_ids():
            _purchase(node, stats, line_id, rng, n)
            tick(f"purchase on line {line_id}")
    collect(node, late, stats.template_id, SETTLEMENT_DAY)
    cure(node, late)
    for paid_fen in (late.collected_fen, late.cured_fen):
        if paid_fen:
            stats.repayments += 1
            stats.repaid_fen += paid_fen
    compensate(node, late, SETTLEMENT_DAY)
    tick("late payers: collected, cured, compensated")
