"""The daily settlement pass and `creditnet settle`: finished business dates are closed in
order and proposed, an unfinished end of day holds its date back, and a second pass
does nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.kernel.db import Database
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.business_date import set_business_date
from node_api.lending.eod import checkpoint
from node_api.runtime.settlement_scheduler import fetch_dates_to_close, run_settlement_pass
from node_api.schema.migrate import migrate
from oracles.chain import LocalAccounts
from oracles.signers import LocalSigner, SignerSet, SigningDomain
from settlement.cycle_close import fetch_cycles, settlement_report_sources
from settlement.netting import CycleState, get_cycle_id
from settlement.salts import LeafSalts
from tests.integration.settlement.books import FIRST_DAY, Books

DOMAIN = SigningDomain(31337, "0x" + "11" * 20, "0x" + "22" * 20)
SALTS = LeafSalts(b"test-scheduler-leaf-salt-secret")


def _signers(database: Database) -> SignerSet:
    sources = settlement_report_sources(database, SALTS)
    return SignerSet(
        [LocalSigner(account, sources, DOMAIN) for account in LocalAccounts().signers(3)], 2
    )


def _proposals(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(OUTBOX_TABLE)
                .where(OUTBOX_TABLE.c.kind == OutboxKind.CYCLE_PROPOSE.value)
            ).scalar_one()
        )


def test_a_pass_closes_every_finished_date_in_order_and_a_second_pass_does_nothing(
    database: Database,
) -> None:
    books = Books(database)
    books.setup()
    books.purchase(books.line_ids[0], 40_000)
    first = books.end_day()
    second = books.end_day()  # a day without partner movements
    books.purchase(books.line_ids[1], 25_000, "pos")
    third = books.end_day()
    books.purchase(books.line_ids[2], 10_000)  # today: not finished, not closed

    done = run_settlement_pass(database, _signers(database), None, salts=SALTS)
    assert done.closed == [get_cycle_id(day) for day in (first, second, third)]
    assert done.proposed == [get_cycle_id(first), get_cycle_id(third)]
    with database.engine.connect() as conn:
        states = {cycle.cycle_id: cycle.state for cycle in fetch_cycles(conn)}
    assert states[get_cycle_id(second)] is CycleState.EMPTY
    assert _proposals(database) == 2

    again = run_settlement_pass(database, _signers(database), None, salts=SALTS)
    assert again.closed == [] and again.proposed == []
    assert _proposals(database) == 2


def test_an_unfinished_end_of_day_holds_its_date_back(database: Database) -> None:
    books = Books(database)
    books.setup()
    books.purchase(books.line_ids[0], 40_000)
    first = books.end_day()
    second = first + timedelta(days=1)
    with database.engine.begin() as conn:  # the second date's end of day started, not finished
        checkpoint.open_run(conn, second, ["accrue"])
        set_business_date(conn, second + timedelta(days=1))
    assert fetch_dates_to_close(database) == [first]


def test_nothing_to_close_before_the_first_business_day_ends(database: Database) -> None:
    books = Books(database)
    books.setup()
    books.purchase(books.line_ids[0], 40_000)
    assert fetch_dates_to_close(database) == []
    assert books.end_day() == FIRST_DAY
    assert fetch_dates_to_close(database) == [FIRST_DAY]


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_settle_command_freezes_a_cycle_and_prints_it(database: Database, tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'creditnet.db').resolve()}"
    migrate(url)
    node_database = Database(url)
    books = Books(node_database)
    books.setup()
    books.purchase(books.line_ids[0], 40_000)
    day = books.end_day()
    node_database.dispose()
    args = ["settle", "--cycle", day.strftime("%Y%m%d"), "--data-dir", str(tmp_path), "--no-sign"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["cycle_id"] == get_cycle_id(day)
    assert printed["state"] == "closed" and printed["entry_count"] > 0
