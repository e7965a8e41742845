"""The vocabulary of collections: parties, channels, outcomes and statuses."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Party(StrEnum):
    """Whom collections may contact: the borrower and their registered emergency contact
    only (conduct rule `contact_party_not_allowed`)."""

    BORROWER = "borrower"
    EMERGENCY_CONTACT = "emergency_contact"


class Channel(StrEnum):
    """How a case is worked. `app`, `sms` and `voice` are messages sent through a contact
    provider (each from an approved template); `call` is an agent's call; `agency` is work
    by an external collection agency."""

    APP = "app"
    SMS = "sms"
    VOICE = "voice"
    CALL = "call"
    AGENCY = "agency"


MESSAGE_CHANNELS: Final = frozenset({Channel.APP, Channel.SMS, Channel.VOICE})
"""Channels whose attempts are messages: template required, sent through the outbox."""
ADDRESSED_CHANNELS: Final = frozenset({Channel.SMS, Channel.VOICE, Channel.CALL})
"""Channels that reach a phone number, which must be in the contact registry."""


class Outcome(StrEnum):
    """What a contact attempt achieved."""

    QUEUED = "queued"
    """A message handed to the provider (its delivery is tracked separately)."""
    NO_ANSWER = "no_answer"
    REACHED = "reached"
    PROMISE_TO_PAY = "promise_to_pay"
    REFUSED_TO_PAY = "refused_to_pay"
    DISPUTED = "disputed"
    HARDSHIP_CLAIMED = "hardship_claimed"
    WRONG_NUMBER = "wrong_number"


class Delivery(StrEnum):
    """A message's delivery by the contact provider."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


class CaseStatus(StrEnum):
    OPEN = "open"
    CURED = "cured"
    """The line is current again (no day past due)."""


class Arm(StrEnum):
    """The arm of a champion/challenger test a case was opened in."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"


class PromiseStatus(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    BROKEN = "broken"


class PlanKind(StrEnum):
    """A hardship plan: a payment holiday, or the balance re-aged into installments."""

    PAYMENT_HOLIDAY = "payment_holiday"
    REAGED_INSTALLMENTS = "reaged_installments"


class PlanStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class TemplateStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
