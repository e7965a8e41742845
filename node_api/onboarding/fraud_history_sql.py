"""`FraudHistory` over the node's tables: hashed attributes in indexed time windows.

Semantics equal `InMemoryFraudHistory` (half-open windows [since, until), the
application being decided not counted). Each protocol call is one indexed query;
`preload` answers every call `gather_signals` will make for one application in
one statement (windows, blacklist and ring links, a UNION ALL), which is what the
request path uses.
Stored timestamps are naive UTC; the protocol speaks timezone-aware datetimes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    DateTime,
    LargeBinary,
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection

from node_api.ledger.sql import insert_ignoring_conflicts
from node_api.onboarding.ring_links import RING_LINK_COLUMNS, RingLinkFollower, follow_condition
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


_WINDOWS, _BLACKLIST, _RING_LINKS = 0, 1, 2
"""The `source` column of the preload's rows: which part of the statement each came from."""
_COUNT_COLUMNS = len(VelocityWindow) + 1
"""Count columns of a preload row: one per velocity window, then other identities."""


def _padding(count_nulls: int, *, ring: bool) -> list[Any]:
    """NULLs of the count and ring-link columns a part of the preload does not fill."""
    counts = [cast(null(), BigInteger) for _ in range(count_nulls)]
    if not ring:
        return counts
    return [*counts, cast(null(), BigInteger), cast(null(), LargeBinary), cast(null(), LargeBinary)]


def _windows_select(
    kinds: tuple[AttributeKind, ...], sharing_kinds: tuple[AttributeKind, ...]
) -> Select[Any]:
    """Per attribute kind: applications in each velocity window and, for the sharing
    kinds, distinct other identities in the sharing window (every value a bound
    parameter: `hash_<kind>`, `since_<window>`, ...)."""
    table = application_attribute_table
    columns: list[Any] = [literal_column(str(_WINDOWS), BigInteger), table.c.kind]
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
    else:
        columns.extend(_padding(1, ring=False))
    matches = [
        (table.c.kind == kind.value)
        & (table.c.value_hash == bindparam(f"hash_{kind.value}", type_=LargeBinary()))
        for kind in kinds
    ]
    return (
        select(*columns, *_padding(0, ring=True))
        .where(
            or_(*matches)
            & (table.c.applied_at >= bindparam("since_all", type_=DateTime()))
            & (table.c.applied_at < bindparam("until", type_=DateTime()))
        )
        .group_by(table.c.kind)
    )


def _blacklist_select(kinds: tuple[AttributeKind, ...]) -> Select[Any]:
    """The kinds whose value (`hash_<kind>`) is listed."""
    table = blacklist_table
    matches = [
        (table.c.kind == kind.value)
        & (table.c.value_hash == bindparam(f"hash_{kind.value}", type_=LargeBinary()))
        for kind in kinds
    ]
    source = literal_column(str(_BLACKLIST), BigInteger)
    return select(source, table.c.kind, *_padding(_COUNT_COLUMNS, ring=True)).where(or_(*matches))


def _ring_links_select(with_gaps: bool) -> Select[Any]:
    """The ring links committed since the follower's last sync (`follow_condition`)."""
    source = literal_column(str(_RING_LINKS), BigInteger)
    kind = cast(null(), String)
    return select(source, kind, *_padding(_COUNT_COLUMNS, ring=False), *RING_LINK_COLUMNS).where(
        follow_condition(with_gaps)
    )


