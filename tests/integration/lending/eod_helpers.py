"""Products, lines, activity and snapshots shared by the end-of-day tests."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, make_url

from node_api.http.renderers import render_use
from node_api.idempotency import KeyClaim
from node_api.kernel.db import Database
from node_api.ledger.balances import fetch_balance_drift, fetch_line_balances, fetch_trial_balance
from node_api.ledger.business_date import set_business_date
from node_api.ledger.schema import ledger_account_table, posting_batch_table, posting_table
from node_api.lending.bill_tables import bill_charge_table, bill_outcome_table, bill_table
from node_api.lending.core.batch import run_use_batch
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind, UseRequest
from node_api.lending.eod import run_eod_through
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.installment_tables import installment_plan_table, installment_table
from node_api.lending.limits import ProductGroup
from node_api.lending.lines import LineOpening, ProductLimit, open_credit_line
from node_api.lending.repayments import Repayment, repay
from tests.db_fixtures import PG_ADMIN_URL
from tests.integration.lending.helpers import product_data, register

_keys = itertools.count()


def eod_product_data(code: str = "BILL1", **changes: Any) -> dict[str, Any]:
    """A revolving product: 500 ppm a day, bill day 5 (or 20), due 20 days after the bill,
    3 grace days, minimum 10% (floor 5,000), late fee 3,000 (per-bill cap 5,000), penalty
    500 ppm a day, plans of 3/6/12 months at 12% a year (7 days to cancel, 1% early
    repayment fee), 70% funded by bank-a."""
    data = product_data(
        code,
        fees={"late_fee_fixed_fen": 3_000, "late_fee_cap_per_bill_fen": 5_000,
              "early_repayment_fee_bps": 100},
        installment={"tenors_months": [3, 6, 12], "pricing_method": "annuity",
                     "rate_bps": 1200, "cancellation_days": 7},
    )  # fmt: skip
    data.update(changes)
    return data


def open_eod_line(
    conn: Connection,
    caches: LendingCaches,
    opened_on: date,
    *,
    customer_ref: str = "cust-1",
    data: dict[str, Any] | None = None,
    bill_day: int = 5,
    limit_fen: int = 10_000_000,
) -> int:
    terms = register(conn, data or eod_product_data())
    opening = LineOpening(
        customer_ref,
        opened_on,
        limit_fen,
        {ProductGroup.PURCHASE: limit_fen},
        [ProductLimit(terms.product_code, terms.version, limit_fen)],
        bill_day=bill_day,
    )
    return open_credit_line(conn, opening, caches.products)


def buy(
    database: Database,
    caches: LendingCaches,
    line_id: int,
    amount_fen: int,
    as_of: date | None = None,
) -> int:
    """A purchase through the batch path; returns its id."""
    request = UseRequest(
        kind=UseKind.PURCHASE, credit_line_id=line_id, amount_fen=amount_fen, currency="CNY",
        channel_id="app", claim=KeyClaim("eod-test", f"k-{next(_keys)}", "h"),
        merchant_id="m-1", as_of=as_of,
    )  # fmt: skip
    with database.engine.begin() as conn:
        result = run_use_batch(conn, caches, [request], render_use)[0]
    assert result.status_code == 201, result.body
    return int(result.body["id"])


def pay(
    database: Database,
    caches: LendingCaches,
    line_id: int,
    amount_fen: int,
    as_of: date | None = None,
) -> Repayment:
    with database.engine.begin() as conn:
        return repay(
            conn, caches, line_id=line_id, amount_fen=amount_fen, currency="CNY", as_of=as_of
        )


def balances(database: Database, line_id: int) -> dict[str, int]:
    """A line's non-zero balances by account type (normal side)."""
    with database.engine.connect() as conn:
        return {kind.value: fen for kind, fen in fetch_line_balances(conn, line_id).items() if fen}


def node_balance(database: Database, code: str) -> int:
    with database.engine.connect() as conn:
        accounts = ledger_account_table
        value = conn.execute(select(accounts.c.balance_fen).where(accounts.c.code == code)).scalar()
        return int(value or 0)


def check_ledger(conn: Connection) -> None:
    """The books balance, running balances equal their postings, no floor is crossed."""
    assert fetch_trial_balance(conn).balanced
    assert fetch_balance_drift(conn) == []


