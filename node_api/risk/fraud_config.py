"""Configuration of the anti-fraud rule set: thresholds and severities, with defaults.

Products or risk teams override any field (the model is plain pydantic, so it
loads from JSON or settings); a rule's reason code is stable whatever its
threshold, so decisions stay explainable after a threshold change.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AttributeKind(StrEnum):
    """Application attributes tracked by hash; the value names the reason codes."""

    ID = "id"
    PHONE = "phone"
    DEVICE = "device"
    IP = "ip"


class Severity(StrEnum):
    """What a rule hit does to the decision."""

    REVIEW = "review"
    DECLINE = "decline"


class VelocityWindow(StrEnum):
    HOUR_1 = "1h"
    HOURS_24 = "24h"
    DAYS_30 = "30d"

    @property
    def duration(self) -> timedelta:
        return _WINDOW_DURATIONS[self]


_WINDOW_DURATIONS = {
    VelocityWindow.HOUR_1: timedelta(hours=1),
    VelocityWindow.HOURS_24: timedelta(hours=24),
    VelocityWindow.DAYS_30: timedelta(days=30),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VelocityLimits(_Frozen):
    """Most applications (the current one included) allowed per window."""

    applications_max_1h: int = Field(ge=1)
    applications_max_24h: int = Field(ge=1)
    applications_max_30d: int = Field(ge=1)
    severity: Severity = Severity.REVIEW

    def get_max(self, window: VelocityWindow) -> int:
        return {
            VelocityWindow.HOUR_1: self.applications_max_1h,
            VelocityWindow.HOURS_24: self.applications_max_24h,
            VelocityWindow.DAYS_30: self.applications_max_30d,
        }[window]


class SharingLimit(_Frozen):
    """Most distinct identities (the applicant included) one attribute may serve."""

    identities_max: int = Field(ge=1)
    window_days: int = Field(default=90, ge=1)
    severity: Severity = Severity.REVIEW


def _default_velocity() -> dict[AttributeKind, VelocityLimits]:
    return {
        AttributeKind.ID: VelocityLimits(
            applications_max_1h=3, applications_max_24h=5, applications_max_30d=10
        ),
        AttributeKind.PHONE: VelocityLimits(
            applications_max_1h=3, applications_max_24h=5, applications_max_30d=10
        ),
        AttributeKind.DEVICE: VelocityLimits(
            applications_max_1h=5, applications_max_24h=10, applications_max_30d=20
        ),
        AttributeKind.IP: VelocityLimits(
            applications_max_1h=20, applications_max_24h=60, applications_max_30d=300
        ),
    }


class FraudRuleConfig(_Frozen):
    """The whole rule set. Rule codes listed in `disabled_rules` never fire."""

    velocity: dict[AttributeKind, VelocityLimits] = Field(default_factory=_default_velocity)
    device_shared: SharingLimit = SharingLimit(identities_max=3)
    phone_shared: SharingLimit = SharingLimit(identities_max=1)
    blacklist_kinds: tuple[AttributeKind, ...] = (
        AttributeKind.ID,
        AttributeKind.PHONE,
        AttributeKind.DEVICE,
    )
    blacklist_severity: Severity = Severity.DECLINE
    birthdate_mismatch_severity: Severity = Severity.REVIEW
    gender_mismatch_severity: Severity = Severity.REVIEW
    ring_identities_min: int = Field(default=5, ge=2)
    ring_link_kinds: tuple[AttributeKind, ...] = (AttributeKind.PHONE, AttributeKind.DEVICE)
    ring_severity: Severity = Severity.REVIEW
    disabled_rules: frozenset[str] = frozenset()
