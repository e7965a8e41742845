"""An application's inputs, and their preparation: every check that needs no write.

`prepare_application` refuses bad input (unknown product, ineligible channel, a
failed identity check, unknown or mistyped characteristics) with a
`CreditNetValueError` naming the field, before anything is stored. What it returns
holds plaintext PII only inside `inputs` and `identity`; the decision works on
hashes (`facts`) and the score.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypedDict

from sqlalchemy.engine import Connection

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from node_api.lending.products import ProductTerms
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.identity import VerifiedIdentity, verify_identity
from node_api.onboarding.liveness import (
    LivenessTrust,
    LivenessVerdict,
    SignedLivenessResult,
    verify_liveness,
)
from node_api.onboarding.pii import LookupKind
from node_api.onboarding.policies import OnboardingPolicy
from node_api.risk.fraud_config import AttributeKind
from node_api.risk.fraud_facts import ApplicationFacts, Gender
from node_api.risk.scorecard import Scorecard, ScoreResult, assign_bin

RawValue = str | int | float | None


class ApplicationInputJson(TypedDict):
    """`ApplicationInput.to_json`: the plaintext of the application's vault envelope."""

    product_code: str
    name: str
    id_number: str
    phone: str
    monthly_income_fen: Fen
    device_id: str
    ip_address: str
    channel_id: str
    characteristics: dict[str, RawValue]
    declared_birth_date: str | None
    declared_gender: str | None


_LOOKUP_KINDS = {
    AttributeKind.ID: LookupKind.ID_NUMBER,
    AttributeKind.PHONE: LookupKind.PHONE,
    AttributeKind.DEVICE: LookupKind.DEVICE,
    AttributeKind.IP: LookupKind.IP,
}


