"""`/v1/applications`: apply for credit, read a stored decision, replay it, review it.

Every POST needs an `Idempotency-Key` header; a replay returns the first response.
No response and no log line carries personal data: ids, codes, scores and amounts only.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr, StringConstraints
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.auth.keys import Role
from node_api.http.authz import AdminDep, ExaminerDep, OperatorDep
from node_api.http.cards import characteristics_schema
from node_api.http.deps import SessionDep
from node_api.http.idempotency import (
    IdempotencyKey,
    OnceDep,
    request_claim,
    run_once_committed,
)
from node_api.http.renderers import JsonRenderer, to_response
from node_api.http.routes.risk_liveness import SignedLivenessIn
from node_api.http.schemas import (
    AMOUNT_FEN_MAX,
    PROBLEMS,
    IdentifierStr,
    ProductCodeStr,
    StrictBody,
)
from node_api.http.services import Services, ServicesDep, services_of
from node_api.idempotency import IDEMPOTENCY_HEADER, KeyClaim, ResponseAlong, StoredResponse
from node_api.kernel.money import Fen
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.ledger.schema import business_date_table
from node_api.ledger.sql import Row
from node_api.onboarding.application_input import ApplicationInput
from node_api.onboarding.application_store import application_view, fetch_application_row
from node_api.onboarding.applications import ApplicationAnswer, decide_application
from node_api.onboarding.liveness import SignedLivenessResult, parse_signed_result
from node_api.onboarding.liveness_provider import trust_from_settings
from node_api.onboarding.replay import replay_application
from node_api.onboarding.reviews import ReviewAction, review_application
from node_api.risk.fraud_facts import Gender

router = APIRouter(tags=["applications"])
log = logging.getLogger("creditnet.onboarding")

ApplicationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="application id")]
ReasonCodeStr = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
JSON_EXACT_INT_MAX = 2**53
RawValue = (
    Annotated[StrictStr, StringConstraints(max_length=256)]
    | Annotated[StrictInt, Field(ge=-JSON_EXACT_INT_MAX, le=JSON_EXACT_INT_MAX)]
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | None
)


class ApplicationIn(StrictBody):
    """An application. `characteristics` are raw values keyed by the product card's names."""

    product_code: ProductCodeStr
    name: StrictStr = Field(min_length=1, max_length=128)
    id_number: StrictStr = Field(min_length=1, max_length=32)
    phone: StrictStr = Field(min_length=1, max_length=32)
    birth_date: date | None = None
    """Declared birth date, checked against the identity number (a fraud signal)."""
    gender: Gender | None = None
    monthly_income_fen: Fen = Field(strict=True, ge=0, le=AMOUNT_FEN_MAX)
    device_id: StrictStr = Field(min_length=1, max_length=128)
    ip: StrictStr = Field(min_length=1, max_length=64)
    channel_id: IdentifierStr
    characteristics: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=128)], RawValue
    ] = Field(default_factory=dict, max_length=200, json_schema_extra=characteristics_schema())
    liveness: SignedLivenessIn | None = None
    """A liveness provider's signed result over a nonce from `POST /v1/liveness/challenges`;
    required when the product's policy has a liveness rule, verified whenever sent."""

    def to_input(self) -> ApplicationInput:
        return ApplicationInput(
            product_code=self.product_code,
            name=self.name,
            id_number=self.id_number,
            phone=self.phone,
            monthly_income_fen=self.monthly_income_fen,
            device_id=self.device_id,
            ip_address=self.ip,
            channel_id=self.channel_id,
            characteristics=self.characteristics,
            declared_birth_date=self.birth_date,
            declared_gender=self.gender,
        )

    def to_liveness(self) -> SignedLivenessResult | None:
        if self.liveness is None:
            return None
        return parse_signed_result(
            self.liveness.result.model_dump(mode="json"), self.liveness.signature
        )


class ScoreReasonOut(BaseModel):
    code: str
    characteristic: str
    text: str
    points_lost: float


class FraudHitOut(BaseModel):
    code: str
    severity: str
    evidence: dict[str, int | str]


DecisionStr = Literal["approved", "declined", "review"]