def snapshot(database: Database) -> dict[str, Any]:
    """Everything end of day wrote, keyed by business facts (never by generated ids, which
    a rolled-back transaction may have consumed)."""
    with database.engine.connect() as conn:
        return {
            "accounts": _rows(
                conn, "SELECT code, balance_fen FROM ledger_account WHERE balance_fen <> 0"
            ),
            "batches": _batches(conn),
            "bills": _table(conn, bill_table, ["id"]),
            "outcomes": _joined(conn, bill_outcome_table, ["bill_id"]),
            "charges": _joined(conn, bill_charge_table, ["id", "bill_id"]),
            "states": _table(conn, line_delinquency_table, []),
            "plans": _table(conn, installment_plan_table, ["id"]),
            "installments": _table(conn, installment_table, ["id", "plan_id", "bill_id"]),
            "business_date": conn.execute(text("SELECT as_of FROM business_date")).scalar(),
        }


def _rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in conn.execute(text(sql)))


def _table(conn: Connection, table: Any, skipped: list[str]) -> list[tuple[Any, ...]]:
    columns = [column for column in table.c if column.name not in skipped]
    return sorted(tuple(str(v) for v in row) for row in conn.execute(select(*columns)))


def _joined(conn: Connection, table: Any, skipped: list[str]) -> list[tuple[Any, ...]]:
    """Rows of a table hanging off a bill, with the bill's (line, date) instead of its id."""
    bills = bill_table
    columns = [column for column in table.c if column.name not in skipped]
    query = select(bills.c.credit_line_id, bills.c.bill_date, *columns).join(
        bills, bills.c.id == table.c.bill_id
    )
    return sorted(tuple(str(v) for v in row) for row in conn.execute(query))


def _batches(conn: Connection) -> list[tuple[Any, ...]]:
    batches, postings, accounts = posting_batch_table, posting_table, ledger_account_table
    lines: dict[str, list[tuple[str, int]]] = {}
    query = (
        select(batches.c.business_key, accounts.c.code, postings.c.amount_fen)
        .join(postings, postings.c.batch_id == batches.c.id)
        .join(accounts, accounts.c.id == postings.c.account_id)
    )
    for key, code, amount in conn.execute(query):
        lines.setdefault(str(key), []).append((str(code), int(amount)))
    headers = conn.execute(select(batches.c.business_key, batches.c.kind, batches.c.as_of))
    return sorted(
        (str(k), str(kind), str(day), tuple(sorted(lines.get(str(k), []))))
        for k, kind, day in headers
    )


@contextmanager
def cloned(database: Database) -> Iterator[Database]:
    """A copy of the database (same schema and data), dropped afterwards."""
    database.dispose()
    if database.backend == "sqlite":
        path = make_url(database.url).database
        assert path is not None
        copy = path + ".clone"
        shutil.copyfile(path, copy)
        clone = Database(f"sqlite:///{copy}")
        yield clone
        clone.dispose()
        return
    name = make_url(database.url).database
    clone_name = f"{name}_clone"
    admin = Database(PG_ADMIN_URL)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{clone_name}"'))
        # A template copy needs the source to itself: idle pool connections that earlier
        # tests of this worker left behind (apps' async engines, one per event loop) go.
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(text(f'CREATE DATABASE "{clone_name}" TEMPLATE "{name}"'))
    clone = Database(database.url.rsplit("/", 1)[0] + f"/{clone_name}")
    try:
        yield clone
    finally:
        clone.dispose()
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{clone_name}" WITH (FORCE)'))
        admin.dispose()


def reset(database: Database, request: pytest.FixtureRequest) -> None:
    """Empty every table (a fresh copy of the migrated template on SQLite)."""
    database.dispose()
    if database.backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = make_url(database.url).database
        assert path is not None
        shutil.copyfile(template, path)
        return
    from tests.db_fixtures import _truncate_all

    _truncate_all(database.engine)


def seed_billed_lines(database: Database, opened: date, customer_refs: list[str]) -> None:
    """One line per customer opened on `opened` with a purchase (50,000 fen + 1,000 per
    line), end of day through the 9th (the bill of the 5th is cut); then by turn a line
    pays its bill in full, the minimum (5,000 fen), or nothing."""
    caches = LendingCaches()
    with database.engine.begin() as conn:
        set_business_date(conn, opened)
        lines = [open_eod_line(conn, caches, opened, customer_ref=ref) for ref in customer_refs]
    for index, line_id in enumerate(lines):
        buy(database, caches, line_id, 50_000 + 1_000 * index)
    run_eod_through(database, date(2025, 3, 9))
    for index, line_id in enumerate(lines):
        amount_fen = [50_000 + 1_000 * index, 5_000, 0][index % 3]
        if amount_fen:
            pay(database, caches, line_id, amount_fen)
