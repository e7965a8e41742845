"""Past-due charges attributed to bills (`bill_charge`): the unpaid minimum made past due
at the due date, the late fee, the daily penalty interest. End of day reads them to find
a line's oldest unpaid bill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.ledger.sql import bulk_insert
from node_api.lending.bill_tables import bill_charge_table


class ChargeKind(StrEnum):
    PAST_DUE = "past_due"
    LATE_FEE = "late_fee"
    PENALTY = "penalty"


@dataclass(frozen=True, slots=True)
class BillCharge:
    """An amount made past due on `as_of` because of the bill `bill_id`."""

    bill_id: int
    credit_line_id: int
    customer_id: str
    """The line's customer (the partitioning key, `node_api/schema/customer_keys.py`)."""
    as_of: date
    kind: ChargeKind
    amount_fen: Fen
    principal_fen: int = 0
    """Of a past-due move, the principal (the bureau ages overdue principal by bill)."""


def insert_bill_charges(conn: Connection, charges: Sequence[BillCharge]) -> None:
    if not charges:
        return
    rows = [
        {
            "bill_id": charge.bill_id,
            "credit_line_id": charge.credit_line_id,
            "customer_id": charge.customer_id,
            "as_of": charge.as_of,
            "kind": charge.kind.value,
            "amount_fen": charge.amount_fen,
            "principal_fen": charge.principal_fen,
        }
        for charge in charges
    ]
    bulk_insert(conn, bill_charge_table, rows)


def sum_charges_fen(charges: Sequence[BillCharge]) -> Fen:
    return Fen(sum(charge.amount_fen for charge in charges))
