"""`/v1/liveness`: challenges for liveness and face-match checks, and the test provider.

A channel asks for a challenge (a single-use nonce that expires), has the applicant
checked by a liveness provider that signs its result over that nonce, and sends the
signed result with the application (`liveness` in `POST /v1/applications`). The node
trusts the providers in `CREDITNET_LIVENESS_PROVIDER_KEYS` and, in dev and test, its
embedded test provider, which `POST /v1/liveness/test-provider/checks` runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StrictStr

from node_api.http.authz import OperatorDep, ReaderDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import PROBLEMS, StrictBody
from node_api.http.services import ServicesDep
from node_api.kernel.errors import NotFoundError
from node_api.onboarding.liveness import (
    SignedLivenessResult,
    encode_public_key,
    issue_challenge,
)
from node_api.onboarding.liveness_provider import (
    EmbeddedLivenessProvider,
    LivenessOutcome,
    LivenessProvider,
    is_test_provider_trusted,
    trust_from_settings,
)

router = APIRouter(tags=["applications"])


class LivenessChallengeOut(BaseModel):
    nonce: str = Field(description="128 random bits (hex): the provider signs over it.")
    expires_at: str = Field(description="UTC; an application must use it before then.")


class LivenessResultIn(StrictBody):
    """A provider's result, exactly as it signed it."""

    format: StrictStr = "creditnet.liveness.v1"
    provider_id: StrictStr = Field(max_length=64)
    nonce: StrictStr = Field(max_length=64)
    subject_hash: StrictStr = Field(
        max_length=64,
        description="SHA-256 (hex) of `creditnet.liveness.subject:<nonce>:<id_number>`.",
    )
    live: bool
    face_match_bps: int = Field(strict=True, ge=0, le=10_000)


class SignedLivenessIn(StrictBody):
    """A signed liveness result: `signature` is the provider's Ed25519 signature (base64)
    over the result's canonical JSON (sorted keys, no spaces)."""

    result: LivenessResultIn
    signature: StrictStr = Field(max_length=128)


class TestCheckIn(StrictBody):
    nonce: StrictStr = Field(pattern=r"^[0-9a-f]{32}$")
    id_number: StrictStr = Field(min_length=1, max_length=32)
    outcome: LivenessOutcome = LivenessOutcome.PASS
    """What the test provider reports: `pass`, `not_live` or `face_mismatch`."""


class ProviderOut(BaseModel):
    provider_id: str
    public_key: str = Field(description="Ed25519 public key, base64 of its 32 bytes.")


class ProvidersOut(BaseModel):
    providers: list[ProviderOut]


def signed_result_out(signed: SignedLivenessResult) -> SignedLivenessIn:
    return SignedLivenessIn(
        result=LivenessResultIn.model_validate(signed.result.model_dump(mode="json")),
        signature=signed.signature,
    )


@router.post(
    "/v1/liveness/challenges",
    name="liveness_challenges_create",
    status_code=201,
    response_model=LivenessChallengeOut,
    responses=PROBLEMS,
)
def post_challenge(who: OperatorDep, once: OnceDep) -> Response:
    """A single-use nonce for one applicant's liveness check, valid for
    `CREDITNET_LIVENESS_CHALLENGE_TTL_S` seconds."""
    issued_at = datetime.now(UTC)
    ttl_s = once.services.settings.liveness_challenge_ttl_s

    def operation(_caches: object) -> LivenessChallengeOut:
        challenge = issue_challenge(once.session.connection(), issued_at=issued_at, ttl_s=ttl_s)
        return LivenessChallengeOut(
            nonce=challenge.nonce, expires_at=challenge.expires_at.isoformat()
        )

    return once.run(who, None, 201, operation)


@router.post(
    "/v1/liveness/test-provider/checks",
    name="liveness_test_provider_check",
    response_model=SignedLivenessIn,
    responses=PROBLEMS,
)
def post_test_check(body: TestCheckIn, who: OperatorDep, once: OnceDep) -> Response:
    """The embedded test provider (dev and test nodes only): signs the outcome it is
    asked for over the nonce and the applicant's identity number. Only the signed
    result is kept, as the key's stored response."""
    if not is_test_provider_trusted(once.services.settings):
        raise NotFoundError("the embedded test provider runs on dev and test nodes only")

    def operation(_caches: object) -> SignedLivenessIn:
        provider: LivenessProvider = EmbeddedLivenessProvider(body.outcome)
        return signed_result_out(provider.check(nonce=body.nonce, id_number=body.id_number))

    return once.run(who, body, 200, operation)


@router.get(
    "/v1/liveness/providers",
    name="liveness_providers_list",
    response_model=ProvidersOut,
    responses=PROBLEMS,
)
def get_providers(who: ReaderDep, services: ServicesDep) -> ProvidersOut:
    """The liveness providers whose signed results this node accepts."""
    trust = trust_from_settings(services.settings)
    return ProvidersOut(
        providers=[
            ProviderOut(provider_id=provider_id, public_key=encode_public_key(key))
            for provider_id, key in sorted(trust.keys.items())
        ]
    )
