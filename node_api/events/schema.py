"""The versioned event schema (`docs/EVENTS.md` describes every type and field).

Every event is one JSON object, the envelope below with a type-specific `data`:

    {"schema": "creditnet.event/1", "id": "batch:1042", "type": "purchase.authorized",
     "as_of": "2026-01-05", "data": {...}}

`id` is stable: the same fact always gets the same id, which is also the JetStream
message id (`Nats-Msg-Id`), so a re-publication after a crash is dropped by the
stream's de-duplication. Amounts are integer fen; ids are the books' ids or 0x-hex
chain ids. No event carries personal data: no name, identity number, phone or
address, and no borrower reference.

A change that only adds a field or a type keeps version 1; renaming or removing a field
or changing its meaning is version 2, published beside version 1 until consumers move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

import orjson

SCHEMA_VERSION: Final = 1
SCHEMA_NAME: Final = f"creditnet.event/{SCHEMA_VERSION}"


class EventType(StrEnum):
    """Every event type of schema version 1 (the subject is `<prefix>.<type>`)."""

    AGREEMENT_OPENED = "agreement.opened"
    AGREEMENT_ANCHORED = "agreement.anchored"
    PURCHASE_AUTHORIZED = "purchase.authorized"
    PURCHASE_REFUNDED = "purchase.refunded"
    DRAWDOWN_POSTED = "drawdown.posted"
    REPAYMENT_POSTED = "repayment.posted"
    REPAYMENT_REVERSED = "repayment.reversed"
    LINE_CHARGED_OFF = "line.charged_off"
    BILL_CUT = "bill.cut"
    DELINQUENCY_CHANGED = "delinquency.changed"
    CYCLE_PROPOSED = "cycle.proposed"
    CYCLE_FINALIZED = "cycle.finalized"
    CYCLE_FUNDED = "cycle.funded"


@dataclass(frozen=True)
class BusinessEvent:
    """One event as published."""

    id: str
    type: EventType
    as_of: date | None
    data: dict[str, Any]

    def to_document(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "id": self.id,
            "type": self.type.value,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "data": self.data,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_document())

    def get_subject(self, prefix: str) -> str:
        return f"{prefix}.{self.type.value}"
