"""Anti-fraud rules: each reason code fires at its threshold and stays quiet below it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from node_api.onboarding.application_input import compute_application_facts
from node_api.onboarding.identity import make_resident_id, verify_identity
from node_api.onboarding.pii import PiiVault
from node_api.risk.fraud import FraudAssessment, compute_fraud_assessment, evaluate_fraud
from node_api.risk.fraud_config import (
    AttributeKind,
    FraudRuleConfig,
    Severity,
    SharingLimit,
    VelocityLimits,
    VelocityWindow,
)
from node_api.risk.fraud_facts import FraudSignals, Gender
from node_api.risk.fraud_memory import InMemoryFraudHistory
from tests.unit.risk.fraud_helpers import BIRTH_DATE, NOW, facts, h

LOOSE = VelocityLimits(applications_max_1h=99, applications_max_24h=99, applications_max_30d=99)
INSIDE = {
    VelocityWindow.HOUR_1: timedelta(minutes=59),
    VelocityWindow.HOURS_24: timedelta(hours=23),
    VelocityWindow.DAYS_30: timedelta(days=29),
}
OUTSIDE = {
    VelocityWindow.HOUR_1: timedelta(minutes=61),
    VelocityWindow.HOURS_24: timedelta(hours=25),
    VelocityWindow.DAYS_30: timedelta(days=31),
}


def _assess(
    history: InMemoryFraudHistory, config: FraudRuleConfig, **kwargs: object
) -> FraudAssessment:
    return evaluate_fraud(facts(**kwargs), history, config)[1]  # type: ignore[arg-type]


def _tight(kind: AttributeKind, window: VelocityWindow) -> FraudRuleConfig:
    """Loose limits everywhere except one (kind, window) allowing 2 applications."""
    tight = LOOSE.model_copy(update={f"applications_max_{window.value}": 2})
    velocity = {k: (tight if k == kind else LOOSE) for k in AttributeKind}
    return FraudRuleConfig(velocity=velocity)


@pytest.mark.parametrize("kind", list(AttributeKind))
@pytest.mark.parametrize("window", list(VelocityWindow))
def test_velocity_fires_when_window_holds_more_than_allowed(
    kind: AttributeKind, window: VelocityWindow
) -> None:
    config = _tight(kind, window)
    history = InMemoryFraudHistory(config)
    history.record(facts(at=NOW - INSIDE[window]))
    assert _assess(history, config).hits == ()
    history.record(facts(at=NOW - INSIDE[window] / 2))
    assessment = _assess(history, config)
    code = f"VELOCITY_{kind.value.upper()}_{window.value.upper()}"
    assert assessment.codes == (code,)
    assert dict(assessment.hits[0].evidence) == {
        "attribute": kind.value,
        "window": window.value,
        "applications": 3,
        "applications_max": 2,
    }
    assert assessment.outcome == Severity.REVIEW


@pytest.mark.parametrize("kind", list(AttributeKind))
@pytest.mark.parametrize("window", list(VelocityWindow))
def test_velocity_ignores_applications_older_than_the_window(
    kind: AttributeKind, window: VelocityWindow
) -> None:
    config = _tight(kind, window)
    history = InMemoryFraudHistory(config)
    for _ in range(3):
        history.record(facts(at=NOW - OUTSIDE[window]))
    assert _assess(history, config).hits == ()


def test_velocity_counts_only_the_same_attribute_value() -> None:
    config = _tight(AttributeKind.DEVICE, VelocityWindow.HOUR_1)
    history = InMemoryFraudHistory(config)
    for _ in range(3):
        history.record(facts(device="device-2", at=NOW - timedelta(minutes=5)))
    assert _assess(history, config).hits == ()


def test_device_shared_fires_above_the_identity_maximum() -> None:
    config = FraudRuleConfig(device_shared=SharingLimit(identities_max=3, window_days=90))
    history = InMemoryFraudHistory(config)
    for n in range(2):
        history.record(facts(f"other-{n}", phone=f"p-{n}", at=NOW - timedelta(days=10)))
    assert "DEVICE_SHARED" not in _assess(history, config).codes
    history.record(facts("other-2", phone="p-2", at=NOW - timedelta(days=10)))
    assessment = _assess(history, config)
    assert assessment.codes == ("DEVICE_SHARED",)
    assert assessment.hits[0].evidence["identities"] == 4


def test_device_shared_ignores_the_applicant_and_old_uses() -> None:
    config = FraudRuleConfig(device_shared=SharingLimit(identities_max=1, window_days=30))
    history = InMemoryFraudHistory(config)
    history.record(facts(at=NOW - timedelta(days=1)))
    history.record(facts("other", phone="p-x", at=NOW - timedelta(days=31)))
    assert _assess(history, config).hits == ()


def test_phone_shared_fires_when_another_identity_used_the_phone() -> None:
    config = FraudRuleConfig()
    history = InMemoryFraudHistory(config)
    history.record(facts(at=NOW - timedelta(days=3)))
    assert "PHONE_SHARED" not in _assess(history, config).codes
    history.record(facts("id-2", device="device-2", at=NOW - timedelta(days=2)))
    assert _assess(history, config).codes == ("PHONE_SHARED",)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (AttributeKind.ID, "BLACKLIST_ID"),
        (AttributeKind.PHONE, "BLACKLIST_PHONE"),
        (AttributeKind.DEVICE, "BLACKLIST_DEVICE"),
    ],
)
def test_blacklist_declines_a_listed_attribute(kind: AttributeKind, code: str) -> None:
    config = FraudRuleConfig()
    history = InMemoryFraudHistory(config)
    history.add_to_blacklist(kind, [h("unrelated")])
    assert _assess(history, config).hits == ()
    label = {
        AttributeKind.ID: "id-1",
        AttributeKind.PHONE: "phone-1",
        AttributeKind.DEVICE: "device-1",
    }
    history.add_to_blacklist(kind, [h(label[kind])])
    assessment = _assess(history, config)
    assert assessment.codes == (code,)
    assert assessment.outcome == Severity.DECLINE


def test_blacklist_of_unconfigured_kind_does_not_fire() -> None:
    config = FraudRuleConfig()
    history = InMemoryFraudHistory(config)
    history.add_to_blacklist(AttributeKind.IP, [h("ip-1")])
    assert _assess(history, config).hits == ()


def test_consistency_rules_compare_declared_values_with_the_id_number() -> None:
    config = FraudRuleConfig()
    history = InMemoryFraudHistory(config)
    assert (
        _assess(history, config, declared_birth_date=BIRTH_DATE, declared_gender=Gender.MALE).hits
        == ()
    )
    assert _assess(history, config).hits == ()
    mismatch = _assess(
        history,
        config,
        declared_birth_date=BIRTH_DATE + timedelta(days=1),
        declared_gender=Gender.FEMALE,
    )
    assert mismatch.codes == ("BIRTHDATE_MISMATCH", "GENDER_MISMATCH")
    assert all("1990" not in str(hit.to_dict()) for hit in mismatch.hits)


def test_ring_of_applications_sharing_devices_is_detected() -> None:
    config = FraudRuleConfig(
        ring_identities_min=5,
        device_shared=SharingLimit(identities_max=9),
        phone_shared=SharingLimit(identities_max=9),
    )
    history = InMemoryFraudHistory(config)
    # A chain: member n applies twice, from device n and from device n + 1.
    sizes = []
    for n in range(4):
        for offset in (0, 1):
            member = facts(
                f"member-{n}",
                phone=f"phone-{n}",
                device=f"dev-{n + offset}",
                at=NOW - timedelta(days=20 - n, hours=offset),
            )
            assert evaluate_fraud(member, history, config)[1].hits == ()
            size = history.record(member)
        sizes.append(size)
    assert sizes == [1, 2, 3, 4]
    fifth = facts("member-4", phone="phone-4", device="dev-3")
    assessment = evaluate_fraud(fifth, history, config)[1]
    assert assessment.codes == ("FRAUD_RING",)
    assert dict(assessment.hits[0].evidence) == {"identities": 5, "identities_min": 5}
    stranger = facts("stranger", phone="phone-s", device="dev-s")
    assert evaluate_fraud(stranger, history, config)[1].hits == ()


def test_disabled_rules_never_fire() -> None:
    config = FraudRuleConfig(disabled_rules=frozenset({"BLACKLIST_PHONE"}))
    history = InMemoryFraudHistory(config)
    history.add_to_blacklist(AttributeKind.PHONE, [h("phone-1")])
    assert _assess(history, config).hits == ()


def test_decline_outranks_review_in_the_outcome() -> None:
    config = FraudRuleConfig()
    history = InMemoryFraudHistory(config)
    history.add_to_blacklist(AttributeKind.DEVICE, [h("device-1")])
    assessment = _assess(history, config, declared_gender=Gender.FEMALE)
    assert {hit.severity for hit in assessment.hits} == {Severity.REVIEW, Severity.DECLINE}
    assert assessment.outcome == Severity.DECLINE


def test_evidence_holds_counts_and_names_only() -> None:
    config = FraudRuleConfig(ring_identities_min=2)
    history = InMemoryFraudHistory(config)
    history.record(facts("id-2", at=NOW - timedelta(minutes=1)))
    history.add_to_blacklist(AttributeKind.ID, [h("id-1")])
    assessment = _assess(history, config, declared_gender=Gender.FEMALE)
    assert len(assessment.hits) >= 4
    for hit in assessment.hits:
        for value in hit.evidence.values():
            assert isinstance(value, int | str)
            assert not isinstance(value, bytes)
            assert h("id-1").hex() not in str(value)


def test_signals_round_trip_through_json_and_replay_the_same_hits() -> None:
    config = FraudRuleConfig(ring_identities_min=2)
    history = InMemoryFraudHistory(config)
    history.record(facts("id-2", at=NOW - timedelta(minutes=1)))
    history.add_to_blacklist(AttributeKind.PHONE, [h("phone-1")])
    application = facts(declared_gender=Gender.FEMALE)
    signals, assessment = evaluate_fraud(application, history, config)
    replayed = FraudSignals.from_dict(signals.to_dict())
    assert replayed == signals
    assert compute_fraud_assessment(application, replayed, config) == assessment


def test_application_facts_hash_the_verified_identity_with_the_vault() -> None:
    vault = PiiVault({"k": bytes(32)}, "k", b"L" * 32)
    id_number = make_resident_id("110105", BIRTH_DATE, 11, Gender.MALE)
    identity = verify_identity(
        name="李雷",
        id_number=id_number,
        phone="13800138000",
        as_of=NOW.date(),
        age_years_min=18,
        age_years_max=60,
    )
    result = compute_application_facts(
        identity, applied_at=NOW, lookup_hash=vault.lookup_hash, device_id="dev", ip_address=" "
    )
    assert result.identity_hash == vault.lookup_hash("id_number", id_number)
    assert result.attribute_hashes[AttributeKind.PHONE] == vault.lookup_hash("phone", "13800138000")
    assert AttributeKind.IP not in result.attribute_hashes
    assert (result.id_birth_date, result.id_gender) == (BIRTH_DATE, Gender.MALE)


def test_RevertWhen_facts_lack_identity_or_timezone() -> None:
    with pytest.raises(ValueError, match="identity"):
        type(facts())(
            applied_at=NOW, attribute_hashes={}, id_birth_date=BIRTH_DATE, id_gender=Gender.MALE
        )
    with pytest.raises(ValueError, match="timezone"):
        facts(at=NOW.replace(tzinfo=None))
