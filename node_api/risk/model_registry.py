"""The model registry: trained cards uploaded once, numbered, and never changed.

A card is registered with its cross-validated training metrics (from the card) and a
data fingerprint: the SHA-256 of the training file, as `creditnet risk train` writes
it into the card (`training.data_sha256`) or as the uploader states it; a card that
carries neither is fingerprinted by its own canonical JSON, and says so
(`fingerprint_source`). Registering the same card again answers the version it
already has: a card's content (`model_id`) is registered at most once, so a version
names exactly one card for as long as the node lives.

Policies name a registered model by `version`; applications store the `model_id`.
Every change of the model a product decides with is appended to the activation trail
(`record_activation`), with who made it, when, and what it replaced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from node_api.kernel.errors import (
    ConfigurationError,
    ConflictError,
    CreditNetValueError,
    NotFoundError,
)
from node_api.risk.card import DATA_FINGERPRINT_KEY, CardMetrics, ScorecardCard, parse_card
from node_api.risk.registry_tables import model_activation_table, model_table

FINGERPRINT_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
CHARACTERISTIC_CHARS_MAX = 128


class FingerprintSource(StrEnum):
    DATA = "data"
    """The SHA-256 of the training data file."""
    CARD = "card"
    """No training data was named: the SHA-256 of the card's canonical JSON."""


def compute_card_fingerprint(card: ScorecardCard) -> str:
    """`sha256:<hex>` of the whole card's canonical JSON (sorted keys, no spaces)."""
    content = card.to_document()
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def resolve_fingerprint(
    card: ScorecardCard, data_fingerprint: str | None
) -> tuple[str, FingerprintSource]:
    """The fingerprint to register: the one stated, else the card's own record of its
    data, else the card's. A stated one must agree with what the card recorded."""
    carried = card.training.get(DATA_FINGERPRINT_KEY)
    carried_fingerprint = (
        carried if isinstance(carried, str) and FINGERPRINT_PATTERN.match(carried) else None
    )
    if data_fingerprint is not None:
        if FINGERPRINT_PATTERN.match(data_fingerprint) is None:
            raise CreditNetValueError(
                "a data fingerprint reads sha256:<64 hex digits>", field="data_sha256"
            )
        if carried_fingerprint is not None and carried_fingerprint != data_fingerprint:
            raise CreditNetValueError(
                "the card was trained on other data than this fingerprint names",
                field="data_sha256",
                code="data_fingerprint_mismatch",
            )
        return data_fingerprint, FingerprintSource.DATA
    if carried_fingerprint is not None:
        return carried_fingerprint, FingerprintSource.DATA
    return compute_card_fingerprint(card), FingerprintSource.CARD


def check_servable(card: ScorecardCard) -> None:
    """Refuse a well-formed card the node could not serve or monitor."""
    names = [characteristic.name for characteristic in card.characteristics]
    if not names:
        raise CreditNetValueError("the card has no characteristic", field="card.characteristics")
    if len(set(names)) != len(names):
        raise CreditNetValueError(
            "the card names a characteristic twice", field="card.characteristics"
        )
    for characteristic in card.characteristics:
        if not 1 <= len(characteristic.name) <= CHARACTERISTIC_CHARS_MAX:
            raise CreditNetValueError(
                f"characteristic names are 1 to {CHARACTERISTIC_CHARS_MAX} characters",
                field="card.characteristics",
            )
        categories = [c for card_bin in characteristic.bins for c in card_bin.categories]
        if len(set(categories)) != len(categories):
            raise CreditNetValueError(
                "a category falls in two bins", field=f"card.characteristics.{characteristic.name}"
            )
    if card.gbm is not None:
        _check_gbm_features(card)
    if not card.scaling.factor > 0:
        raise CreditNetValueError("the card's scaling factor must be positive", field="card")
    if len(card.score_bands.shares) != len(card.score_bands.edges) + 1:
        raise CreditNetValueError("score bands need len(edges) + 1 shares", field="card")


def _check_gbm_features(card: ScorecardCard) -> None:
    """Each tree feature reads characteristics the card bins, of the kind it needs."""
    assert card.gbm is not None
    kinds = {c.name: c.kind for c in card.characteristics}
    for feature in card.gbm.features:
        needed = "categorical" if feature.kind == "woe" else "numeric"
        if any(kinds.get(name) != needed for name in feature.characteristics):
            raise CreditNetValueError(
                f"a {feature.kind} feature reads a {needed} characteristic of the card",
                field=f"card.gbm.features.{feature.name}",
            )


def parse_uploaded_card(text: str) -> ScorecardCard:
    """A card as uploaded: well-formed, its `model_id` matching, and servable."""
    try:
        card = parse_card(text)
    except ConfigurationError as error:  # a 500 at startup; here the upload is refused
        raise CreditNetValueError(error.detail, field="card", code="invalid_card") from None
    check_servable(card)
    return card


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A registered card's record (without the card itself)."""

    version: int
    model_id: str
    label: str
    metrics: CardMetrics
    characteristics: tuple[str, ...]
    data_fingerprint: str
    fingerprint_source: FingerprintSource
    registered_by: str
    registered_at: datetime
    """UTC."""


def _to_naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _from_naive_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


_MODEL_COLUMNS = [column for column in model_table.c if column.name != "card"]


