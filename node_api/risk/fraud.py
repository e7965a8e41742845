"""The anti-fraud rule set: pure functions from (facts, signals, config) to rule hits.

Reason codes are stable strings (VELOCITY_DEVICE_24H, BLACKLIST_PHONE, FRAUD_RING,
...). Evidence carries counts and thresholds only: no hashes, no dates, no
values, so a stored decision explains itself without exposing anyone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypedDict

from node_api.risk.fraud_config import (
    AttributeKind,
    FraudRuleConfig,
    Severity,
    SharingLimit,
    VelocityWindow,
)
from node_api.risk.fraud_facts import ApplicationFacts, FraudHistory, FraudSignals, gather_signals

Evidence = Mapping[str, int | str]


class FraudHitJson(TypedDict):
    """A hit as stored with its decision (JSON) and answered to the applicant's channel."""

    code: str
    severity: str
    evidence: dict[str, int | str]


@dataclass(frozen=True, slots=True)
class FraudHit:
    code: str
    severity: Severity
    evidence: Evidence

    def to_dict(self) -> FraudHitJson:
        return {"code": self.code, "severity": self.severity.value, "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: FraudHitJson) -> FraudHit:
        return cls(data["code"], Severity(data["severity"]), dict(data["evidence"]))


@dataclass(frozen=True, slots=True)
class FraudAssessment:
    """All hits of one application, in rule order, and the worst severity among them."""

    hits: tuple[FraudHit, ...]

    @property
    def outcome(self) -> Severity | None:
        severities = {hit.severity for hit in self.hits}
        if Severity.DECLINE in severities:
            return Severity.DECLINE
        return Severity.REVIEW if severities else None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(hit.code for hit in self.hits)


def get_velocity_code(kind: AttributeKind, window: VelocityWindow) -> str:
    return f"VELOCITY_{kind.value.upper()}_{window.value.upper()}"


def _velocity_hits(signals: FraudSignals, config: FraudRuleConfig) -> Iterator[FraudHit]:
    for kind, limits in config.velocity.items():
        for window in VelocityWindow:
            prior = signals.prior_applications.get((kind, window))
            if prior is None:
                continue
            applications = prior + 1
            applications_max = limits.get_max(window)
            if applications > applications_max:
                evidence = {
                    "attribute": kind.value,
                    "window": window.value,
                    "applications": applications,
                    "applications_max": applications_max,
                }
                yield FraudHit(get_velocity_code(kind, window), limits.severity, evidence)


def _sharing_hit(
    code: str, kind: AttributeKind, limit: SharingLimit, signals: FraudSignals
) -> Iterator[FraudHit]:
    others = signals.other_identities.get(kind)
    if others is None or others + 1 <= limit.identities_max:
        return
    evidence = {
        "attribute": kind.value,
        "identities": others + 1,
        "identities_max": limit.identities_max,
        "window_days": limit.window_days,
    }
    yield FraudHit(code, limit.severity, evidence)


def _blacklist_hits(signals: FraudSignals, config: FraudRuleConfig) -> Iterator[FraudHit]:
    for kind in config.blacklist_kinds:
        if kind in signals.blacklisted:
            code = f"BLACKLIST_{kind.value.upper()}"
            yield FraudHit(code, config.blacklist_severity, {"attribute": kind.value})


def _consistency_hits(facts: ApplicationFacts, config: FraudRuleConfig) -> Iterator[FraudHit]:
    declared_birth_date = facts.declared_birth_date
    if declared_birth_date is not None and declared_birth_date != facts.id_birth_date:
        evidence = {"declared_field": "birth_date", "source": "id_number"}
        yield FraudHit("BIRTHDATE_MISMATCH", config.birthdate_mismatch_severity, evidence)
    if facts.declared_gender is not None and facts.declared_gender != facts.id_gender:
        evidence = {"declared_field": "gender", "source": "id_number"}
        yield FraudHit("GENDER_MISMATCH", config.gender_mismatch_severity, evidence)


def _ring_hits(signals: FraudSignals, config: FraudRuleConfig) -> Iterator[FraudHit]:
    if signals.ring_identities >= config.ring_identities_min:
        evidence = {
            "identities": signals.ring_identities,
            "identities_min": config.ring_identities_min,
        }
        yield FraudHit("FRAUD_RING", config.ring_severity, evidence)


def compute_fraud_assessment(
    facts: ApplicationFacts, signals: FraudSignals, config: FraudRuleConfig
) -> FraudAssessment:
    """Apply every enabled rule; pure, so a stored (facts, signals, config) replays exactly."""
    hits = [
        *_velocity_hits(signals, config),
        *_sharing_hit("DEVICE_SHARED", AttributeKind.DEVICE, config.device_shared, signals),
        *_sharing_hit("PHONE_SHARED", AttributeKind.PHONE, config.phone_shared, signals),
        *_blacklist_hits(signals, config),
        *_consistency_hits(facts, config),
        *_ring_hits(signals, config),
    ]
    return FraudAssessment(tuple(hit for hit in hits if hit.code not in config.disabled_rules))


def evaluate_fraud(
    facts: ApplicationFacts, history: FraudHistory, config: FraudRuleConfig | None = None
) -> tuple[FraudSignals, FraudAssessment]:
    """Gather signals from `history` and apply the rules; returns both for storage."""
    rule_config = config if config is not None else FraudRuleConfig()
    signals = gather_signals(facts, history, rule_config)
    return signals, compute_fraud_assessment(facts, signals, rule_config)
