"""`/v1/risk/models`, activations, champion/challenger reports and decision simulations.

A risk team uploads the card `creditnet risk train` wrote, activates it for a product
(the product's policy then names it; the change is on the activation trail), runs it as
a challenger, and replays past applications under a candidate policy before anything
goes live. Answers carry ids, scores, codes, counts and amounts: never personal data.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

from node_api.http.authz import AdminDep, ExaminerDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.renderers import to_response
from node_api.http.schemas import PROBLEMS, ProductCodePath, ProductCodeStr, StrictBody
from node_api.kernel.money import Fen
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.onboarding.challenger_report import (
    ArmReport,
    MaturedRate,
    fetch_champion_challenger_report,
)
from node_api.onboarding.model_activation import activate_model
from node_api.onboarding.offers import fetch_newest_product_version
from node_api.onboarding.policies import OnboardingPolicy
from node_api.onboarding.simulation import (
    SIMULATION_APPLICATIONS_MAX,
    fetch_candidate_policy,
    simulate_policy,
)
from node_api.risk.card import CardMetrics
from node_api.risk.model_registry import (
    ModelActivation,
    RegisteredModel,
    fetch_model,
    list_activations,
    list_models,
    parse_uploaded_card,
    register_model,
)

router = APIRouter(tags=["risk"])

ModelVersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="model version")]
LabelStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
FingerprintStr = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class ModelIn(StrictBody):
    """A trained card to register, as `creditnet risk train --out` writes it."""

    card: dict[str, JsonValue]
    """The card's JSON object; its `model_id` must match its content."""
    label: LabelStr = "model"
    """A name for people (`german-2025q2`); the version is what policies name."""
    data_sha256: FingerprintStr | None = None
    """The training data's SHA-256 (`sha256:<hex>`), if the card does not carry it."""


class ModelMetricsOut(CardMetrics):
    """Cross-validated training metrics (means over folds)."""

    # The card's metrics, published as they are; refusing unknown keys is for reading a
    # card, not for a response (the schema states no `additionalProperties`).
    model_config = ConfigDict(extra="ignore")


class ModelOut(BaseModel):
    version: int
    model_id: str
    label: str
    characteristics: list[str]
    metrics: ModelMetricsOut
    data_fingerprint: str = Field(description="SHA-256 of the training data, or of the card.")
    fingerprint_source: str = Field(description="`data` or `card`: what was fingerprinted.")
    registered_by: str = Field(description="The API key id (or `cli`) that registered it.")
    registered_at: str


class ModelRegisteredOut(ModelOut):
    created: bool = Field(description="False when this card was registered before.")


class ModelListOut(BaseModel):
    models: list[ModelOut]


class ActivationIn(StrictBody):
    product_code: ProductCodeStr


class ActivationRecordOut(BaseModel):
    product_code: str
    policy_version: int
    model_version: int | None = Field(description="Null: a packaged card.")
    model_id: str
    previous_model_version: int | None
    previous_model_id: str | None
    activated_by: str
    activated_at: str


class ActivationOut(BaseModel):
    product_code: str
    policy_version: int = Field(description="The product's policy version now in force.")
    activation: ActivationRecordOut | None = Field(
        description="The change made; null when the model was already active."
    )


class ActivationListOut(BaseModel):
    activations: list[ActivationRecordOut]


class ArmSliceOut(BaseModel):
    applications: int
    approved: int
    approval_rate_bps: int | None
    score_deciles: list[int] = Field(
        description="Scores at the 0th, 10th, ..., 100th percentile (nearest rank)."
    )


class MaturedRateOut(BaseModel):
    matured: int = Field(description="Lines whose outcome is known.")
    events: int
    rate_bps: int | None


class ArmOut(BaseModel):
    arm: str
    model_ids: list[str]
    decided: ArmSliceOut = Field(description="The applications this arm decided.")
    scored: ArmSliceOut = Field(description="Every application it scored, shadow included.")
    lines_opened: int
    first_payment_default: MaturedRateOut
    m1_plus_at_3_months: MaturedRateOut


class ChampionChallengerOut(BaseModel):
    product_code: str
    as_of: date
    experiments: list[str]
    arms: list[ArmOut]


