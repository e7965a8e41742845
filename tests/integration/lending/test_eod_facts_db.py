"""What every end-of-day batch reads and writes first, on both databases: `load_facts`
locks the lines and reads only the account types a step asks for (remembering exactly
those accounts' ids), and `update_line_states` creates a missing state row with its
values and updates an existing one. Also the account cache's `remember_all`."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.ledger.accounts import (
    AccountIdCache,
    AccountRef,
    AccountType,
    line_account_code,
)
from node_api.ledger.schema import ledger_account_table
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod.context import EodContext, load_facts
from node_api.lending.eod.state import fetch_line_states, update_line_states
from node_api.lending.eod.step_bill import BILL_TYPES
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.lines import LineStatus
from tests.integration.lending.eod_helpers import buy, open_eod_line

OPENED = date(2025, 3, 1)
AS_OF = date(2025, 3, 10)


def _open_lines(database: Database, caches: LendingCaches, count: int) -> list[int]:
    with database.engine.begin() as conn:
        return [
            open_eod_line(conn, caches, OPENED, customer_ref=f"c-{i}", bill_day=(5, 20)[i % 2])
            for i in range(count)
        ]


def _account_ids(database: Database, line_id: int) -> dict[str, int]:
    table = ledger_account_table
    with database.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.code, table.c.id).where(table.c.credit_line_id == line_id)
        )
        return {str(code): int(account_id) for code, account_id in rows}


def test_load_facts_reads_the_asked_types_and_remembers_their_ids(database: Database) -> None:
    caches = LendingCaches()
    first, second = _open_lines(database, caches, 2)
    buy(database, caches, first, 12_345, OPENED)
    ctx = EodContext()
    with database.engine.begin() as conn:
        facts = load_facts(conn, ctx, [second, first, 999_999], BILL_TYPES)
    assert sorted(facts) == [first, second]  # the unknown line is dropped
    assert facts[first].status is LineStatus.ACTIVE
    assert (facts[first].opened_on, facts[first].bill_day) == (OPENED, 5)
    assert facts[second].bill_day == 20
    assert facts[first].terms.product_code == "BILL1"
    assert facts[first].balances[AccountType.PRINCIPAL_UNBILLED] == 12_345
    assert set(facts[first].balances.values()) == {0, 12_345}
    assert set(facts[second].balances.values()) == {0}
    # Exactly the asked types' accounts were remembered, with their ids.
    expected = {
        line_account_code(line_id, kind): ids[line_account_code(line_id, kind)]
        for line_id in (first, second)
        for ids in [_account_ids(database, line_id)]
        for kind in BILL_TYPES
    }
    assert AccountType.INTEREST_SUSPENDED not in BILL_TYPES
    cached = ctx.caches.accounts._refs
    assert {code: ref[0] for code, ref in cached.items()} == expected


def test_update_line_states_creates_missing_rows_with_their_values(database: Database) -> None:
    caches = LendingCaches()
    old, new = _open_lines(database, caches, 2)
    with database.engine.begin() as conn:
        update_line_states(conn, date(2025, 3, 5), {old: {"days_past_due": 4}}, ["days_past_due"])
    with database.engine.begin() as conn:
        update_line_states(
            conn,
            AS_OF,
            {old: {"revolving": True}, new: {"revolving": True}},
            ["revolving"],
        )
    with database.engine.connect() as conn:
        states = fetch_line_states(conn, [old, new])
        rows = conn.execute(
            select(line_delinquency_table.c.credit_line_id).order_by(
                line_delinquency_table.c.credit_line_id
            )
        ).scalars()
        assert list(rows) == [old, new]
    assert (states[old].as_of, states[old].revolving, states[old].days_past_due) == (
        AS_OF,
        True,
        4,
    )
    assert (states[new].as_of, states[new].revolving, states[new].days_past_due) == (
        AS_OF,
        True,
        0,
    )
    assert states[new].bucket.value == "M0"
    assert states[new].charged_off_on is None


def test_remember_all_empties_a_full_cache_first() -> None:
    cache = AccountIdCache(max_entries=3)
    cache.remember_all({"a": (1, 1, 0), "b": (2, -1, None)})
    assert cache._refs == {"a": (1, 1, 0), "b": (2, -1, None)}
    cache.remember_all({"c": (3, 1, None), "d": (4, 1, None)})
    assert cache._refs == {"c": (3, 1, None), "d": (4, 1, None)}
    cache.remember_all({"e": (5, 1, None), "f": (6, 1, None), "g": (7, 1, None), "h": (8, 1, 0)})
    assert cache._refs == {"c": (3, 1, None), "d": (4, 1, None)}  # more than it can hold
    cache.remember("e", AccountRef(5, 1, None))
    assert len(cache._refs) == 3