class ApplicationOut(BaseModel):
    application_id: str
    decision: DecisionStr
    reason_codes: list[str]
    score: int
    model_id: str
    score_reasons: list[ScoreReasonOut]
    fraud_hits: list[FraudHitOut]
    limits: dict[str, int] = Field(
        description="Limit per level of the line in fen, keyed by path (`total`, "
        "`total/purchase`, ...)."
    )
    credit_line_id: int | None
    agreement_id: str | None = Field(
        description="The credit agreement anchored on-chain for the line (0x-hex): "
        "`GET /v1/agreements/{agreement_id}` shows its anchoring."
    )
    existing_customer: bool
    product_code: str
    product_version: int


class ReviewOut(BaseModel):
    action: str
    reason_code: str
    reviewer_key_id: str
    reviewed_at: str


class ScoreDetailOut(BaseModel):
    score_exact: float
    score_band: int
    bin_indices: dict[str, int]
    missing: list[str]
    reasons: list[ScoreReasonOut]


class FraudSignalsOut(BaseModel):
    """What the fraud rules read from history (all null for an application answered
    from the customer's existing line: no rules ran)."""

    prior_applications: dict[str, int] | None = None
    other_identities: dict[str, int] | None = None
    blacklisted: list[str] | None = None
    ring_identities: int | None = None


class ApplicationDetailOut(BaseModel):
    """A stored decision. `score_detail`, `fraud_signals` and `fraud_hits` are for the
    lender's examiners: null for a lender_app key."""

    application_id: str
    customer_id: str
    status: DecisionStr
    decision: DecisionStr
    reason_codes: list[str]
    score: int
    model_id: str
    score_detail: ScoreDetailOut | None
    fraud_signals: FraudSignalsOut | None
    fraud_hits: list[FraudHitOut] | None
    limits: dict[str, int] = Field(description="Limit per level of the line in fen, by path.")
    existing_customer: bool
    credit_line_id: int | None
    agreement_id: str | None
    product_code: str
    product_version: int
    policy_version: int
    channel_id: str
    applied_at: str
    business_date: str
    review: ReviewOut | None


class ReplaySideOut(BaseModel):
    """One side of a replay; the decision's fields are null for an application answered
    from the customer's existing line (only its score is replayed)."""

    model_id: str
    score: int
    decision: DecisionStr | None = None
    reason_codes: list[str] | None = None
    fraud_hits: list[FraudHitOut] | None = None
    limits: dict[str, int] | None = Field(default=None, description="Limits in fen, by path.")


class ReplayOut(BaseModel):
    matches: bool
    stored: ReplaySideOut
    replayed: ReplaySideOut


class ReviewIn(StrictBody):
    action: ReviewAction
    reason_code: ReasonCodeStr
    """Why, as a code (`INCOME_VERIFIED`); free text could carry personal data."""


_BUSINESS_DATE = (
    select(business_date_table.c.as_of).where(business_date_table.c.id == 1).scalar_subquery()
)
"""The business date, as `fetch_business_date` reads it: the decision reads it along with
its idempotency claim (one statement on PostgreSQL)."""


def server_timing(phases_ms: dict[str, float]) -> str:
    """The Server-Timing header of a decision: milliseconds per phase."""
    return ", ".join(f"{phase};dur={ms:.2f}" for phase, ms in phases_ms.items())


def decide_once(
    services: Services, claim: KeyClaim, body: ApplicationIn
) -> tuple[StoredResponse, dict[str, float]]:
    """Decide an application once per idempotency key and commit (sync: run it in a
    worker thread); the stored (or fresh) response and the milliseconds per phase.
    The route and its fast lane (`routes.application_lane`) both answer with it."""
    context = services.onboarding.current()
    applied_at = datetime.now(UTC)
    phases_ms: dict[str, float] = {}

    def operation(
        conn: Connection, business_date: date | None, along: ResponseAlong[Any] | None
    ) -> ApplicationOut:
        as_of = resolve_as_of(None, business_date)
        rendered: list[ApplicationOut] = []

        def respond(answer: ApplicationAnswer) -> list[Row]:
            assert along is not None
            rendered.append(ApplicationOut.model_validate(answer, from_attributes=True))
            return along.rows(rendered[0])

        outcome = decide_application(
            conn,
            body.to_input(),
            as_of=as_of,
            applied_at=applied_at,
            context=context,
            liveness=body.to_liveness(),
            liveness_trust=trust_from_settings(services.settings),
            respond=None if along is None else respond,
        )
        phases_ms.update(outcome.timer.phases_ms)
        log.info(
            "application decided",
            extra={
                "application_id": outcome.stored.id,
                "decision": outcome.stored.decision.value,
                "duration_ms": round(sum(outcome.timer.phases_ms.values()), 2),
            },
        )
        if rendered:
            return rendered[0]
        return ApplicationOut.model_validate(outcome.answer(), from_attributes=True)

    stored = run_once_committed(
        services.database,
        claim,
        operation,
        JsonRenderer(201),
        phases_ms=phases_ms,
        read_along=_BUSINESS_DATE,
    )
    return stored, phases_ms


