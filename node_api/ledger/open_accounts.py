"""Opening accounts set-based: a line's whole chart of accounts in one statement.

`accounts.ensure_accounts` writes the same rows with an executemany (one INSERT per
row sent to the server); on PostgreSQL `open_accounts` sends them all as one
`INSERT ... SELECT FROM unnest(...) ORDER BY position ON CONFLICT (code) DO NOTHING`.
The rows are those of `accounts.account_rows` and are inserted in the same code order,
so the ids the sequence hands out (one per row, an existing account's too, as a
conflicting row still draws its default) and the order rows are locked in are the
executemany's: two transactions creating overlapping sets wait for each other instead
of deadlocking. Existing accounts are left untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import AccountSpec, account_rows, ensure_accounts
from node_api.ledger.sql import column_arrays

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
_NAMES = ", ".join(name for name, _ in _COLUMNS)
_ARRAYS = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _COLUMNS)
_PICKED = ", ".join(f"v.{name}" for name, _ in _COLUMNS)
_INSERT = text(
    f"INSERT INTO ledger_account ({_NAMES}) SELECT {_PICKED} "  # noqa: S608 (constants only)
    f"FROM unnest({_ARRAYS}) WITH ORDINALITY AS v({_NAMES}, n) ORDER BY v.n "
    "ON CONFLICT (customer_id, code) DO NOTHING"
)


def open_accounts(conn: Connection, specs: Iterable[AccountSpec]) -> None:
    """Create the accounts that do not exist yet, in code order (one statement on
    PostgreSQL, `ensure_accounts` elsewhere)."""
    if conn.dialect.name != "postgresql":
        ensure_accounts(conn, specs)
        return
    rows = account_rows(specs)
    if rows:
        names = [name for name, _ in _COLUMNS]
        conn.execute(_INSERT, column_arrays(rows, names, conn.dialect))