def _model(row: Row[Any]) -> RegisteredModel:
    return RegisteredModel(
        version=int(row.version),
        model_id=str(row.model_id),
        label=str(row.label),
        metrics=CardMetrics.model_validate(row.metrics),
        characteristics=tuple(row.characteristics),
        data_fingerprint=str(row.data_fingerprint),
        fingerprint_source=FingerprintSource(row.fingerprint_source),
        registered_by=str(row.registered_by),
        registered_at=_from_naive_utc(row.registered_at),
    )


@functools.cache
def _insert_statement(dialect_name: str) -> Any:
    insert: Any = (postgresql if dialect_name == "postgresql" else sqlite).insert(model_table)
    return insert.on_conflict_do_nothing(index_elements=["model_id"]).returning(
        model_table.c.version
    )


def register_model(
    conn: Connection,
    card: ScorecardCard,
    *,
    label: str,
    data_fingerprint: str | None,
    registered_by: str,
    registered_at: datetime,
) -> tuple[RegisteredModel, bool]:
    """Register a servable card; (its record, whether this call created it).

    The same card registered again answers its existing version, unless the data
    fingerprint stated now differs from the registered one (a conflict)."""
    check_servable(card)
    if LABEL_PATTERN.match(label) is None:
        raise CreditNetValueError(
            "a label is 1 to 64 letters, digits and _.:- (starting alphanumeric)", field="label"
        )
    fingerprint, source = resolve_fingerprint(card, data_fingerprint)
    row = {
        "model_id": card.model_id,
        "label": label,
        "card": card.to_json(),
        "metrics": card.metrics.model_dump(mode="json"),
        "characteristics": [characteristic.name for characteristic in card.characteristics],
        "data_fingerprint": fingerprint,
        "fingerprint_source": source.value,
        "registered_by": registered_by,
        "registered_at": _to_naive_utc(registered_at),
    }
    created = conn.execute(_insert_statement(conn.dialect.name), row).first() is not None
    registered = fetch_model_by_model_id(conn, card.model_id)
    assert registered is not None, "inserted or already there"
    if not created and data_fingerprint is not None and registered.data_fingerprint != fingerprint:
        raise ConflictError(
            "this card is registered with another data fingerprint",
            field="data_sha256",
            code="model_registered_with_other_data",
            model_version=registered.version,
        )
    return registered, created


def fetch_model(conn: Connection, version: int) -> RegisteredModel:
    """A registered model's record; 404 on `model_version` if there is none."""
    row = conn.execute(select(*_MODEL_COLUMNS).where(model_table.c.version == version)).first()
    if row is None:
        raise NotFoundError("no model is registered under this version", field="model_version")
    return _model(row)


def fetch_model_by_model_id(conn: Connection, model_id: str) -> RegisteredModel | None:
    row = conn.execute(select(*_MODEL_COLUMNS).where(model_table.c.model_id == model_id)).first()
    return None if row is None else _model(row)


def fetch_model_card(conn: Connection, version: int) -> ScorecardCard:
    """The card registered under `version`; 404 on `model_version` if there is none."""
    text = conn.execute(
        select(model_table.c.card).where(model_table.c.version == version)
    ).scalar_one_or_none()
    if text is None:
        raise NotFoundError("no model is registered under this version", field="model_version")
    return parse_card(str(text))


def fetch_model_version_of(conn: Connection, model_id: str) -> int | None:
    """The version a card is registered under, if it is."""
    version = conn.execute(
        select(model_table.c.version).where(model_table.c.model_id == model_id)
    ).scalar_one_or_none()
    return None if version is None else int(version)


def list_models(conn: Connection) -> list[RegisteredModel]:
    """Every registered model, oldest version first."""
    rows = conn.execute(select(*_MODEL_COLUMNS).order_by(model_table.c.version)).all()
    return [_model(row) for row in rows]


@dataclass(frozen=True, slots=True)
class ModelActivation:
    """One change of the model a product's policy decides with."""

    product_code: str
    policy_version: int
    """The policy version published by the change."""
    model_version: int | None
    """None: a packaged card."""
    model_id: str
    previous_model_version: int | None
    previous_model_id: str | None
    activated_by: str
    """The API key id (or `cli`) that made the change."""
    activated_at: datetime
    """UTC."""


def record_activation(conn: Connection, activation: ModelActivation) -> None:
    conn.execute(
        model_activation_table.insert(),
        {
            "product_code": activation.product_code,
            "policy_version": activation.policy_version,
            "model_version": activation.model_version,
            "model_id": activation.model_id,
            "previous_model_version": activation.previous_model_version,
            "previous_model_id": activation.previous_model_id,
            "activated_by": activation.activated_by,
            "activated_at": _to_naive_utc(activation.activated_at),
        },
    )


def list_activations(
    conn: Connection, product_codes: Sequence[str] | None = None
) -> list[ModelActivation]:
    """The activation trail, oldest first (of the given products, or of all)."""
    table = model_activation_table
    statement = select(table).order_by(table.c.id)
    if product_codes is not None:
        statement = statement.where(table.c.product_code.in_(list(product_codes)))
    return [
        ModelActivation(
            product_code=str(row.product_code),
            policy_version=int(row.policy_version),
            model_version=None if row.model_version is None else int(row.model_version),
            model_id=str(row.model_id),
            previous_model_version=(
                None if row.previous_model_version is None else int(row.previous_model_version)
            ),
            previous_model_id=row.previous_model_id,
            activated_by=str(row.activated_by),
            activated_at=_from_naive_utc(row.activated_at),
        )
        for row in conn.execute(statement)
    ]
