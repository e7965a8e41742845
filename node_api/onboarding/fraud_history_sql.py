"""`FraudHistory` over the node's tables: hashed attributes in indexed time windows.

Semantics equal `InMemoryFraudHistory` (half-open windows [since, until), the
application being decided not counted). Each protocol call is one indexed query;
`preload` answers every call `gather_signals` will make for one application in
three queries (windows, blacklist, ring sync), which is what the request path uses.
Stored timestamps are naive UTC; the protocol speaks timezone-aware datetimes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary, Select, bindparam, case, func, or_, select
from sqlalchemy.engine import Connection

from node_api.ledger.sql import insert_ignoring_conflicts
from node_api.onboarding.ring_links import RingLinkFollower
from node_api.onboarding.tables import (
    application_attribute_table,
    blacklist_table,
    ring_link_table,
)
from node_api.risk.fraud_config import AttributeKind, FraudRuleConfig, VelocityWindow
from node_api.risk.fraud_facts import (
    ApplicationFacts,
    Window,
    get_ring_attribute_hashes,
    get_sharing_windows,
)

_CountKey = tuple[AttributeKind, bytes, Window]
_OthersKey = tuple[AttributeKind, bytes, bytes, Window]


def to_naive_utc(moment: datetime) -> datetime:
    """The stored form of a timestamp: UTC without tzinfo."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_naive_utc(stored: datetime) -> datetime:
    return stored.replace(tzinfo=UTC)


@functools.cache
def _windows_statement(
    kinds: tuple[AttributeKind, ...], sharing_kinds: tuple[AttributeKind, ...]
) -> Select[Any]:
    """Per attribute kind: applications in each velocity window and, for the sharing
    kinds, distinct other identities in the sharing window. Built once per shape;
    every value is a bound parameter (`hash_<kind>`, `since_<window>`, ...)."""
    table = application_attribute_table
    columns: list[Any] = [table.c.kind]
    for window in VelocityWindow:
        since = bindparam(f"since_{window.name}", type_=DateTime())
        columns.append(func.sum(case((table.c.applied_at >= since, 1), else_=0)))
    if sharing_kinds:
        shared = [
            (table.c.kind == kind.value)
            & (table.c.applied_at >= bindparam(f"share_since_{kind.value}", type_=DateTime()))
            for kind in sharing_kinds
        ]
        other = table.c.identity_hash != bindparam("identity_hash", type_=LargeBinary())
        counted = case((or_(*shared) & other, table.c.identity_hash), else_=None)
        columns.append(func.count(counted.distinct()))
    matches = [
        (table.c.kind == kind.value)
        & (table.c.value_hash == bindparam(f"hash_{kind.value}", type_=LargeBinary()))
        for kind in kinds
    ]
    return (
        select(*columns)
        .where(
            or_(*matches)
            & (table.c.applied_at >= bindparam("since_all", type_=DateTime()))
            & (table.c.applied_at < bindparam("until", type_=DateTime()))
        )
        .group_by(table.c.kind)
    )


@functools.cache
def _blacklist_statement(kinds: tuple[AttributeKind, ...]) -> Select[Any]:
    table = blacklist_table
    matches = [
        (table.c.kind == kind.value)
        & (table.c.value_hash == bindparam(f"hash_{kind.value}", type_=LargeBinary()))
        for kind in kinds
    ]
    return select(table.c.kind, table.c.value_hash).where(or_(*matches))


_INSERT_ATTRIBUTES = application_attribute_table.insert()
_INSERT_LINKS = ring_link_table.insert()


