"""The conduct rules every contact attempt passes before it is recorded.

1. Only the borrower and the registered emergency contact (`contact_party_not_allowed`);
   an app message only to the borrower; a phone channel only to a registered number
   (`contact_not_registered`).
2. No contact outside the policy's hours, judged in its time zone
   (`contact_outside_hours`): allowed from `contact_hours_start` up to, not including,
   `contact_hours_end`.
3. At most `contacts_per_day_max` attempts about one borrower per local day
   (`contact_daily_limit_reached`), whatever the line, party or channel.
4. Every message (app, SMS, voice) from a template approved for its channel and party
   (`template_not_approved`).

A breach is a `ConductRuleBreach` (409) whose code names the rule; it is logged with
ids only. The contact time is always the caller's: nothing here reads the clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final

from node_api.collections.model import ADDRESSED_CHANNELS, MESSAGE_CHANNELS, Channel, Party
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.templates import TemplateView
from node_api.kernel.errors import ConflictError, CreditNetValueError

log = logging.getLogger("creditnet.collections")

YEAR_MIN: Final = 1900
YEAR_MAX: Final = 9998
"""Contact times lie in these years (any zone's local day and the next stay in range)."""


class ConductRule(StrEnum):
    """The stable codes of the conduct rules (module docstring)."""

    PARTY_NOT_ALLOWED = "contact_party_not_allowed"
    NOT_REGISTERED = "contact_not_registered"
    OUTSIDE_HOURS = "contact_outside_hours"
    DAILY_LIMIT_REACHED = "contact_daily_limit_reached"
    TEMPLATE_NOT_APPROVED = "template_not_approved"


class ConductRuleBreach(ConflictError):
    """A contact attempt that a conduct rule refuses; `code` is the rule."""

    code = "conduct_rule_breached"

    def __init__(self, rule: ConductRule, detail: str, *, field: str) -> None:
        super().__init__(detail, field=field, code=rule.value, rule=rule.value)
        self.rule = rule


def to_utc(at: datetime) -> datetime:
    """`at` in UTC; a contact time without a time zone (it would be ambiguous) or outside
    the years 1900 to 9999 is refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise CreditNetValueError("a contact time needs a time zone offset", field="contacted_at")
    outside = CreditNetValueError(
        f"a contact time lies in the years {YEAR_MIN} to {YEAR_MAX}", field="contacted_at"
    )
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        raise outside from None
    if not YEAR_MIN <= utc.year <= YEAR_MAX:
        raise outside
    return utc


def compute_local_date(policy: CollectionsPolicy, at: datetime) -> date:
    """The day of `at` in the policy's time zone (the daily limit counts by it)."""
    return to_utc(at).astimezone(policy.timezone).date()


def is_within_contact_hours(policy: CollectionsPolicy, at: datetime) -> bool:
    """Whether a contact may start at `at` (local time in the half-open window)."""
    local = to_utc(at).astimezone(policy.timezone).time()
    return policy.contact_hours_start <= local < policy.contact_hours_end


def compute_next_window_start(policy: CollectionsPolicy, at: datetime) -> datetime:
    """The first moment at or after `at` within contact hours (UTC)."""
    if is_within_contact_hours(policy, at):
        return to_utc(at)
    local = to_utc(at).astimezone(policy.timezone)
    day = local.date()
    if local.time() >= policy.contact_hours_end:
        day += timedelta(days=1)
    start = datetime.combine(day, policy.contact_hours_start, tzinfo=policy.timezone)
    return start.astimezone(UTC)


def check_party(party: str, channel: Channel) -> Party:
    """The party, if collections may contact it on `channel` (rule 1)."""
    if party not in {member.value for member in Party}:
        raise ConductRuleBreach(
            ConductRule.PARTY_NOT_ALLOWED,
            "only the borrower and the registered emergency contact may be contacted",
            field="party",
        )
    if channel is Channel.APP and party != Party.BORROWER:
        raise ConductRuleBreach(
            ConductRule.PARTY_NOT_ALLOWED,
            "an app message reaches the borrower only",
            field="party",
        )
    return Party(party)


def check_registered(party: Party, channel: Channel, registered: bool) -> None:
    """A phone channel needs the party's number in the registry; the emergency contact
    can only be reached when registered (rule 1)."""
    if registered:
        return
    if channel in ADDRESSED_CHANNELS or party is Party.EMERGENCY_CONTACT:
        raise ConductRuleBreach(
            ConductRule.NOT_REGISTERED,
            f"no {party.value} contact is registered for this line",
            field="party",
        )


def check_contact_hours(policy: CollectionsPolicy, at: datetime) -> None:
    """Rule 2."""
    if not is_within_contact_hours(policy, at):
        start = policy.contact_hours_start.isoformat(timespec="minutes")
        end = policy.contact_hours_end.isoformat(timespec="minutes")
        raise ConductRuleBreach(
            ConductRule.OUTSIDE_HOURS,
            f"contacts are allowed from {start} to before {end} ({policy.timezone.key})",
            field="contacted_at",
        )


def check_daily_count(policy: CollectionsPolicy, contacts_today: int) -> None:
    """Rule 3: `contacts_today` attempts about the borrower are already recorded today."""
    if contacts_today >= policy.contacts_per_day_max:
        raise ConductRuleBreach(
            ConductRule.DAILY_LIMIT_REACHED,
            f"this borrower was contacted {contacts_today} times today; at most "
            f"{policy.contacts_per_day_max} contacts a day are allowed",
            field="contacted_at",
        )


def check_template(
    template: TemplateView | None, channel: Channel, party: Party, *, named: bool
) -> None:
    """Rule 4: a message needs an approved template of its channel and party; a call
    may follow a script, which must then be approved too. `named`: the attempt named a
    template (None then means an unknown one, refused like an unapproved one)."""
    if template is None:
        if named or channel in MESSAGE_CHANNELS:
            raise ConductRuleBreach(
                ConductRule.TEMPLATE_NOT_APPROVED,
                "every message must come from an approved template",
                field="template_id",
            )
        return
    if not template.is_approved or template.channel != channel or template.party != party:
        raise ConductRuleBreach(
            ConductRule.TEMPLATE_NOT_APPROVED,
            f"the template is not approved for {channel.value} messages to the {party.value}",
            field="template_id",
        )


def log_breach(breach: ConductRuleBreach, *, case_id: int, channel: str, agent: str) -> None:
    """Log a refused attempt with ids only (never a number, name or note)."""
    log.warning(
        "conduct rule refused a contact",
        extra={"rule": breach.rule.value, "case_id": case_id, "channel": channel, "agent": agent},
    )