class SimulationIn(StrictBody):
    """A candidate policy (a document, or a stored version of the product's) and the
    business dates whose applications to replay, both ends included."""

    product_code: ProductCodeStr
    from_date: date
    to_date: date
    policy: OnboardingPolicy | None = None
    policy_version: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @model_validator(mode="after")
    def _check_candidate(self) -> SimulationIn:
        if (self.policy is None) == (self.policy_version is None):
            raise ValueError("give exactly one of policy and policy_version")
        return self


class SwapCellOut(BaseModel):
    applications: int
    old_limit_total_fen: Fen
    new_limit_total_fen: Fen
    old_expected_bad_rate_bps: int | None
    new_expected_bad_rate_bps: int | None


class SideOut(BaseModel):
    applications: int
    approved: int
    review: int
    declined: int
    approval_rate_bps: int | None
    expected_bad_rate_bps: int | None = Field(
        description="Mean probability of going bad of the approved, from their scores."
    )
    approved_limit_total_fen: Fen


class SimulationOut(BaseModel):
    product_code: str
    from_date: date
    to_date: date
    candidate_model_id: str
    applications: int
    skipped_existing_customers: int
    swap_set: dict[str, SwapCellOut] = Field(
        description="approved_by_both, approved_by_old_only, approved_by_new_only, "
        "approved_by_neither."
    )
    old: SideOut = Field(description="The stored decisions.")
    new: SideOut = Field(description="The candidate's decisions.")


def model_view(model: RegisteredModel) -> ModelOut:
    return ModelOut(
        version=model.version,
        model_id=model.model_id,
        label=model.label,
        characteristics=list(model.characteristics),
        metrics=ModelMetricsOut.model_validate(model.metrics.model_dump()),
        data_fingerprint=model.data_fingerprint,
        fingerprint_source=model.fingerprint_source.value,
        registered_by=model.registered_by,
        registered_at=model.registered_at.isoformat(),
    )


def activation_view(activation: ModelActivation) -> ActivationRecordOut:
    return ActivationRecordOut(
        product_code=activation.product_code,
        policy_version=activation.policy_version,
        model_version=activation.model_version,
        model_id=activation.model_id,
        previous_model_version=activation.previous_model_version,
        previous_model_id=activation.previous_model_id,
        activated_by=activation.activated_by,
        activated_at=activation.activated_at.isoformat(),
    )


@router.post(
    "/v1/risk/models",
    name="risk_models_register",
    response_model=ModelRegisteredOut,
    responses=PROBLEMS,
)
def post_model(body: ModelIn, who: AdminDep, once: OnceDep) -> Response:
    """Register a trained card: checked against the card format, stored for good under
    the next version with its training metrics and data fingerprint. The same card
    again answers the version it has."""
    registered_at = datetime.now(UTC)

    def operation(_caches: object) -> ModelRegisteredOut:
        card = parse_uploaded_card(json.dumps(body.card))
        model, created = register_model(
            once.session.connection(),
            card,
            label=body.label,
            data_fingerprint=body.data_sha256,
            registered_by=who.key_id,
            registered_at=registered_at,
        )
        return ModelRegisteredOut(**model_view(model).model_dump(), created=created)

    return once.run(who, body, 200, operation)


@router.get("/v1/risk/models", name="risk_models_list", response_model=ModelListOut)
def get_models(session: SessionDep, who: ExaminerDep) -> ModelListOut:
    """Every registered model, oldest version first."""
    return ModelListOut(models=[model_view(m) for m in list_models(session.connection())])


@router.get(
    "/v1/risk/models/{version}",
    name="risk_models_get",
    response_model=ModelOut,
    responses=PROBLEMS,
)
def get_model(version: ModelVersionPath, session: SessionDep, who: ExaminerDep) -> ModelOut:
    """One registered model: its metrics, characteristics and data fingerprint."""
    return model_view(fetch_model(session.connection(), version))


