"""The demo's three late payers, on the settlement day, five days after their bill fell
due (one is 4 days past due at the start of the day):

- one is collected: end of day opened a collections case; the agent registers the
  borrower's number, sends an approved SMS reminder (within the conduct rules; the
  dispatcher sends it through the outbox to the local provider file), records a promise
  to pay what is past due, the borrower pays it, and the promise is kept;
- one cures on its own: it pays everything it owes;
- one never pays: the product's guarantee agreement makes the guarantor compensate what
  is past due (代偿). The demo's agreement compensates at 4 days past due so that a
  month is long enough; the node's default is 90. The guarantor's payment and its
  subrogated claim settle in the same cycle as everything else, and the guarantor
  verifies its entries like every other partner.

Everything goes through the HTTP API, except the compensation run, which is the
collections loop's own step (`run_due_compensations`) with the demo's policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from node_api.collections.compensation import run_due_compensations
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.worker import build_dispatcher
from node_api.lending.core.context import LendingCaches, LendingPolicy
from scripts.demo.node import DemoNode

DEMO_COMPENSATION_DAYS_PAST_DUE = 4
GUARANTOR_REF = "guard-ins"
CONTACTED_AT = "2025-06-30T10:00:00+08:00"
"""The agent's call on the settlement day, within the contact hours (08:00-21:00)."""


@dataclass
class LatePayers:
    """Who plays which part, and what happened (amounts in fen)."""

    collected: int | None = None
    cures: int | None = None
    compensated: int | None = None
    phones: dict[int, str] = field(default_factory=dict)
    """The synthetic applicants' numbers by line (sealed by the vault once registered;
    never printed)."""
    days_past_due: int = 0
    collected_fen: int = 0
    promise_status: str = "-"
    reminders_sent: int = 0
    cured_fen: int = 0
    compensated_fen: int = 0

    @classmethod
    def pick(cls, line_ids: list[int], phones: dict[int, str]) -> LatePayers:
        """The last three lines, as many parts as there are lines (the cure first)."""
        late = cls(phones=phones)
        roles = ("cures", "compensated", "collected")
        for role, line_id in zip(roles, reversed(line_ids[-3:]), strict=False):
            setattr(late, role, line_id)
        return late

    def line_ids(self) -> set[int]:
        return {line for line in (self.collected, self.cures, self.compensated) if line}


def configure_collections(node: DemoNode, product_code: str) -> int:
    """The guarantee agreement of the product (what is past due, by `guard-ins`) and an
    approved SMS reminder template (its id)."""
    node.client.post(
        "/v1/collections/guarantees",
        {"product_code": product_code, "guarantor_ref": GUARANTOR_REF, "coverage": "overdue"},
        role="admin",
    )
    draft = node.client.post(
        "/v1/collections/templates",
        {
            "code": "demo-reminder", "channel": "sms", "party": "borrower",
            "body": "Your payment of {past_due_yuan} yuan is {days_past_due} days late.",
        },
    )  # fmt: skip
    node.client.post(f"/v1/collections/templates/{draft['id']}/approve", None, role="admin")
    return int(draft["id"])


def _past_due(node: DemoNode, line_id: int) -> dict[str, Any]:
    status: dict[str, Any] = node.client.get(f"/v1/credit-lines/{line_id}/delinquency", role="app")
    return status


def _repay(node: DemoNode, line_id: int, amount_fen: int) -> None:
    body = {"amount_fen": amount_fen, "currency": "CNY", "payment_ref": f"bank-tx-{line_id}"}
    node.client.post(f"/v1/credit-lines/{line_id}/repayments", body)


def collect(node: DemoNode, late: LatePayers, template_id: int, today: date) -> None:
    """The collected payer: case, reminder, promise, payment, promise kept."""
    line_id = late.collected
    if line_id is None:
        return
    node.client.post("/v1/collections/refresh", {}, role="admin")
    (case,) = [
        case
        for case in node.client.get("/v1/collections/cases", role="app")
        if case["credit_line_id"] == line_id
    ]
    node.client.post(
        f"/v1/collections/lines/{line_id}/contacts",
        {"party": "borrower", "phone": late.phones[line_id]},
    )
    attempt = node.client.post(
        f"/v1/collections/cases/{case['id']}/contact-attempts",
        {"party": "borrower", "channel": "sms", "template_id": template_id,
         "contacted_at": CONTACTED_AT},
    )  # fmt: skip
    status = _past_due(node, line_id)
    late.days_past_due = int(status["days_past_due"])
    late.collected_fen = int(status["past_due_fen"])
    node.client.post(
        f"/v1/collections/cases/{case['id']}/promises",
        {"amount_fen": late.collected_fen, "due_on": today.isoformat(),
         "attempt_id": attempt["id"]},
    )  # fmt: skip
    _repay(node, line_id, late.collected_fen)
    node.client.post("/v1/collections/promises/evaluate", {}, role="admin")
    detail = node.client.get(f"/v1/collections/cases/{case['id']}", role="app")
    late.promise_status = str(detail["promises"][0]["status"])
    sent_at = datetime.fromisoformat(CONTACTED_AT).astimezone(UTC)
    dispatcher = build_dispatcher(node.settings, node.database, clock=lambda: sent_at)
    late.reminders_sent = dispatcher.run_once().delivered


def cure(node: DemoNode, late: LatePayers) -> None:
    """The payer who cures on its own pays everything it owes."""
    if late.cures is None:
        return
    late.cured_fen = int(_past_due(node, late.cures)["outstanding_fen"])
    _repay(node, late.cures, late.cured_fen)


def compensate(node: DemoNode, late: LatePayers, today: date) -> None:
    """The collections loop's compensation step: the guarantor pays for every guaranteed
    line still past due at the demo's compensation day (only the one that never paid)."""
    policy = CollectionsPolicy(compensation_days_past_due=DEMO_COMPENSATION_DAYS_PAST_DUE)
    caches = LendingCaches(policy=LendingPolicy.from_settings(node.settings))
    with node.database.engine.begin() as conn:
        run = run_due_compensations(conn, caches, policy, today, by="demo")
    late.compensated_fen = sum(
        item.amount_fen for item in run.compensations if item.credit_line_id == late.compensated
    )
