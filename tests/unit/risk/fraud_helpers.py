"""Builders shared by the fraud tests: hashed facts without any vault or PII."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from node_api.risk.fraud_config import AttributeKind
from node_api.risk.fraud_facts import ApplicationFacts, Gender

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
BIRTH_DATE = date(1990, 5, 17)


def h(label: str) -> bytes:
    """A stand-in for a keyed lookup hash."""
    return hashlib.sha256(label.encode()).digest()


def facts(
    identity: str = "id-1",
    *,
    phone: str | None = "phone-1",
    device: str | None = "device-1",
    ip: str | None = "ip-1",
    at: datetime = NOW,
    declared_birth_date: date | None = None,
    declared_gender: Gender | None = None,
) -> ApplicationFacts:
    labels = {
        AttributeKind.ID: identity,
        AttributeKind.PHONE: phone,
        AttributeKind.DEVICE: device,
        AttributeKind.IP: ip,
    }
    return ApplicationFacts(
        applied_at=at,
        attribute_hashes={kind: h(label) for kind, label in labels.items() if label is not None},
        id_birth_date=BIRTH_DATE,
        id_gender=Gender.MALE,
        declared_birth_date=declared_birth_date,
        declared_gender=declared_gender,
    )
