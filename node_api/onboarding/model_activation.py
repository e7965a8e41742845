"""Publishing a product's policy and activating a registered model, with the audit trail.

Every path that changes the model a product decides with goes through
`publish_policy`: it checks that what the policy names exists (a packaged card, a
registered model, the challenger's model or policy version), stores the next policy
version, and, when the scoring model changed, appends who changed it, when, to which
model and from which one (`risk_model_activation`). Activating a model is publishing
the current policy with that model: the cut-offs, limits, fraud rules and challenger
stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from node_api.kernel.errors import CreditNetValueError, NotFoundError
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.policies import (
    DEFAULT_POLICY,
    OnboardingPolicy,
    fetch_newest_policy,
    fetch_policy_version,
    store_policy,
)
from node_api.onboarding.scorecards import PACKAGED_CARDS
from node_api.risk.model_registry import ModelActivation, fetch_model, record_activation


def _check_model(conn: Connection, version: int, field: str) -> None:
    try:
        fetch_model(conn, version)
    except NotFoundError:
        raise CreditNetValueError(
            "no model is registered under this version", field=field, code="unknown_model"
        ) from None


def check_policy_references(
    conn: Connection, product_code: str, policy: OnboardingPolicy, context: OnboardingContext
) -> None:
    """Refuse a policy naming a card, model or policy version the node does not have."""
    if policy.card not in PACKAGED_CARDS:
        raise CreditNetValueError("no packaged scorecard has this name", field="card")
    if policy.model_version is not None:
        _check_model(conn, policy.model_version, "model_version")
    challenger = policy.challenger
    if challenger is None:
        return
    if challenger.model_version is not None:
        _check_model(conn, challenger.model_version, "challenger.model_version")
    if challenger.policy_version is not None:
        stored = fetch_policy_version(
            conn, product_code, challenger.policy_version, context.policies
        )
        if stored is None:
            raise CreditNetValueError(
                "the product has no policy version with this number",
                field="challenger.policy_version",
            )
        if stored.model_version is not None:
            _check_model(conn, stored.model_version, "challenger.policy_version")


@dataclass(frozen=True, slots=True)
class PublishedPolicy:
    version: int
    """The policy version in force afterwards."""
    activation: ModelActivation | None
    """The change of scoring model it made, if it made one."""


def _fetch_in_force(
    conn: Connection, product_code: str, context: OnboardingContext
) -> tuple[int | None, OnboardingPolicy]:
    """The newest stored policy, or the default (not stored here: version None)."""
    newest = fetch_newest_policy(conn, product_code, context.policies)
    return (None, DEFAULT_POLICY) if newest is None else newest


def _scoring_model(
    conn: Connection, policy: OnboardingPolicy, context: OnboardingContext
) -> tuple[int | None, str]:
    return policy.model_version, context.cards.get_for_policy(conn, policy).model_id


def publish_policy(
    conn: Connection,
    product_code: str,
    policy: OnboardingPolicy,
    *,
    who: str,
    at: datetime,
    context: OnboardingContext,
) -> PublishedPolicy:
    """Store `policy` as the product's next version (a no-op if it equals the newest) and
    record the change of scoring model, if any."""
    check_policy_references(conn, product_code, policy, context)
    current_version, current = _fetch_in_force(conn, product_code, context)
    version = store_policy(conn, product_code, policy)
    previous = _scoring_model(conn, current, context)
    chosen = _scoring_model(conn, policy, context)
    if version == current_version or chosen == previous:
        return PublishedPolicy(version, None)
    activation = ModelActivation(
        product_code=product_code,
        policy_version=version,
        model_version=chosen[0],
        model_id=chosen[1],
        previous_model_version=previous[0],
        previous_model_id=previous[1],
        activated_by=who,
        activated_at=at,
    )
    record_activation(conn, activation)
    return PublishedPolicy(version, activation)


def activate_model(
    conn: Connection,
    product_code: str,
    model_version: int,
    *,
    who: str,
    at: datetime,
    context: OnboardingContext,
) -> PublishedPolicy:
    """Make a registered model the one the product's current policy decides with."""
    fetch_model(conn, model_version)
    _version, current = _fetch_in_force(conn, product_code, context)
    policy = current.model_copy(update={"model_version": model_version})
    return publish_policy(conn, product_code, policy, who=who, at=at, context=context)
