"""Per-product onboarding policy: which card scores, cut-offs, limits, fraud rules, ages.

A policy is a versioned, immutable document per product code; every application
records the version it was decided under, so a later change never alters how an
old decision replays. A product without a stored policy gets `DEFAULT_POLICY`,
stored as its version 1 the first time it is used, for the same reason.
"""

from __future__ import annotations

import hashlib
import json

from eth_hash.auto import keccak
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.sql import Row, insert_ignoring_conflicts
from node_api.onboarding.liveness import LivenessRule
from node_api.onboarding.tables import policy_table
from node_api.risk.challenger import ChallengerConfig
from node_api.risk.fraud_config import FraudRuleConfig
from node_api.risk.policy import LimitBand, ProductRiskPolicy

UINT32_MODULUS = 2**32
POLICY_INTEGER_MAX = 10**12
SHARING_WINDOW_DAYS_MAX = 3_650


def _check_integer_ranges(value: object, path: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_integer_ranges(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_integer_ranges(item, f"{path}.{index}")
    elif isinstance(value, int) and not -POLICY_INTEGER_MAX <= value <= POLICY_INTEGER_MAX:
        raise ValueError(f"{path} must be within +-{POLICY_INTEGER_MAX}")


class OnboardingPolicy(BaseModel):
    """Everything a product's applications are decided by."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    card: str = Field(default="german", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    """A packaged scorecard card (`node_api/risk/cards/<card>.json`); it scores unless
    `model_version` names a registered model."""
    model_version: int | None = Field(default=None, ge=1)
    """A registered model (`GET /v1/risk/models`) that scores instead of `card`."""
    product_version: int | None = Field(default=None, ge=1)
    """Book lines on this product version; None means the newest registered one."""
    age_years_min: int = Field(default=18, ge=16, le=100)
    age_years_max: int = Field(default=60, ge=16, le=120)
    chain_product_code: int | None = Field(default=None, ge=0, lt=UINT32_MODULUS)
    """The agreement's uint32 product code on-chain; None derives it from the code."""
    risk: ProductRiskPolicy
    fraud: FraudRuleConfig = FraudRuleConfig()
    challenger: ChallengerConfig | None = None
    """A champion/challenger test: the share of applicants another model or policy
    version decides; every application is scored by both."""
    liveness: LivenessRule | None = None
    """Require a provider-signed liveness and face-match result on every application
    (`POST /v1/liveness/challenges`); None: a result is verified if sent, not required."""

    @field_validator("risk", "fraud")
    @classmethod
    def _check_integers(cls, value: BaseModel) -> BaseModel:
        """The nested models leave some integers unbounded; keep them storable and exact."""
        _check_integer_ranges(value.model_dump(mode="json"), "")
        return value

    @field_validator("fraud")
    @classmethod
    def _check_windows(cls, fraud: FraudRuleConfig) -> FraudRuleConfig:
        for limit in (fraud.device_shared, fraud.phone_shared):
            if limit.window_days > SHARING_WINDOW_DAYS_MAX:
                raise ValueError(f"sharing windows are at most {SHARING_WINDOW_DAYS_MAX} days")
        return fraud

    @model_validator(mode="after")
    def _check_ages(self) -> OnboardingPolicy:
        if self.age_years_min > self.age_years_max:
            raise ValueError("age_years_min must not exceed age_years_max")
        return self

    def to_document(self) -> str:
        """Canonical JSON (sorted keys, no spaces): what is stored and hashed.

        Fields added since the first stored policies are left out while unset, so a
        document (and its hash) reads the same as before they existed."""
        unset = {name for name in _LATER_FIELDS if getattr(self, name) is None}
        return json.dumps(
            self.model_dump(mode="json", exclude=unset),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )

    def without_challenger(self) -> OnboardingPolicy:
        """This policy as one arm: its own challenger does not run."""
        return self if self.challenger is None else self.model_copy(update={"challenger": None})


_LATER_FIELDS = ("model_version", "challenger", "liveness")


DEFAULT_POLICY = OnboardingPolicy(
    risk=ProductRiskPolicy(
        approve_score_min=521,
        decline_score_below=484,
        missing_characteristics_max=3,
        limit_bands=(
            LimitBand(score_min=484, income_multiplier_bps=10_000, total_limit_fen_max=500_000),
            LimitBand(score_min=521, income_multiplier_bps=20_000, total_limit_fen_max=2_000_000),
            LimitBand(score_min=546, income_multiplier_bps=30_000, total_limit_fen_max=5_000_000),
            LimitBand(score_min=576, income_multiplier_bps=40_000, total_limit_fen_max=10_000_000),
        ),
        total_limit_fen_min=50_000,
        total_limit_fen_max=10_000_000,
    )
)
"""For the German card: decline the bottom ~15% of training scores, approve the top half."""


def compute_chain_product_code(product_code: str) -> int:
    """A stable uint32 for a product code: the first 4 bytes of keccak256 of the code."""
    return int.from_bytes(keccak(product_code.encode("ascii"))[:4], "big")


def get_chain_product_code(policy: OnboardingPolicy, product_code: str) -> int:
    if policy.chain_product_code is not None:
        return policy.chain_product_code
    return compute_chain_product_code(product_code)


def _hash_document(document: str) -> str:
    return "sha256:" + hashlib.sha256(document.encode("ascii")).hexdigest()


class PolicyCache:
    """Parsed policy documents by (product code, version): versions never change."""

    def __init__(self) -> None:
        self._policies: dict[tuple[str, int], OnboardingPolicy] = {}

    def parse(self, product_code: str, version: int, document: str) -> OnboardingPolicy:
        key = (product_code, version)
        policy = self._policies.get(key)
        if policy is None:
            policy = OnboardingPolicy.model_validate_json(document)
            self._policies[key] = policy
        return policy


def fetch_policy_version(
    conn: Connection, product_code: str, version: int, cache: PolicyCache
) -> OnboardingPolicy | None:
    """One stored version of a product's policy, or None."""
    table = policy_table
    document = conn.execute(
        select(table.c.document).where(
            (table.c.product_code == product_code) & (table.c.version == version)
        )
    ).scalar_one_or_none()
    return None if document is None else cache.parse(product_code, version, str(document))


def fetch_newest_policy(
    conn: Connection, product_code: str, cache: PolicyCache
) -> tuple[int, OnboardingPolicy] | None:
    """The newest stored policy version of a product, or None if none is stored."""
    table = policy_table
    row = conn.execute(
        select(table.c.version, table.c.document)
        .where(table.c.product_code == product_code)
        .order_by(table.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return int(row.version), cache.parse(product_code, int(row.version), str(row.document))


def fetch_current_policy(
    conn: Connection, product_code: str, cache: PolicyCache
) -> tuple[int, OnboardingPolicy]:
    """The newest policy version of a product; stores the default as version 1 if none."""
    newest = fetch_newest_policy(conn, product_code, cache)
    if newest is not None:
        return newest
    _insert_version(conn, product_code, 1, DEFAULT_POLICY)
    stored = fetch_policy_version(conn, product_code, 1, cache)
    assert stored is not None
    return 1, stored


def _insert_version(
    conn: Connection, product_code: str, version: int, policy: OnboardingPolicy
) -> bool:
    document = policy.to_document()
    row: Row = {
        "product_code": product_code,
        "version": version,
        "document": document,
        "document_hash": _hash_document(document),
    }
    inserted = insert_ignoring_conflicts(
        conn, policy_table, [row], ["product_code", "version"], ("version",)
    ).all()
    return bool(inserted)


def store_policy(conn: Connection, product_code: str, policy: OnboardingPolicy) -> int:
    """Publish `policy` as the product's next version (a no-op if it equals the newest).

    Returns the version now in force. Concurrent publishers each get their own version.
    """
    table = policy_table
    while True:
        row = conn.execute(
            select(table.c.version, table.c.document_hash)
            .where(table.c.product_code == product_code)
            .order_by(table.c.version.desc())
            .limit(1)
        ).first()
        if row is not None and row.document_hash == _hash_document(policy.to_document()):
            return int(row.version)
        version = 1 if row is None else int(row.version) + 1
        if _insert_version(conn, product_code, version, policy):
            return version
