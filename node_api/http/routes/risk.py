"""`/v1/risk`: population stability of live applications, per-product onboarding
policies, and the hashed blacklist (registered models: `routes/risk_models.py`).

Blacklisted values arrive in plaintext, are hashed with the vault's lookup key at
once and are never stored, echoed or logged as they came.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, StrictStr, StringConstraints
from sqlalchemy.engine import Connection

from node_api.http.authz import AdminDep, ExaminerDep, ReaderDep
from node_api.http.cards import ActiveCardOut, card_view
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.renderers import to_response
from node_api.http.schemas import PROBLEMS, ProductCodePath, ProductCodeStr, StrictBody
from node_api.http.services import ServicesDep
from node_api.kernel.config import Settings
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.fraud_history_sql import add_to_blacklist
from node_api.onboarding.model_activation import publish_policy
from node_api.onboarding.offers import fetch_newest_product_version
from node_api.onboarding.pii import LookupKind
from node_api.onboarding.policies import (
    DEFAULT_POLICY,
    OnboardingPolicy,
    fetch_current_policy,
    fetch_newest_policy,
)
from node_api.onboarding.scorecards import PACKAGED_CARDS
from node_api.onboarding.stability import WEEKS_DEFAULT, fetch_product_stability
from node_api.risk.fraud_config import AttributeKind
from node_api.risk.live_monitoring import fetch_live_model_ids, fetch_stability_report
from node_api.risk.model_registry import fetch_model_version_of
from node_api.risk.monitoring import PsiResult, StabilityThresholds
from node_api.risk.scorecard import Scorecard

router = APIRouter(tags=["risk"])

REGISTERED_PREFIX = "model_v"
"""How monitoring and the active card name a registered model: `model_v3`."""
CardName = Annotated[str | None, Query(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
_LOOKUP_KINDS = {
    AttributeKind.ID: LookupKind.ID_NUMBER,
    AttributeKind.PHONE: LookupKind.PHONE,
    AttributeKind.DEVICE: LookupKind.DEVICE,
    AttributeKind.IP: LookupKind.IP,
}


class PsiOut(BaseModel):
    psi: float
    band: str
    live_count: int


class CardStabilityOut(BaseModel):
    card: str
    model_id: str
    total: PsiOut
    characteristics: dict[str, PsiOut]


class MonitoringOut(BaseModel):
    cards: list[CardStabilityOut]


class PolicyOut(BaseModel):
    product_code: str
    version: int
    policy: OnboardingPolicy


class BlacklistIn(StrictBody):
    kind: AttributeKind
    values: list[Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=1_000
    )
    reason_code: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]


class BlacklistOut(BaseModel):
    kind: str
    submitted: int
    added: int


def _psi(result: PsiResult) -> PsiOut:
    return PsiOut(psi=round(result.psi, 6), band=result.band.value, live_count=result.live_count)


def _card_report(conn: Connection, name: str, card: Scorecard) -> CardStabilityOut:
    report = fetch_stability_report(conn, card.card)
    return CardStabilityOut(
        card=name,
        model_id=report.model_id,
        total=_psi(report.total),
        characteristics={key: _psi(psi) for key, psi in report.characteristics.items()},
    )


@router.get(
    "/v1/risk/monitoring", name="risk_monitoring", response_model=MonitoringOut, responses=PROBLEMS
)
def get_monitoring(
    session: SessionDep,
    services: ServicesDep,
    who: ExaminerDep,
    card: CardName = None,
) -> MonitoringOut:
    """Population stability of live applications against the training data.

    PSI of live applications vs the training distribution, per characteristic and of
    the score (total), for `card` (a packaged card, or `model_v<version>` for a
    registered model) or for every card that has scored live applications."""
    context = services.onboarding.current()
    conn = session.connection()
    if card is not None:
        return MonitoringOut(cards=[_card_report(conn, card, _named_card(conn, context, card))])
    names = {loaded.model_id: name for name, loaded in _packaged_cards(context)}
    reports = []
    for model_id in sorted(fetch_live_model_ids(conn)):
        if model_id in names:
            reports.append(_card_report(conn, names[model_id], context.cards.get(names[model_id])))
            continue
        version = fetch_model_version_of(conn, model_id)
        if version is not None:
            registered = context.cards.get_registered(conn, version)
            reports.append(_card_report(conn, f"{REGISTERED_PREFIX}{version}", registered))
    return MonitoringOut(cards=reports)


class WeeklyGiniOut(BaseModel):
    week_start: str = Field(description="The Monday of the week (business dates).")
    lines: int = Field(description="Lines the product's active model opened that week.")
    matured: int = Field(description="Lines whose outcome is known.")
    bads: int
    gini: float | None = Field(description="Null until enough matured lines turned bad.")


class StabilityAlertOut(BaseModel):
    kind: str = Field(description="`psi` or `gini`.")
    subject: str = Field(description="The characteristic, `score`, or the week's Monday.")
    value: float
    threshold: float


class ProductStabilityOut(BaseModel):
    product_code: str
    as_of: str
    model_id: str
    model_version: int | None
    training_gini: float
    psi: CardStabilityOut
    weekly_gini: list[WeeklyGiniOut]
    alerts: list[StabilityAlertOut]


def get_stability_thresholds(settings: Settings) -> StabilityThresholds:
    return StabilityThresholds(
        psi_alert=settings.risk_psi_alert,
        gini_drop_alert=settings.risk_gini_drop_alert,
        gini_min_bads=settings.risk_gini_min_bads,
    )


@router.get(
    "/v1/risk/monitoring/{product_code}",
    name="risk_monitoring_product",
    response_model=ProductStabilityOut,
    responses=PROBLEMS,
)
def get_product_monitoring(
    product_code: ProductCodePath,
    session: SessionDep,
    services: ServicesDep,
    who: ExaminerDep,
    weeks: Annotated[int, Query(ge=1, le=104)] = WEEKS_DEFAULT,
) -> ProductStabilityOut:
    """Stability of the model the product decides with: PSI per characteristic and of the
    score, the weekly Gini of the lines it opened once their outcomes mature (first
    payment default, M1+ at 3 months), and the alerts the thresholds raise
    (`CREDITNET_RISK_PSI_ALERT`, `CREDITNET_RISK_GINI_DROP_ALERT`)."""
    context = services.onboarding.current()
    conn = session.connection()
    fetch_newest_product_version(conn, product_code)
    stability = fetch_product_stability(
        conn,
        product_code,
        as_of=resolve_as_of(None, fetch_business_date(conn)),
        thresholds=get_stability_thresholds(services.settings),
        context=context,
        weeks=weeks,
    )
    report = stability.psi
    return ProductStabilityOut(
        product_code=product_code,
        as_of=stability.as_of.isoformat(),
        model_id=stability.model_id,
        model_version=stability.model_version,
        training_gini=round(stability.training_gini, 6),
        psi=CardStabilityOut(
            card=product_code,
            model_id=report.model_id,
            total=_psi(report.total),
            characteristics={key: _psi(psi) for key, psi in report.characteristics.items()},
        ),
        weekly_gini=[
            WeeklyGiniOut(
                week_start=week.week_start.isoformat(),
                lines=week.lines,
                matured=week.matured,
                bads=week.bads,
                gini=None if week.gini is None else round(week.gini, 6),
            )
            for week in stability.weeks
        ],
        alerts=[
            StabilityAlertOut(
                kind=alert.kind,
                subject=alert.subject,
                value=round(alert.value, 6),
                threshold=round(alert.threshold, 6),
            )
            for alert in stability.alerts
        ],
    )


def _packaged_cards(context: OnboardingContext) -> list[tuple[str, Scorecard]]:
    return [(name, context.cards.get(name)) for name in PACKAGED_CARDS]


def _named_card(conn: Connection, context: OnboardingContext, name: str) -> Scorecard:
    """A packaged card by name, or a registered model as `model_v<version>`."""
    if name.startswith(REGISTERED_PREFIX) and name[len(REGISTERED_PREFIX) :].isdigit():
        return context.cards.get_registered(conn, int(name[len(REGISTERED_PREFIX) :]))
    return context.cards.get(name)


@router.get(
    "/v1/risk/policies/{product_code}",
    name="risk_policies_get",
    response_model=PolicyOut,
    responses=PROBLEMS,
)
def get_policy(
    product_code: ProductCodePath,
    session: SessionDep,
    services: ServicesDep,
    who: ExaminerDep,
) -> PolicyOut:
    """The onboarding policy in force for a product (the default until one is published)."""
    context = services.onboarding.current()
    conn = session.connection()
    fetch_newest_product_version(conn, product_code)
    version, policy = fetch_current_policy(conn, product_code, context.policies)
    return PolicyOut(product_code=product_code, version=version, policy=policy)


@router.post(
    "/v1/risk/policies/{product_code}",
    name="risk_policies_publish",
    response_model=PolicyOut,
    responses=PROBLEMS,
)
def post_policy(
    product_code: ProductCodePath, body: OnboardingPolicy, who: AdminDep, once: OnceDep
) -> Response:
    """Publish a product's next policy version; applications from now on use it.

    The policy names a packaged `card` or a registered `model_version`, and may run a
    `challenger`; a change of scoring model joins the activation trail."""
    context = once.services.onboarding.current()
    published_at = datetime.now(UTC)

    def operation() -> PolicyOut:
        conn = once.session.connection()
        fetch_newest_product_version(conn, product_code)
        published = publish_policy(
            conn, product_code, body, who=who.key_id, at=published_at, context=context
        )
        return PolicyOut(product_code=product_code, version=published.version, policy=body)

    stored = once.stored(who, body, 200, operation)
    context.offers.forget(product_code)
    return to_response(stored)


@router.post(
    "/v1/risk/blacklist", name="risk_blacklist_add", response_model=BlacklistOut, responses=PROBLEMS
)
def post_blacklist(body: BlacklistIn, who: AdminDep, once: OnceDep) -> Response:
    """Blacklist identity numbers, phones, devices or IPs (stored as keyed hashes only)."""
    vault = once.services.onboarding.current().vault

    def operation(_caches: object) -> BlacklistOut:
        hashes = [vault.lookup_hash(_LOOKUP_KINDS[body.kind], value) for value in body.values]
        added = add_to_blacklist(
            once.session.connection(),
            body.kind,
            hashes,
            reason_code=body.reason_code,
            now=datetime.now(UTC),
        )
        return BlacklistOut(kind=body.kind.value, submitted=len(body.values), added=added)

    return once.run(who, body, 200, operation)


@router.get(
    "/v1/risk/cards/active",
    name="risk_cards_active",
    response_model=ActiveCardOut,
    responses=PROBLEMS,
)
def get_active_card(
    session: SessionDep,
    services: ServicesDep,
    who: ReaderDep,
    product_code: Annotated[ProductCodeStr | None, Query()] = None,
) -> ActiveCardOut:
    """The scorecard that scores applications, with every characteristic it reads.

    For `product_code`, the card of the product's current policy; without it, the
    default policy's card. Each characteristic an application's `characteristics`
    should carry comes with its allowed values (categorical) or bin edges (numeric)."""
    context = services.onboarding.current()
    policy, version = DEFAULT_POLICY, None
    if product_code is not None:
        conn = session.connection()
        fetch_newest_product_version(conn, product_code)
        newest = fetch_newest_policy(conn, product_code, context.policies)
        if newest is not None:
            version, policy = newest
    return card_view(
        policy.card
        if policy.model_version is None
        else f"{REGISTERED_PREFIX}{policy.model_version}",
        context.cards.get_for_policy(session.connection(), policy),
        product_code=product_code,
        policy_version=version,
        missing_characteristics_max=policy.risk.missing_characteristics_max,
    )
