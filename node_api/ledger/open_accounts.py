"""Opening a new line's accounts set-based, inside the statement that inserts the line.

`accounts.ensure_accounts` writes the same rows with an executemany (one INSERT per row
sent to the server); on PostgreSQL the statement that opens a line (`lending.lines`)
inserts the line row and, in data-modifying CTEs of the same statement, its limit tree
and every account it needs: `INSERT ... SELECT FROM line, unnest(...) ORDER BY position
ON CONFLICT (customer_id, code) DO NOTHING`. The line's id is known only inside that
statement, so its accounts are described with `PLACEHOLDER_LINE_ID` and the statement
puts the real id into their codes and `credit_line_id`.

The rows are those of `accounts.account_rows`, inserted in the same code order (every
per-line code shares the line's prefix, which sorts before `node:` and `partner:`), so
the ids the sequence hands out (one per row, an existing account's too, as a conflicting
row still draws its default) and the order rows are locked in are the executemany's:
two transactions creating overlapping sets wait for each other instead of deadlocking.
Existing accounts are left untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sqlalchemy.engine import Dialect

from node_api.ledger.accounts import (
    LINE_CODE_PREFIX_SQL,
    AccountSpec,
    account_rows,
    line_code_prefix,
)
from node_api.ledger.sql import SqlValue, column_arrays

PLACEHOLDER_LINE_ID: Final = 0
"""The line id a line's account specs are built with before the line exists (the id
sequence starts at 1, so no line has it)."""

_COLUMNS = (
    ("code", "VARCHAR"),
    ("account_type", "VARCHAR"),
    ("credit_line_id", "BIGINT"),
    ("partner_ref", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("normal_sign", "SMALLINT"),
    ("floor_fen", "BIGINT"),
    ("balance_fen", "BIGINT"),
    ("customer_id", "VARCHAR"),
)
_GIVEN = (*_COLUMNS, ("on_line", "BOOLEAN"))
_NAMES = ", ".join(name for name, _ in _COLUMNS)
_ARRAYS = ", ".join(f"CAST(:account_{name} AS {kind}[])" for name, kind in _GIVEN)
_ALIASES = ", ".join(name for name, _ in _GIVEN)
_LINE_CODE = LINE_CODE_PREFIX_SQL.format(line_id="line.id")
_PICKED = ", ".join(
    f"CASE WHEN a.on_line THEN {_LINE_CODE} || a.code ELSE a.code END"
    if name == "code"
    else "CASE WHEN a.on_line THEN line.id END"
    if name == "credit_line_id"
    else f"a.{name}"
    for name, _ in _COLUMNS
)


def line_accounts_cte(name: str) -> str:
    """`<name> AS (INSERT INTO ledger_account ...)`: the accounts of the line that the
    statement's CTE `line` inserts (`RETURNING id`); none if it inserted no line. The
    parameters are `line_account_params`'."""
    return (
        f"{name} AS (INSERT INTO ledger_account ({_NAMES}) SELECT {_PICKED} "  # noqa: S608
        f"FROM line CROSS JOIN unnest({_ARRAYS}) WITH ORDINALITY AS a({_ALIASES}, n) "
        "ORDER BY a.n ON CONFLICT (customer_id, code) DO NOTHING)"
    )


def line_account_params(
    specs: Iterable[AccountSpec], dialect: Dialect
) -> dict[str, str | list[SqlValue]]:
    """The parameters of `line_accounts_cte` for `specs`, whose per-line accounts are
    those of line `PLACEHOLDER_LINE_ID` (codes with its prefix; the statement writes the
    new line's)."""
    prefix = line_code_prefix(PLACEHOLDER_LINE_ID)
    rows: list[dict[str, SqlValue]] = []
    for row in account_rows(specs):
        code = str(row["code"])
        on_line = row["credit_line_id"] is not None
        if on_line and (
            row["credit_line_id"] != PLACEHOLDER_LINE_ID or not code.startswith(prefix)
        ):
            raise ValueError(f"a per-line account of another line: {code}")
        rows.append({**row, "code": code[len(prefix) :] if on_line else code, "on_line": on_line})
    arrays = column_arrays(rows, [name for name, _ in _GIVEN], dialect)
    return {f"account_{name}": values for name, values in arrays.items()}
