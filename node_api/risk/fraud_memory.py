"""In-memory `FraudHistory`: the reference implementation for tests and demos.

Semantics match the protocol exactly (half-open windows, current application not
counted), so the SQL implementation can be checked against this one.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from node_api.risk.fraud_config import AttributeKind, FraudRuleConfig
from node_api.risk.fraud_facts import ApplicationFacts, Window, get_ring_attribute_hashes
from node_api.risk.rings import RingIndex

_Event = tuple[datetime, bytes]


class InMemoryFraudHistory:
    """Applications by (kind, hash) in time order, a blacklist and a ring index."""

    def __init__(self, config: FraudRuleConfig | None = None) -> None:
        self._config = config if config is not None else FraudRuleConfig()
        self._events: defaultdict[tuple[AttributeKind, bytes], list[_Event]] = defaultdict(list)
        self._blacklist: set[tuple[AttributeKind, bytes]] = set()
        self.rings = RingIndex()

    def record(self, facts: ApplicationFacts) -> int:
        """Store a decided application; return its ring component's identity count."""
        for kind, value_hash in facts.attribute_hashes.items():
            bisect.insort(self._events[kind, value_hash], (facts.applied_at, facts.identity_hash))
        attribute_hashes = get_ring_attribute_hashes(facts, self._config)
        return self.rings.add_application(facts.identity_hash, attribute_hashes)

    def add_to_blacklist(self, kind: AttributeKind, value_hashes: Iterable[bytes]) -> None:
        self._blacklist.update((kind, value_hash) for value_hash in value_hashes)

    def _events_in(self, kind: AttributeKind, value_hash: bytes, window: Window) -> list[_Event]:
        events = self._events.get((kind, value_hash), [])
        start = bisect.bisect_left(events, window.since, key=lambda event: event[0])
        end = bisect.bisect_left(events, window.until, key=lambda event: event[0])
        return events[start:end]

    def fetch_application_count(
        self, kind: AttributeKind, value_hash: bytes, window: Window
    ) -> int:
        return len(self._events_in(kind, value_hash, window))

    def fetch_other_identity_count(
        self, kind: AttributeKind, value_hash: bytes, identity_hash: bytes, window: Window
    ) -> int:
        identities = {event[1] for event in self._events_in(kind, value_hash, window)}
        identities.discard(identity_hash)
        return len(identities)

    def fetch_is_blacklisted(self, kind: AttributeKind, value_hash: bytes) -> bool:
        return (kind, value_hash) in self._blacklist

    def fetch_ring_size(self, identity_hash: bytes, attribute_hashes: tuple[bytes, ...]) -> int:
        return self.rings.peek_component_size(identity_hash, attribute_hashes)