@router.post(
    "/v1/applications",
    name="applications_create",
    status_code=201,
    response_model=ApplicationOut,
    responses=PROBLEMS,
    summary=f"Apply for a credit line (requires {IDEMPOTENCY_HEADER})",
)
def post_application(
    body: ApplicationIn, request: Request, who: OperatorDep, key: IdempotencyKey
) -> Response:
    """Identity, dedupe, fraud rules, score, policy, limits; opens the line and queues
    its agreement for the chain when approved.

    `characteristics` carries the scorecard's inputs (see its schema, or
    `GET /v1/risk/cards/active`); each one missing counts towards the review threshold.
    """
    # No `SessionDep`/`SettingsDep` here: each sync dependency costs a threadpool round
    # trip on this hot route. A cached caller with a valid body is served by the fast
    # lane (`routes.application_lane`) before it gets here, with the same `decide_once`.
    claim = request_claim(request, who, key, body)
    stored, phases_ms = decide_once(services_of(request.app), claim, body)
    response = to_response(stored)
    response.headers["Server-Timing"] = server_timing(phases_ms)
    return response


@router.get(
    "/v1/applications/{application_id}",
    name="applications_get",
    response_model=ApplicationDetailOut,
    responses=PROBLEMS,
)
def get_application(
    application_id: ApplicationId, session: SessionDep, who: OperatorDep
) -> ApplicationDetailOut:
    """A stored decision without personal data: status, reasons, limits, the credit line
    and the agreement id. Admins also see what explains it (score detail, fraud signals
    and hits); for lender_app keys those are null."""
    view = application_view(fetch_application_row(session.connection(), application_id))
    detail = ApplicationDetailOut.model_validate(view, from_attributes=True)
    if who.role is Role.LENDER_APP:
        return detail.model_copy(
            update={"score_detail": None, "fraud_signals": None, "fraud_hits": None}
        )
    return detail


@router.get(
    "/v1/applications/{application_id}/replay",
    name="applications_replay",
    response_model=ReplayOut,
    responses=PROBLEMS,
)
def get_application_replay(
    application_id: ApplicationId,
    session: SessionDep,
    services: ServicesDep,
    who: ExaminerDep,
) -> ReplayOut:
    """The stored decision next to the one recomputed from storage; `matches` if equal."""
    replay = replay_application(session.connection(), application_id, services.onboarding.current())
    return ReplayOut(
        matches=replay.matches,
        stored=ReplaySideOut.model_validate(replay.stored.to_dict()),
        replayed=ReplaySideOut.model_validate(replay.replayed.to_dict()),
    )


@router.post(
    "/v1/applications/{application_id}/review",
    name="applications_review",
    response_model=ApplicationDetailOut,
    responses=PROBLEMS,
    summary=f"Approve or decline an application in review (requires {IDEMPOTENCY_HEADER})",
)
def post_review(
    application_id: ApplicationId, body: ReviewIn, who: AdminDep, once: OnceDep
) -> Response:
    """A manual decision; approving opens the line and enqueues its agreement."""
    context = once.services.onboarding.current()
    reviewed_at = datetime.now(UTC)

    def operation(_caches: object) -> ApplicationDetailOut:
        conn = once.session.connection()
        view = review_application(
            conn,
            application_id,
            action=body.action,
            reason_code=body.reason_code,
            reviewer_key_id=who.key_id,
            as_of=resolve_as_of(None, fetch_business_date(conn)),
            reviewed_at=reviewed_at,
            context=context,
        )
        log.info("application reviewed", extra={"application_id": application_id})
        return ApplicationDetailOut.model_validate(view, from_attributes=True)

    return once.run(who, body, 200, operation)
