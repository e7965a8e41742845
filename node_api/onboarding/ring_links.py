"""Each process's fraud-ring union-find, kept current by following the link log.

`fraud_ring_link` is append-only with increasing ids. A process loads it all at
start (`RingIndex.from_links`) and afterwards reads only ids above the highest it
has seen, plus the ids it skipped: on PostgreSQL a transaction that took a lower id
can commit after a higher one, so a skipped id is asked for again until it shows up
or falls `GAP_HORIZON_IDS` behind (a rolled-back insert never shows up). Adding a
link twice changes nothing, so re-reading is harmless. Only committed links are
followed: an application that rolls back leaves no trace in any index.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.engine import Connection

from node_api.onboarding.tables import ring_link_table
from node_api.risk.rings import RingIndex

GAP_HORIZON_IDS = 5_000
"""A skipped id this far below the newest seen one is taken as rolled back."""
GAP_QUERY_IDS_MAX = 500


RING_LINK_COLUMNS = (
    ring_link_table.c.id,
    ring_link_table.c.identity_hash,
    ring_link_table.c.attribute_hash,
)
_AFTER = ring_link_table.c.id > bindparam("after_id")
_AFTER_OR_GAPS = _AFTER | ring_link_table.c.id.in_(bindparam("missing", expanding=True))


def follow_condition(with_gaps: bool) -> ColumnElement[bool]:
    """The links above `after_id` and, `with_gaps`, those whose id is in `missing`."""
    return _AFTER_OR_GAPS if with_gaps else _AFTER


class RingLinkFollower:
    """A `RingIndex` over every committed link, synced on demand; safe across threads."""

    def __init__(self) -> None:
        self._index: RingIndex | None = None
        self._max_id = 0
        self._missing: set[int] = set()
        self._lock = threading.Lock()

    def sync(self, conn: Connection) -> None:
        """Fold in the links committed since the last sync (all of them the first time).

        The query runs outside the lock (other threads keep reading the index); what
        it returns is applied under the lock, skipping links already folded in.
        """
        follow = self.get_follow_condition()
        statement = select(*RING_LINK_COLUMNS).order_by(ring_link_table.c.id)
        if follow is None:
            rows = conn.execute(statement).all()
        else:
            rows = conn.execute(statement.where(follow[0]), follow[1]).all()
        self.apply_rows([(r.id, r.identity_hash, r.attribute_hash) for r in rows])

    def get_follow_condition(self) -> tuple[ColumnElement[bool], dict[str, Any]] | None:
        """The condition on `fraud_ring_link` (`follow_condition`) and its parameters of
        the links to fold in since the last sync; None before the first sync, which loads
        every link. A caller may select `RING_LINK_COLUMNS` under it as part of a larger
        statement, then pass the rows to `apply_rows`."""
        with self._lock:
            if self._index is None:
                return None
            after_id = self._max_id
            asked = sorted(self._missing)[-GAP_QUERY_IDS_MAX:]
        if asked:
            return follow_condition(True), {"after_id": after_id, "missing": asked}
        return follow_condition(False), {"after_id": after_id}

    def apply_rows(self, rows: Iterable[tuple[Any, Any, Any]]) -> None:
        """Fold in the rows (id, identity hash, attribute hash) a follow query returned,
        in any order."""
        links = sorted(
            (int(link_id), bytes(identity), bytes(attribute))
            for link_id, identity, attribute in rows
        )
        with self._lock:
            self._apply(links)

    def peek_component_size(self, identity_hash: bytes, attribute_hashes: Sequence[bytes]) -> int:
        """Identities in the component the applicant would join (after `sync`)."""
        with self._lock:
            index = self._index if self._index is not None else RingIndex()
            return index.peek_component_size(identity_hash, attribute_hashes)

    def _apply(self, rows: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Add the links not folded in yet (rows in id order), then note their ids."""
        if self._index is None:
            self._index = RingIndex.from_links(
                (identity, attribute) for _, identity, attribute in rows
            )
        else:
            for link_id, identity, attribute in rows:
                if link_id in self._missing or link_id > self._max_id:
                    self._index.add_application(identity, (attribute,))
        self._note_ids(link_id for link_id, _, _ in rows)

    def _note_ids(self, ids: Iterable[int]) -> None:
        for link_id in ids:
            if link_id > self._max_id:
                self._missing.update(range(self._max_id + 1, link_id))
                self._max_id = link_id
            else:
                self._missing.discard(link_id)
        horizon = self._max_id - GAP_HORIZON_IDS
        self._missing = {link_id for link_id in self._missing if link_id > horizon}


def fetch_all_links(conn: Connection) -> list[tuple[bytes, bytes]]:
    """Every (identity hash, attribute hash) link ever logged, in order (for analysts)."""
    rows = conn.execute(select(*RING_LINK_COLUMNS).order_by(ring_link_table.c.id))
    return [(bytes(row.identity_hash), bytes(row.attribute_hash)) for row in rows]
