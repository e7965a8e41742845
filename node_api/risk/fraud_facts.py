"""Inputs of the fraud rules: the application's facts and the history they are checked against.

`ApplicationFacts` holds only keyed hashes and values derived from the id number,
never plaintext PII. `FraudHistory` is the port to stored history (an in-memory
version lives in `fraud_memory`, the node supplies a SQL one); `gather_signals`
asks it everything the rules need, once, and returns a plain `FraudSignals`
snapshot. Callers with an async store can build `FraudSignals` themselves and
call the pure rules directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol, TypedDict

from node_api.risk.fraud_config import AttributeKind, FraudRuleConfig, VelocityWindow


class Gender(StrEnum):
    """Gender as encoded by the parity of the id number's sequence code."""

    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class ApplicationFacts:
    """What the rules know about one application. `attribute_hashes` must hold ID."""

    applied_at: datetime
    attribute_hashes: Mapping[AttributeKind, bytes]
    id_birth_date: date
    id_gender: Gender
    declared_birth_date: date | None = None
    declared_gender: Gender | None = None

    def __post_init__(self) -> None:
        if AttributeKind.ID not in self.attribute_hashes:
            raise ValueError("application facts need the identity hash")
        if self.applied_at.tzinfo is None:
            raise ValueError("applied_at must be timezone-aware")

    @property
    def identity_hash(self) -> bytes:
        return self.attribute_hashes[AttributeKind.ID]


class Window(NamedTuple):
    """Receipt times at or after `since` and strictly before `until`."""

    since: datetime
    until: datetime


class FraudHistory(Protocol):
    """Stored application history, queried by hashed attribute.

    Counts cover applications in a `Window` ending at the application's receipt time,
    so the application being decided is never counted (it is not stored yet).
    """

    def fetch_application_count(
        self, kind: AttributeKind, value_hash: bytes, window: Window
    ) -> int:
        """Applications that used the attribute in the window."""
        ...

    def fetch_other_identity_count(
        self, kind: AttributeKind, value_hash: bytes, identity_hash: bytes, window: Window
    ) -> int:
        """Distinct identities other than `identity_hash` that used the attribute."""
        ...

    def fetch_is_blacklisted(self, kind: AttributeKind, value_hash: bytes) -> bool: ...

    def fetch_ring_size(self, identity_hash: bytes, attribute_hashes: tuple[bytes, ...]) -> int:
        """Identities in the component the applicant joins through these attributes."""
        ...


class FraudSignalsJson(TypedDict):
    """`FraudSignals` as stored with the decision (JSON): keys `kind:window`, kind values."""

    prior_applications: dict[str, int]
    other_identities: dict[str, int]
    blacklisted: list[str]
    ring_identities: int


@dataclass(frozen=True, slots=True)
class FraudSignals:
    """Everything the rules read from history, as plain data (storable, replayable)."""

    prior_applications: Mapping[tuple[AttributeKind, VelocityWindow], int]
    other_identities: Mapping[AttributeKind, int]
    blacklisted: frozenset[AttributeKind]
    ring_identities: int

    def to_dict(self) -> FraudSignalsJson:
        """JSON-ready form, stored with the decision so the rules can be replayed."""
        return {
            "prior_applications": {
                f"{kind.value}:{window.value}": count
                for (kind, window), count in sorted(self.prior_applications.items())
            },
            "other_identities": {
                kind.value: n for kind, n in sorted(self.other_identities.items())
            },
            "blacklisted": sorted(kind.value for kind in self.blacklisted),
            "ring_identities": self.ring_identities,
        }

    @classmethod
    def from_dict(cls, data: FraudSignalsJson) -> FraudSignals:
        prior: dict[tuple[AttributeKind, VelocityWindow], int] = {}
        for key, count in data["prior_applications"].items():
            kind, window = key.split(":")
            prior[AttributeKind(kind), VelocityWindow(window)] = int(count)
        return cls(
            prior_applications=prior,
            other_identities={
                AttributeKind(k): int(n) for k, n in data["other_identities"].items()
            },
            blacklisted=frozenset(AttributeKind(kind) for kind in data["blacklisted"]),
            ring_identities=int(data["ring_identities"]),
        )


def get_ring_attribute_hashes(
    facts: ApplicationFacts, config: FraudRuleConfig
) -> tuple[bytes, ...]:
    """The hashes that link this application into the ring index, in config order."""
    return tuple(
        facts.attribute_hashes[kind]
        for kind in config.ring_link_kinds
        if kind != AttributeKind.ID and kind in facts.attribute_hashes
    )


def get_sharing_windows(config: FraudRuleConfig) -> dict[AttributeKind, timedelta]:
    """The sharing rules' lookback per attribute."""
    return {
        AttributeKind.DEVICE: timedelta(days=config.device_shared.window_days),
        AttributeKind.PHONE: timedelta(days=config.phone_shared.window_days),
    }


def gather_signals(
    facts: ApplicationFacts, history: FraudHistory, config: FraudRuleConfig
) -> FraudSignals:
    """Query `history` once for every signal the configured rules use."""
    until = facts.applied_at
    prior: dict[tuple[AttributeKind, VelocityWindow], int] = {}
    for kind in config.velocity:
        value_hash = facts.attribute_hashes.get(kind)
        if value_hash is None:
            continue
        for window in VelocityWindow:
            span = Window(until - window.duration, until)
            prior[kind, window] = history.fetch_application_count(kind, value_hash, span)
    others: dict[AttributeKind, int] = {}
    for kind, window_duration in get_sharing_windows(config).items():
        value_hash = facts.attribute_hashes.get(kind)
        if value_hash is not None:
            others[kind] = history.fetch_other_identity_count(
                kind, value_hash, facts.identity_hash, Window(until - window_duration, until)
            )
    blacklisted = frozenset(
        kind
        for kind in config.blacklist_kinds
        if kind in facts.attribute_hashes
        and history.fetch_is_blacklisted(kind, facts.attribute_hashes[kind])
    )
    ring = history.fetch_ring_size(facts.identity_hash, get_ring_attribute_hashes(facts, config))
    return FraudSignals(prior, others, blacklisted, ring)
