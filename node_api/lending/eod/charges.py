"""Past-due charges attributed to bills (`bill_charge`): the unpaid minimum made past due
at the due date, the late fee, the daily penalty interest. End of day reads them to find
a line's oldest unpaid bill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.base import Executable

from node_api.kernel.money import Fen
from node_api.ledger.sql import Row, column_arrays
from node_api.lending.bill_tables import bill_charge_table, bill_table


class ChargeKind(StrEnum):
    PAST_DUE = "past_due"
    LATE_FEE = "late_fee"
    PENALTY = "penalty"


@dataclass(frozen=True, slots=True)
class BillCharge:
    """An amount made past due on `as_of` because of the bill `bill_id`."""

    bill_id: int
    credit_line_id: int
    as_of: date
    kind: ChargeKind
    amount_fen: Fen
    principal_fen: int = 0
    """Of a past-due move, the principal (the bureau ages overdue principal by bill)."""


CHARGE_COLUMNS = ("bill_id", "credit_line_id", "as_of", "kind", "amount_fen", "principal_fen")
"""The `bill_charge` columns a charge fills; `customer_id` is its bill's, read by the
insert itself (so every caller writes the right one)."""


_STATEMENTS: dict[str, Executable] = {}
"""`_insert_statement` by dialect name, built once."""


def _insert_statement(dialect: Dialect) -> Executable:
    statement = _STATEMENTS.get(dialect.name)
    if statement is None:
        statement = _STATEMENTS.setdefault(dialect.name, _build_insert(dialect))
    return statement


def _build_insert(dialect: Dialect) -> Executable:
    """INSERT ... SELECT of charges, each with its bill's customer: on PostgreSQL one
    statement of one array per column (`unnest`, in array order); elsewhere one row per
    parameter set (executemany)."""
    table, bills = bill_charge_table, bill_table
    if dialect.name == "postgresql":
        # Identifiers come from the table definitions; every value is a bound array.
        names = ", ".join(CHARGE_COLUMNS)
        arrays = ", ".join(
            f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])"
            for name in CHARGE_COLUMNS
        )
        picked = ", ".join(f"v.{name}" for name in CHARGE_COLUMNS)
        return text(
            f"INSERT INTO {table.name} ({names}, customer_id) SELECT {picked}, "  # noqa: S608
            f"(SELECT b.customer_id FROM {bills.name} b WHERE b.id = v.bill_id) "
            f"FROM unnest({arrays}) AS v({names})"
        )
    values = {name: bindparam(name, type_=table.c[name].type) for name in CHARGE_COLUMNS}
    customer = select(bills.c.customer_id).where(bills.c.id == values["bill_id"])
    return table.insert().from_select(
        [*CHARGE_COLUMNS, "customer_id"], select(*values.values(), customer.scalar_subquery())
    )


def insert_bill_charges(conn: Connection, charges: Sequence[BillCharge]) -> None:
    """Insert the charges, each with its bill's customer (read by the same statement)."""
    if not charges:
        return
    rows: list[Row] = [
        {
            "bill_id": charge.bill_id,
            "credit_line_id": charge.credit_line_id,
            "as_of": charge.as_of,
            "kind": charge.kind.value,
            "amount_fen": charge.amount_fen,
            "principal_fen": charge.principal_fen,
        }
        for charge in charges
    ]
    statement = _insert_statement(conn.dialect)
    if conn.dialect.name == "postgresql":
        conn.execute(statement, column_arrays(rows, CHARGE_COLUMNS, conn.dialect))
    else:
        conn.execute(statement, rows)


def sum_charges_fen(charges: Sequence[BillCharge]) -> Fen:
    return Fen(sum(charge.amount_fen for charge in charges))
