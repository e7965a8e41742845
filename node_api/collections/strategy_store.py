"""Strategy versions and activations in the database.

Creating a version stores a validated document under the next version number; an
activation names the champion (and optionally a challenger with its share of new cases).
Versions are immutable and activations append-only, so every case can be traced to the
exact rules it was worked under.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from node_api.collections.strategy import (
    DEFAULT_STRATEGY,
    StrategyDocument,
    compute_document_hash,
    parse_strategy,
)
from node_api.collections.tables import activation_table, strategy_table
from node_api.kernel.errors import CreditNetValueError, NotFoundError
from node_api.kernel.money import BPS_DENOMINATOR
from node_api.ledger.sql import begin_write

SYSTEM_ACTOR = "system"
_STRATEGY_LOCK = 0x636F6C6C  # "coll": one advisory lock for strategy writes (PostgreSQL)


def _lock_strategies(conn: Connection) -> None:
    """Serialize strategy writes: version numbers and the first activation are taken
    after reading the latest ones."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STRATEGY_LOCK})
    else:
        begin_write(conn)


@dataclass(frozen=True, slots=True)
class StrategyVersion:
    version: int
    name: str
    document_hash: str
    created_on: date
    created_by: str
    document: StrategyDocument


class Activation(BaseModel):
    """The champion and challenger in force from a date (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    champion_version: int
    challenger_version: int | None
    challenger_share_bps: int
    activated_on: date
    activated_by: str


def create_strategy_version(
    conn: Connection, document: object, *, on: date, by: str
) -> StrategyVersion:
    """Validate `document` and store it as the next version."""
    strategy = parse_strategy(document)
    _lock_strategies(conn)
    table = strategy_table
    latest = conn.execute(select(func.max(table.c.version))).scalar_one_or_none()
    version = int(latest or 0) + 1
    conn.execute(
        table.insert().values(
            version=version,
            name=strategy.name,
            document=strategy.model_dump(mode="json"),
            document_hash=compute_document_hash(strategy),
            created_on=on,
            created_by=by,
        )
    )
    return fetch_strategy_version(conn, version)


def fetch_strategy_version(conn: Connection, version: int) -> StrategyVersion:
    row = (
        conn.execute(select(strategy_table).where(strategy_table.c.version == version))
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(f"strategy version {version} does not exist", field="version")
    return StrategyVersion(
        int(row["version"]),
        str(row["name"]),
        str(row["document_hash"]),
        row["created_on"],
        str(row["created_by"]),
        StrategyDocument.model_validate(row["document"]),
    )


def fetch_strategy_versions(conn: Connection) -> list[StrategyVersion]:
    versions = conn.execute(
        select(strategy_table.c.version).order_by(strategy_table.c.version)
    ).scalars()
    return [fetch_strategy_version(conn, int(version)) for version in versions]


def activate(
    conn: Connection,
    *,
    champion_version: int,
    challenger_version: int | None,
    challenger_share_bps: int,
    on: date,
    by: str,
) -> Activation:
    """Put versions in force for new cases; open cases keep theirs."""
    if not 0 <= challenger_share_bps <= BPS_DENOMINATOR:
        raise CreditNetValueError(
            "the challenger's share is 0 to 10,000 bps", field="challenger_share_bps"
        )
    if (challenger_version is None) != (challenger_share_bps == 0):
        raise CreditNetValueError(
            "a challenger needs a share above 0 bps, and a share needs a challenger",
            field="challenger_share_bps",
        )
    if challenger_version == champion_version:
        raise CreditNetValueError(
            "the challenger must differ from the champion", field="challenger_version"
        )
    _lock_strategies(conn)
    fetch_strategy_version(conn, champion_version)
    if challenger_version is not None:
        fetch_strategy_version(conn, challenger_version)
    table = activation_table
    activation_id = conn.execute(
        table.insert()
        .values(
            champion_version=champion_version,
            challenger_version=challenger_version,
            challenger_share_bps=challenger_share_bps,
            activated_on=on,
            activated_by=by,
        )
        .returning(table.c.id)
    ).scalar_one()
    activation = fetch_activation(conn)
    assert activation is not None and activation.id == int(activation_id)
    return activation


def fetch_activation(conn: Connection) -> Activation | None:
    """The activation in force (the latest), or None before the first."""
    row = (
        conn.execute(select(activation_table).order_by(activation_table.c.id.desc()).limit(1))
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    return Activation(**{name: row[name] for name in Activation.model_fields})


def ensure_activation(conn: Connection, on: date) -> Activation:
    """The activation in force; the first time, the default strategy as version 1."""
    _lock_strategies(conn)
    activation = fetch_activation(conn)
    if activation is not None:
        return activation
    version = create_strategy_version(conn, DEFAULT_STRATEGY, on=on, by=SYSTEM_ACTOR)
    return activate(
        conn,
        champion_version=version.version,
        challenger_version=None,
        challenger_share_bps=0,
        on=on,
        by=SYSTEM_ACTOR,
    )