class SqlFraudHistory:
    """Fraud history of one transaction's connection; `rings` is the process's index."""

    def __init__(self, conn: Connection, rings: RingLinkFollower) -> None:
        self._conn = conn
        self._rings = rings
        self._counts: dict[_CountKey, int] = {}
        self._others: dict[_OthersKey, int] = {}
        self._blacklisted: dict[tuple[AttributeKind, bytes], bool] = {}
        self._rings_synced = False

    def preload(self, facts: ApplicationFacts, config: FraudRuleConfig) -> None:
        """Fetch every signal `gather_signals(facts, self, config)` asks for, in bulk."""
        self._preload_windows(facts, config)
        self._preload_blacklist(facts, config)
        self._sync_rings()

    def _preload_windows(self, facts: ApplicationFacts, config: FraudRuleConfig) -> None:
        """Velocity counts and other-identity counts of every attribute, in one query."""
        until = facts.applied_at
        hashes = facts.attribute_hashes
        velocity = [kind for kind in sorted(hashes) if kind in config.velocity]
        sharing = {
            kind: until - window
            for kind, window in sorted(get_sharing_windows(config).items())
            if kind in hashes
        }
        kinds = tuple(sorted(set(velocity) | set(sharing)))
        if not kinds:
            return
        since_all = min([until - w.duration for w in VelocityWindow] + list(sharing.values()))
        params: dict[str, datetime | bytes] = {
            "since_all": to_naive_utc(since_all),
            "until": to_naive_utc(until),
            "identity_hash": facts.identity_hash,
        }
        params.update({f"hash_{kind.value}": hashes[kind] for kind in kinds})
        params.update({f"since_{w.name}": to_naive_utc(until - w.duration) for w in VelocityWindow})
        params.update({f"share_since_{k.value}": to_naive_utc(v) for k, v in sharing.items()})
        statement = _windows_statement(kinds, tuple(sharing))
        found = {AttributeKind(row[0]): row[1:] for row in self._conn.execute(statement, params)}
        empty = (0,) * (len(VelocityWindow) + 1)
        for kind in velocity:
            counts = found.get(kind, empty)
            for window, count in zip(VelocityWindow, counts, strict=False):
                key = (kind, hashes[kind], Window(until - window.duration, until))
                self._counts[key] = int(count or 0)
        for kind, since in sharing.items():
            others_key = (kind, hashes[kind], facts.identity_hash, Window(since, until))
            self._others[others_key] = int(found.get(kind, empty)[-1] or 0)

    def _preload_blacklist(self, facts: ApplicationFacts, config: FraudRuleConfig) -> None:
        kinds = tuple(kind for kind in config.blacklist_kinds if kind in facts.attribute_hashes)
        if not kinds:
            return
        params = {f"hash_{kind.value}": facts.attribute_hashes[kind] for kind in kinds}
        rows = self._conn.execute(_blacklist_statement(kinds), params).all()
        listed = {(AttributeKind(row[0]), bytes(row[1])) for row in rows}
        for kind in kinds:
            pair = (kind, facts.attribute_hashes[kind])
            self._blacklisted[pair] = pair in listed

    def _sync_rings(self) -> None:
        if not self._rings_synced:
            self._rings.sync(self._conn)
            self._rings_synced = True

    def fetch_application_count(
        self, kind: AttributeKind, value_hash: bytes, window: Window
    ) -> int:
        cached = self._counts.get((kind, value_hash, window))
        if cached is not None:
            return cached
        table = application_attribute_table
        return int(
            self._conn.execute(
                select(func.count()).where(
                    (table.c.kind == kind.value)
                    & (table.c.value_hash == value_hash)
                    & (table.c.applied_at >= to_naive_utc(window.since))
                    & (table.c.applied_at < to_naive_utc(window.until))
                )
            ).scalar_one()
        )

    def fetch_other_identity_count(
        self, kind: AttributeKind, value_hash: bytes, identity_hash: bytes, window: Window
    ) -> int:
        cached = self._others.get((kind, value_hash, identity_hash, window))
        if cached is not None:
            return cached
        table = application_attribute_table
        return int(
            self._conn.execute(
                select(func.count(table.c.identity_hash.distinct())).where(
                    (table.c.kind == kind.value)
                    & (table.c.value_hash == value_hash)
                    & (table.c.identity_hash != identity_hash)
                    & (table.c.applied_at >= to_naive_utc(window.since))
                    & (table.c.applied_at < to_naive_utc(window.until))
                )
            ).scalar_one()
        )

    def fetch_is_blacklisted(self, kind: AttributeKind, value_hash: bytes) -> bool:
        cached = self._blacklisted.get((kind, value_hash))
        if cached is not None:
            return cached
        table = blacklist_table
        found = self._conn.execute(
            select(table.c.kind).where(
                (table.c.kind == kind.value) & (table.c.value_hash == value_hash)
            )
        ).first()
        return found is not None

    def fetch_ring_size(self, identity_hash: bytes, attribute_hashes: tuple[bytes, ...]) -> int:
        self._sync_rings()
        return self._rings.peek_component_size(identity_hash, attribute_hashes)


def record_application(
    conn: Connection, application_id: str, facts: ApplicationFacts, config: FraudRuleConfig
) -> None:
    """Add a decided application's hashed attributes and ring links to the history."""
    applied_at = to_naive_utc(facts.applied_at)
    attributes = [
        {
            "application_id": application_id,
            "kind": kind.value,
            "value_hash": value_hash,
            "identity_hash": facts.identity_hash,
            "applied_at": applied_at,
        }
        for kind, value_hash in sorted(facts.attribute_hashes.items())
    ]
    conn.execute(_INSERT_ATTRIBUTES, attributes)
    links = _ring_links(application_id, facts, config)
    if links:
        conn.execute(_INSERT_LINKS, links)


def _ring_links(
    application_id: str, facts: ApplicationFacts, config: FraudRuleConfig
) -> list[dict[str, str | bytes]]:
    ring_hashes = set(get_ring_attribute_hashes(facts, config))
    return [
        {
            "application_id": application_id,
            "kind": kind.value,
            "identity_hash": facts.identity_hash,
            "attribute_hash": value_hash,
        }
        for kind, value_hash in sorted(facts.attribute_hashes.items())
        if value_hash in ring_hashes
    ]


def add_to_blacklist(
    conn: Connection,
    kind: AttributeKind,
    value_hashes: Sequence[bytes],
    *,
    reason_code: str,
    now: datetime,
) -> int:
    """List hashed values (hash them with the vault first); returns how many were new."""
    rows = [
        {
            "kind": kind.value,
            "value_hash": value_hash,
            "reason_code": reason_code,
            "created_at": to_naive_utc(now),
        }
        for value_hash in sorted(set(value_hashes))
    ]
    if not rows:
        return 0
    inserted = insert_ignoring_conflicts(
        conn, blacklist_table, rows, ["kind", "value_hash"], ("kind",)
    )
    return len(inserted.all())