@dataclass(frozen=True, slots=True)
class ApplicationInput:
    """What an applicant submitted. Personal data: encrypt before storing, never log."""

    product_code: str
    name: str
    id_number: str
    phone: str
    monthly_income_fen: int
    device_id: str
    ip_address: str
    channel_id: str
    characteristics: Mapping[str, RawValue]
    declared_birth_date: date | None = None
    declared_gender: Gender | None = None

    def to_json(self) -> str:
        """The plaintext that the vault encrypts (dates ISO, gender by value)."""
        birth = self.declared_birth_date
        gender = self.declared_gender
        data: ApplicationInputJson = {
            "product_code": self.product_code,
            "name": self.name,
            "id_number": self.id_number,
            "phone": self.phone,
            "monthly_income_fen": Fen(self.monthly_income_fen),
            "device_id": self.device_id,
            "ip_address": self.ip_address,
            "channel_id": self.channel_id,
            "characteristics": dict(self.characteristics),
            "declared_birth_date": None if birth is None else birth.isoformat(),
            "declared_gender": None if gender is None else gender.value,
        }
        return json.dumps(data, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ApplicationInput:
        data: ApplicationInputJson = json.loads(text)
        birth = data["declared_birth_date"]
        gender = data["declared_gender"]
        return cls(
            product_code=data["product_code"],
            name=data["name"],
            id_number=data["id_number"],
            phone=data["phone"],
            monthly_income_fen=data["monthly_income_fen"],
            device_id=data["device_id"],
            ip_address=data["ip_address"],
            channel_id=data["channel_id"],
            characteristics=data["characteristics"],
            declared_birth_date=None if birth is None else date.fromisoformat(birth),
            declared_gender=None if gender is None else Gender(gender),
        )


@dataclass(frozen=True, slots=True)
class PreparedApplication:
    inputs: ApplicationInput
    identity: VerifiedIdentity
    terms: ProductTerms
    policy_version: int
    policy: OnboardingPolicy
    card: Scorecard
    score: ScoreResult
    facts: ApplicationFacts
    as_of: date
    """The business date the application is decided on (age, line opening)."""
    liveness: LivenessVerdict | None = None
    """The verified liveness result, if the application carried one."""
    liveness_result_sha256: str | None = None


def score_characteristics(card: Scorecard, characteristics: Mapping[str, RawValue]) -> ScoreResult:
    """Score raw values; unknown names and bad types are refused naming the characteristic."""
    known = {characteristic.name for characteristic in card.card.characteristics}
    for name in sorted(characteristics):
        if name not in known:
            raise CreditNetValueError(
                "the product's scorecard has no such characteristic",
                field=f"characteristics.{name}",
                code="unknown_characteristic",
            )
    try:
        return card.score(characteristics)
    except CreditNetValueError as error:
        raise CreditNetValueError(
            error.detail, field=f"characteristics.{error.field}", code=error.code
        ) from None


def score_leniently(card: Scorecard, characteristics: Mapping[str, RawValue]) -> ScoreResult:
    """Score with what the card can read: names it lacks and values it cannot parse count
    as missing. For a card scoring inputs written for another one (a challenger arm, a
    simulation); equal to `score_characteristics` wherever that one accepts the inputs."""
    readable: dict[str, RawValue] = {}
    for characteristic in card.card.characteristics:
        raw = characteristics.get(characteristic.name)
        try:
            assign_bin(characteristic, raw)
        except CreditNetValueError:
            raw = None
        readable[characteristic.name] = raw
    return card.score(readable)


def compute_application_facts(
    identity: VerifiedIdentity,
    *,
    applied_at: datetime,
    lookup_hash: Callable[[LookupKind, str], bytes],
    device_id: str | None = None,
    ip_address: str | None = None,
    declared_birth_date: date | None = None,
    declared_gender: Gender | None = None,
) -> ApplicationFacts:
    """Hash the identifying attributes of an application (`lookup_hash` is the vault's)."""
    raw_values = {
        AttributeKind.ID: identity.resident_id.number,
        AttributeKind.PHONE: identity.mobile_e164,
        AttributeKind.DEVICE: device_id,
        AttributeKind.IP: ip_address,
    }
    hashes = {
        kind: lookup_hash(_LOOKUP_KINDS[kind], value)
        for kind, value in raw_values.items()
        if value is not None and value.strip()
    }
    return ApplicationFacts(
        applied_at=applied_at,
        attribute_hashes=hashes,
        id_birth_date=identity.resident_id.birth_date,
        id_gender=identity.resident_id.gender,
        declared_birth_date=declared_birth_date,
        declared_gender=declared_gender,
    )


def compute_facts(
    inputs: ApplicationInput,
    identity: VerifiedIdentity,
    applied_at: datetime,
    context: OnboardingContext,
) -> ApplicationFacts:
    return compute_application_facts(
        identity,
        applied_at=applied_at,
        lookup_hash=context.vault.lookup_hash,
        device_id=inputs.device_id,
        ip_address=inputs.ip_address,
        declared_birth_date=inputs.declared_birth_date,
        declared_gender=inputs.declared_gender,
    )


def prepare_application(
    conn: Connection,
    inputs: ApplicationInput,
    *,
    as_of: date,
    applied_at: datetime,
    context: OnboardingContext,
    liveness: SignedLivenessResult | None = None,
    liveness_trust: LivenessTrust | None = None,
) -> PreparedApplication:
    """Check everything about the input; first failure wins, in request field order.

    A liveness result is verified whenever one is sent (signature, provider, subject);
    a policy with a liveness rule refuses an application without one."""
    offer = context.offers.fetch(conn, inputs.product_code)
    terms, policy_version, policy = offer.terms, offer.policy_version, offer.policy
    if inputs.channel_id not in terms.eligible_channels:
        raise CreditNetValueError(
            "the channel is not eligible for this product",
            field="channel_id",
            code="channel_not_eligible",
        )
    identity = verify_identity(
        name=inputs.name,
        id_number=inputs.id_number,
        phone=inputs.phone,
        as_of=as_of,
        age_years_min=policy.age_years_min,
        age_years_max=policy.age_years_max,
    )
    card = context.cards.get_for_policy(conn, policy)
    score = score_characteristics(card, inputs.characteristics)
    verdict = _verify_liveness(inputs, policy, liveness, liveness_trust)
    facts = compute_facts(inputs, identity, applied_at, context)
    return PreparedApplication(
        inputs,
        identity,
        terms,
        policy_version,
        policy,
        card,
        score,
        facts,
        as_of,
        verdict,
        None if liveness is None else liveness.result.compute_sha256(),
    )


def _verify_liveness(
    inputs: ApplicationInput,
    policy: OnboardingPolicy,
    liveness: SignedLivenessResult | None,
    trust: LivenessTrust | None,
) -> LivenessVerdict | None:
    if liveness is None:
        if policy.liveness is not None:
            raise CreditNetValueError(
                "this product requires a liveness result (POST /v1/liveness/challenges)",
                field="liveness",
                code="liveness_required",
            )
        return None
    return verify_liveness(liveness, id_number=inputs.id_number, trust=trust or LivenessTrust({}))
