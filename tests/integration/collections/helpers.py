"""Lines in delinquency, templates and a vault for the collections tests."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Connection

from node_api.collections.model import Channel, Party
from node_api.collections.templates import TemplateView, approve_template, create_template
from node_api.kernel.config import Settings
from node_api.lending.billing_rules import compute_delinquency_bucket
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod.state import update_line_states
from node_api.onboarding.pii import PiiVault
from node_api.onboarding.vault_factory import build_vault
from tests.integration.lending.helpers import open_line

AS_OF = date(2025, 4, 10)
BORROWER_PHONE = "13800138000"
EMERGENCY_PHONE = "13900139000"


def dev_vault() -> PiiVault:
    return build_vault(Settings())


def open_past_due_line(
    conn: Connection, caches: LendingCaches, customer_ref: str, days_past_due: int
) -> int:
    """A line end of day found `days_past_due` days past due on `AS_OF`."""
    line_id = open_line(conn, caches, customer_ref=customer_ref)
    set_days_past_due(conn, line_id, days_past_due)
    return line_id


def set_days_past_due(conn: Connection, line_id: int, days_past_due: int) -> None:
    """What end of day would write for the line (days past due and bucket)."""
    bucket = compute_delinquency_bucket(days_past_due)
    update_line_states(
        conn,
        AS_OF,
        {line_id: {"days_past_due": days_past_due, "bucket": bucket.value}},
        ["days_past_due", "bucket"],
    )


def approved_template(
    conn: Connection,
    channel: Channel = Channel.SMS,
    party: Party = Party.BORROWER,
    body: str = "Your payment of {past_due_yuan} yuan is {days_past_due} days late.",
) -> TemplateView:
    template = create_template(
        conn, code=f"t-{channel.value}-{party.value}", channel=channel, party=party,
        body=body, on=AS_OF, by="writer",
    )  # fmt: skip
    return approve_template(conn, template.id, on=AS_OF, by="approver")