@functools.cache
def _preload_statement(
    kinds: tuple[AttributeKind, ...],
    sharing_kinds: tuple[AttributeKind, ...],
    blacklist_kinds: tuple[AttributeKind, ...],
    ring_links: bool | None,
) -> CompoundSelect[Any] | Select[Any]:
    """Windows, blacklist and new ring links as one UNION ALL (one round trip, one
    snapshot), built once per shape. `ring_links`: None leaves the links out, else
    whether to ask again for the ids the follower skipped."""
    parts: list[Select[Any]] = []
    if kinds:
        parts.append(_windows_select(kinds, sharing_kinds))
    if blacklist_kinds:
        parts.append(_blacklist_select(blacklist_kinds))
    if ring_links is not None:
        parts.append(_ring_links_select(ring_links))
    return parts[0] if len(parts) == 1 else union_all(*parts)


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
        """Fetch every signal `gather_signals(facts, self, config)` asks for, in one
        statement: the velocity and other-identity counts of every attribute, the
        blacklisted ones, and the ring links committed since the index's last sync."""
        until = facts.applied_at
        hashes = facts.attribute_hashes
        velocity = [kind for kind in sorted(hashes) if kind in config.velocity]
        sharing = {
            kind: until - window
            for kind, window in sorted(get_sharing_windows(config).items())
            if kind in hashes
        }
        kinds = tuple(sorted(set(velocity) | set(sharing)))
        listed_kinds = tuple(kind for kind in config.blacklist_kinds if kind in hashes)
        follow = None if self._rings_synced else self._rings.get_follow_condition()
        if follow is None:
            self._sync_rings()
        params: dict[str, Any] = {} if follow is None else dict(follow[1])
        params.update({f"hash_{kind.value}": hashes[kind] for kind in {*kinds, *listed_kinds}})
        if kinds:
            since_all = min([until - w.duration for w in VelocityWindow] + list(sharing.values()))
            params["since_all"] = to_naive_utc(since_all)
            params["until"] = to_naive_utc(until)
            params["identity_hash"] = facts.identity_hash
            params.update(
                {f"since_{w.name}": to_naive_utc(until - w.duration) for w in VelocityWindow}
            )
            params.update({f"share_since_{k.value}": to_naive_utc(v) for k, v in sharing.items()})
        ring_links = None if follow is None else "missing" in follow[1]
        if not kinds and not listed_kinds and ring_links is None:
            return
        statement = _preload_statement(kinds, tuple(sharing), listed_kinds, ring_links)
        found: dict[AttributeKind, Sequence[Any]] = {}
        listed: set[AttributeKind] = set()
        links: list[tuple[Any, Any, Any]] = []
        for row in self._conn.execute(statement, params):
            if row[0] == _WINDOWS:
                found[AttributeKind(row[1])] = row[2 : 2 + _COUNT_COLUMNS]
            elif row[0] == _BLACKLIST:
                listed.add(AttributeKind(row[1]))
            else:
                links.append(tuple(row[-3:]))
        if follow is not None:
            self._rings.apply_rows(links)
            self._rings_synced = True
        self._note_windows(facts, velocity, sharing, found)
        for kind in listed_kinds:
            self._blacklisted[kind, hashes[kind]] = kind in listed

    def _note_windows(
        self,
        facts: ApplicationFacts,
        velocity: Sequence[AttributeKind],
        sharing: Mapping[AttributeKind, datetime],
        found: Mapping[AttributeKind, Sequence[Any]],
    ) -> None:
        """Keep the preloaded counts for the protocol calls (zero where no row came)."""
        until = facts.applied_at
        hashes = facts.attribute_hashes
        empty = (0,) * _COUNT_COLUMNS
        for kind in velocity:
            counts = found.get(kind, empty)
            for window, count in zip(VelocityWindow, counts, strict=False):
                key = (kind, hashes[kind], Window(until - window.duration, until))
                self._counts[key] = int(count or 0)
        for kind, since in sharing.items():
            others_key = (kind, hashes[kind], facts.identity_hash, Window(since, until))
            self._others[others_key] = int(found.get(kind, empty)[-1] or 0)

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
    conn: Connection,
    application_id: str,
    customer_id: str,
    facts: ApplicationFacts,
    config: FraudRuleConfig,
) -> None:
    """Add a decided application's hashed attributes and ring links to the history
    (`customer_id`: the application's `loan_application.customer_id`)."""
    conn.execute(_INSERT_ATTRIBUTES, compute_attribute_rows(application_id, customer_id, facts))
    links = compute_ring_link_rows(application_id, facts, config)
    if links:
        conn.execute(_INSERT_LINKS, links)


def compute_attribute_rows(
    application_id: str, customer_id: str, facts: ApplicationFacts
) -> list[dict[str, Any]]:
    """The `application_attribute` rows of an application of customer `customer_id`, in
    kind order."""
    applied_at = to_naive_utc(facts.applied_at)
    return [
        {
            "application_id": application_id,
            "kind": kind.value,
            "value_hash": value_hash,
            "identity_hash": facts.identity_hash,
            "applied_at": applied_at,
            "customer_id": customer_id,
        }
        for kind, value_hash in sorted(facts.attribute_hashes.items())
    ]


def compute_ring_link_rows(
    application_id: str, facts: ApplicationFacts, config: FraudRuleConfig
) -> list[dict[str, Any]]:
    """The `fraud_ring_link` rows of an application, in kind order (maybe none)."""
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
