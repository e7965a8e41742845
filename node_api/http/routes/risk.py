"""`/v1/risk`: population stability of live applications, per-product onboarding
policies, and the hashed blacklist.

Blacklisted values arrive in plaintext, are hashed with the vault's lookup key at
once and are never stored, echoed or logged as they came.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, StrictStr, StringConstraints

from node_api.auth.keys import Principal, Role
from node_api.http.deps import SessionDep, SettingsDep, require
from node_api.http.routes.applications import key_claim
from node_api.http.routes.credit_lines import PROBLEMS, StrictBody
from node_api.idempotency import get_idempotency_key, run_idempotent, to_response
from node_api.kernel.errors import CreditNetValueError
from node_api.onboarding.context import OnboardingContext, context_for
from node_api.onboarding.fraud_history_sql import add_to_blacklist
from node_api.onboarding.offers import fetch_newest_product_version
from node_api.onboarding.pii import LookupKind
from node_api.onboarding.policies import OnboardingPolicy, fetch_current_policy, store_policy
from node_api.onboarding.scorecards import PACKAGED_CARDS
from node_api.risk.fraud_config import AttributeKind
from node_api.risk.live_monitoring import fetch_live_model_ids, fetch_stability_report
from node_api.risk.scorecard import Scorecard

router = APIRouter(tags=["risk"])

ProductCode = Annotated[str, Path(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,31}$")]
CardName = Annotated[str | None, Query(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
IdempotencyKey = Annotated[str, Depends(get_idempotency_key)]
AdminDep = Annotated[Principal, Depends(require(Role.LENDER_ADMIN))]
ExaminerDep = Annotated[Principal, Depends(require(Role.LENDER_ADMIN, Role.AUDITOR))]
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
    policy: dict[str, Any]


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


def _card_report(conn: Any, name: str, card: Scorecard) -> dict[str, Any]:
    return {"card": name, **fetch_stability_report(conn, card.card).to_dict()}


@router.get("/v1/risk/monitoring", response_model=MonitoringOut, responses=PROBLEMS)
def get_monitoring(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: ExaminerDep,
    card: CardName = None,
) -> dict[str, Any]:
    """PSI of live applications vs the training distribution, per characteristic and of
    the score (total), for `card` or for every card that has scored live applications."""
    context = context_for(request.app.state, settings)
    conn = session.connection()
    if card is not None:
        return {"cards": [_card_report(conn, card, context.cards.get(card))]}
    live = set(fetch_live_model_ids(conn))
    names = {loaded.model_id: name for name, loaded in _named_cards(context)}
    return {
        "cards": [
            _card_report(conn, names[model_id], context.cards.get(names[model_id]))
            for model_id in sorted(live)
            if model_id in names
        ]
    }


def _named_cards(context: OnboardingContext) -> list[tuple[str, Scorecard]]:
    return [(name, context.cards.get(name)) for name in PACKAGED_CARDS]


@router.get("/v1/risk/policies/{product_code}", response_model=PolicyOut, responses=PROBLEMS)
def get_policy(
    product_code: ProductCode,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: ExaminerDep,
) -> dict[str, Any]:
    """The onboarding policy in force for a product (the default until one is published)."""
    context = context_for(request.app.state, settings)
    conn = session.connection()
    fetch_newest_product_version(conn, product_code)
    version, policy = fetch_current_policy(conn, product_code, context.policies)
    return {"product_code": product_code, "version": version, "policy": policy.model_dump()}


@router.post("/v1/risk/policies/{product_code}", response_model=PolicyOut, responses=PROBLEMS)
def post_policy(
    product_code: ProductCode,
    body: OnboardingPolicy,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: AdminDep,
    key: IdempotencyKey,
) -> Response:
    """Publish a product's next policy version; applications from now on use it."""
    context = context_for(request.app.state, settings)
    payload = body.model_dump(mode="json")
    claim = key_claim(request, who, key, body)

    def operation() -> tuple[int, dict[str, Any]]:
        conn = session.connection()
        fetch_newest_product_version(conn, product_code)
        if body.card not in {name for name, _ in _named_cards(context)}:
            raise CreditNetValueError("no packaged scorecard has this name", field="card")
        version = store_policy(conn, product_code, body)
        return 200, {"product_code": product_code, "version": version, "policy": payload}

    stored = run_idempotent(session, claim, operation)
    session.commit()
    context.offers.forget(product_code)
    return to_response(stored)


@router.post("/v1/risk/blacklist", response_model=BlacklistOut, responses=PROBLEMS)
def post_blacklist(
    body: BlacklistIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: AdminDep,
    key: IdempotencyKey,
) -> Response:
    """Blacklist identity numbers, phones, devices or IPs (stored as keyed hashes only)."""
    vault = context_for(request.app.state, settings).vault
    claim = key_claim(request, who, key, body)

    def operation() -> tuple[int, dict[str, Any]]:
        hashes = [vault.lookup_hash(_LOOKUP_KINDS[body.kind], value) for value in body.values]
        added = add_to_blacklist(
            session.connection(),
            body.kind,
            hashes,
            reason_code=body.reason_code,
            now=datetime.now(UTC),
        )
        return 200, {"kind": body.kind.value, "submitted": len(body.values), "added": added}

    stored = run_idempotent(session, claim, operation)
    session.commit()
    return to_response(stored)
