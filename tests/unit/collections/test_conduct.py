"""Each conduct rule refuses its breach with its own code and allows its boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from node_api.collections.conduct import (
    ConductRule,
    ConductRuleBreach,
    check_contact_hours,
    check_daily_count,
    check_party,
    check_registered,
    check_template,
    compute_local_date,
    compute_next_window_start,
)
from node_api.collections.model import Channel, Party
from node_api.collections.policy import CollectionsPolicy, CollectionsSettings, build_policy
from node_api.collections.templates import TemplateView
from node_api.kernel.errors import ConfigurationError, CreditNetValueError

POLICY = CollectionsPolicy()
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 7, 10, hour, minute, second, tzinfo=SHANGHAI)


@contextmanager
def _refused(rule: ConductRule) -> Iterator[None]:
    """Expect a `ConductRuleBreach` of `rule`, naming its rule in the problem's facts."""
    with pytest.raises(ConductRuleBreach) as info:
        yield
    assert info.value.code == rule.value
    assert info.value.extra == {"rule": rule.value}


@pytest.mark.parametrize(
    "at", [_at(8), _at(12, 30), _at(20, 59, 59), datetime(2025, 7, 10, 0, 0, tzinfo=UTC)]
)
def test_contacts_are_allowed_from_eight_to_before_nine_local_time(at: datetime) -> None:
    check_contact_hours(POLICY, at)


@pytest.mark.parametrize(
    "at",
    [_at(7, 59, 59), _at(21), _at(23, 30), _at(0), datetime(2025, 7, 10, 13, 0, tzinfo=UTC)],
)
def test_RevertWhen_a_contact_starts_outside_the_hours(at: datetime) -> None:
    with _refused(ConductRule.OUTSIDE_HOURS):
        check_contact_hours(POLICY, at)


def test_the_hours_follow_the_configured_time_zone() -> None:
    settings = CollectionsSettings(
        timezone="Europe/London", contact_hours_start=time(9), contact_hours_end=time(17)
    )
    policy = build_policy(settings, 2_400)
    london_nine = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)  # GMT in January
    check_contact_hours(policy, london_nine)
    with _refused(ConductRule.OUTSIDE_HOURS):
        check_contact_hours(policy, london_nine - timedelta(seconds=1))


def test_a_contact_time_without_offset_is_refused() -> None:
    with pytest.raises(CreditNetValueError) as info:
        check_contact_hours(POLICY, datetime(2025, 7, 10, 12, 0))
    assert info.value.field == "contacted_at"


def test_the_local_day_is_the_policy_zones() -> None:
    late_utc = datetime(2025, 7, 10, 17, 0, tzinfo=UTC)  # 01:00 on the 11th in Shanghai
    assert compute_local_date(POLICY, late_utc) == date(2025, 7, 11)


def test_the_next_window_opens_the_same_morning_or_the_next() -> None:
    assert compute_next_window_start(POLICY, _at(6)) == _at(8).astimezone(UTC)
    assert compute_next_window_start(POLICY, _at(21, 30)) == (_at(8) + timedelta(days=1))
    assert compute_next_window_start(POLICY, _at(9)) == _at(9)


def test_the_last_contact_of_the_day_is_allowed_and_the_next_refused() -> None:
    check_daily_count(POLICY, POLICY.contacts_per_day_max - 1)
    with _refused(ConductRule.DAILY_LIMIT_REACHED):
        check_daily_count(POLICY, POLICY.contacts_per_day_max)


@pytest.mark.parametrize("party", ["borrower", "emergency_contact"])
def test_the_borrower_and_the_emergency_contact_may_be_called(party: str) -> None:
    assert check_party(party, Channel.CALL) == Party(party)


@pytest.mark.parametrize("party", ["employer", "relative", "colleague", ""])
def test_RevertWhen_anyone_else_is_contacted(party: str) -> None:
    with _refused(ConductRule.PARTY_NOT_ALLOWED):
        check_party(party, Channel.CALL)


def test_RevertWhen_an_app_message_targets_the_emergency_contact() -> None:
    with _refused(ConductRule.PARTY_NOT_ALLOWED):
        check_party("emergency_contact", Channel.APP)


def test_RevertWhen_a_phone_channel_has_no_registered_number() -> None:
    check_registered(Party.BORROWER, Channel.APP, registered=False)
    check_registered(Party.EMERGENCY_CONTACT, Channel.CALL, registered=True)
    with _refused(ConductRule.NOT_REGISTERED):
        check_registered(Party.BORROWER, Channel.SMS, registered=False)
    with _refused(ConductRule.NOT_REGISTERED):
        check_registered(Party.EMERGENCY_CONTACT, Channel.CALL, registered=False)


def _template(
    status: str = "approved", channel: str = "sms", party: str = "borrower"
) -> TemplateView:
    return TemplateView(
        id=1, code="m1", version=1, channel=channel, party=party,
        body="late by {days_past_due} days", status=status, created_on=date(2025, 7, 1),
        created_by="writer", approved_on=None, approved_by=None,
    )  # fmt: skip


def test_an_approved_template_of_the_channel_and_party_may_be_sent() -> None:
    check_template(_template(), Channel.SMS, Party.BORROWER, named=True)
    check_template(None, Channel.CALL, Party.BORROWER, named=False)


@pytest.mark.parametrize(
    ("template", "channel", "named"),
    [
        (None, Channel.SMS, False),
        (None, Channel.APP, False),
        (None, Channel.CALL, True),
        (_template(status="draft"), Channel.SMS, True),
        (_template(channel="voice"), Channel.SMS, True),
        (_template(party="emergency_contact"), Channel.SMS, True),
    ],
)
def test_RevertWhen_a_message_is_not_from_an_approved_template(
    template: TemplateView | None, channel: Channel, named: bool
) -> None:
    with _refused(ConductRule.TEMPLATE_NOT_APPROVED):
        check_template(template, channel, Party.BORROWER, named=named)


def test_RevertWhen_the_policy_has_an_empty_window_or_an_unknown_zone() -> None:
    with pytest.raises(ConfigurationError):
        build_policy(CollectionsSettings(contact_hours_start=time(21)), 2_400)
    with pytest.raises(ConfigurationError):
        build_policy(CollectionsSettings(timezone="Mars/Olympus"), 2_400)


def test_a_breach_is_a_409_conflict_naming_its_rule() -> None:
    from node_api.http.problems import problem_body

    body = problem_body(
        ConductRuleBreach(ConductRule.OUTSIDE_HOURS, "too late", field="contacted_at")
    )
    assert (body["status"], body["code"], body["rule"], body["field"]) == (
        409, "contact_outside_hours", "contact_outside_hours", "contacted_at",
    )  # fmt: skip