@router.post(
    "/v1/risk/models/{version}/activations",
    name="risk_models_activate",
    response_model=ActivationOut,
    responses=PROBLEMS,
)
def post_activation(
    version: ModelVersionPath, body: ActivationIn, who: AdminDep, once: OnceDep
) -> Response:
    """Make a registered model the one a product's applications are scored by: the
    product's policy is published again naming it, and the change (who, when, which
    version, which one before) joins the activation trail."""
    context = once.services.onboarding.current()
    activated_at = datetime.now(UTC)

    def operation() -> ActivationOut:
        conn = once.session.connection()
        fetch_newest_product_version(conn, body.product_code)
        published = activate_model(
            conn, body.product_code, version, who=who.key_id, at=activated_at, context=context
        )
        activation = published.activation
        return ActivationOut(
            product_code=body.product_code,
            policy_version=published.version,
            activation=None if activation is None else activation_view(activation),
        )

    stored = once.stored(who, body, 200, operation)
    context.offers.forget(body.product_code)
    return to_response(stored)


@router.get(
    "/v1/risk/activations",
    name="risk_activations_list",
    response_model=ActivationListOut,
    responses=PROBLEMS,
)
def get_activations(
    session: SessionDep,
    who: ExaminerDep,
    product_code: Annotated[ProductCodeStr | None, Query()] = None,
) -> ActivationListOut:
    """The activation trail, oldest first: every change of the model a product decides
    with (of one product, if given)."""
    codes = None if product_code is None else [product_code]
    return ActivationListOut(
        activations=[activation_view(a) for a in list_activations(session.connection(), codes)]
    )


def _rate(rate: MaturedRate) -> MaturedRateOut:
    return MaturedRateOut(matured=rate.matured, events=rate.events, rate_bps=rate.rate_bps)


def _arm(report: ArmReport) -> ArmOut:
    return ArmOut(
        arm=report.arm.value,
        model_ids=report.model_ids,
        decided=ArmSliceOut.model_validate(report.decided, from_attributes=True),
        scored=ArmSliceOut.model_validate(report.scored, from_attributes=True),
        lines_opened=report.lines_opened,
        first_payment_default=_rate(report.first_payment_default),
        m1_plus_at_3_months=_rate(report.m1_plus_at_3_months),
    )


@router.get(
    "/v1/risk/champion-challenger/{product_code}",
    name="risk_champion_challenger",
    response_model=ChampionChallengerOut,
    responses=PROBLEMS,
)
def get_champion_challenger(
    product_code: ProductCodePath,
    session: SessionDep,
    who: ExaminerDep,
    experiment: Annotated[str | None, Query(max_length=64)] = None,
    from_date: date | None = None,
    to_date: date | None = None,
) -> ChampionChallengerOut:
    """Champion and challenger side by side: applications, approval rate and score
    deciles of what each arm decided and of everything it scored, and early delinquency
    (first payment default, M1+ at 3 months) of the lines its decisions opened, as the
    outcomes mature."""
    conn = session.connection()
    fetch_newest_product_version(conn, product_code)
    report = fetch_champion_challenger_report(
        conn,
        product_code,
        as_of=resolve_as_of(None, fetch_business_date(conn)),
        experiment=experiment,
        from_date=from_date,
        to_date=to_date,
    )
    return ChampionChallengerOut(
        product_code=report.product_code,
        as_of=report.as_of,
        experiments=report.experiments,
        arms=[_arm(arm) for arm in report.arms],
    )


@router.post(
    "/v1/risk/simulations",
    name="risk_simulations_run",
    response_model=SimulationOut,
    responses=PROBLEMS,
)
def post_simulation(body: SimulationIn, who: ExaminerDep, once: OnceDep) -> Response:
    """Replay the product's past applications under a candidate policy: the swap set,
    approval rates, expected bad rates and limit totals of the stored decisions and the
    candidate's. Changes nothing; a retry with the key answers the first result."""
    context = once.services.onboarding.current()

    def operation() -> SimulationOut:
        conn = once.session.connection()
        fetch_newest_product_version(conn, body.product_code)
        report = simulate_policy(
            conn,
            body.product_code,
            fetch_candidate_policy(
                conn, body.product_code, body.policy, body.policy_version, context
            ),
            from_date=body.from_date,
            to_date=body.to_date,
            context=context,
            applications_max=SIMULATION_APPLICATIONS_MAX,
        )
        return SimulationOut.model_validate(report.to_dict())

    return to_response(once.stored(who, body, 200, operation))
