"""`creditnet verify --watch --dispute` on anvil, as a partner runs it: started before the
node proposes anything, it learns of each proposal from the lender's partner feed, says
OK for an honest cycle and disputes, within its window, a cycle the lender altered after
signing; restarted from its state file, it disputes nothing twice.

The node's settlement machinery is `tests.e2e.test_settlement_e2e`'s (books, signer
quorum, relayer, indexer); its API is served on a local port; the watcher is the real
command in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from node_api.auth.keys import Role, create_api_key
from node_api.cli.serve import ThreadServer
from node_api.http.app import create_app
from node_api.kernel.chain import CycleStatus
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.lending.lines import credit_line_table
from oracles.anvil import pick_free_port
from settlement.cycle_close import close_settlement_cycle
from settlement.netting import ClosedCycle
from tests.e2e.test_settlement_e2e import (
    PAYOUT_INDEX,
    PEPPER,
    SALTS,
    Node,
    _alter_after_signing,
    _books_day,
    node,
    sqlite_only,
)
from tests.integration.settlement.books import BANK_A, LENDER, Books

__all__ = ["node"]  # a fixture
pytestmark = pytest.mark.chain


def _second_day(node: Node) -> ClosedCycle:
    """The next business day on the books `_books_day` set up: a purchase co-funded by
    bank-a and a repayment; closed and signed."""
    with node.database.engine.connect() as conn:
        line_ids = [
            int(line_id)
            for line_id in conn.execute(
                select(credit_line_table.c.id).order_by(credit_line_table.c.id)
            ).scalars()
        ]
    books = Books(node.database, line_ids=line_ids)
    books.purchase(line_ids[1], 45_000)
    books.repay(line_ids[0], 20_000)
    cycle = close_settlement_cycle(node.database, books.end_day(), node.signers, salts=SALTS)
    assert {LENDER, BANK_A} <= set(cycle.partner_ids)
    return cycle


def _watch_command(node: Node, api_url: str, api_key: str, state: Path, *limits: str) -> list[str]:
    return [
        sys.executable, "-m", "node_api.cli", "verify", "--watch", "--dispute",
        "--partner", str(BANK_A), "--api", api_url, "--key", api_key,
        "--rpc", node.relayer.sender.rpc.url, "--clearing-house", node.clearing_house,
        "--state", str(state), *limits,
    ]  # fmt: skip


def _partner_key(database: Database) -> str:
    with database.session() as session:
        return create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=BANK_A)


@sqlite_only
def test_verify_watch_disputes_an_altered_cycle_in_its_window_and_passes_an_honest_one(
    node: Node, tmp_path: Path
) -> None:
    honest = _books_day(node)
    altered = _second_day(node)
    altered_entry = _alter_after_signing(node.database, altered.cycle_id, BANK_A)

    server = ThreadServer(
        create_app(Settings(data_dir=tmp_path), database=node.database),
        pick_free_port("127.0.0.1"),
    )
    server.start()
    state = tmp_path / "watch.json"
    env = {
        **os.environ,
        "CREDITNET_PARTNER_PRIVATE_KEY": node.accounts.account(PAYOUT_INDEX["bank-a"]).key.hex(),
    }
    command = _watch_command(
        node, server.url, _partner_key(node.database), state, "--max-cycles", "2",
        "--timeout", "150",
    )  # fmt: skip
    watcher = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        node.sync()  # the relayer proposes both cycles; the indexer sees them; the feed tells
        out, err = watcher.communicate(timeout=180)
        lines = out.splitlines()
        assert watcher.returncode == 1, (out, err)
        assert len(lines) == 2, (out, err)
        assert lines[0].startswith(f"OK cycle {honest.cycle_id}: "), lines
        assert lines[1].startswith(f"FAIL cycle {altered.cycle_id}: "), lines
        assert f"entry {altered_entry} (" in lines[1]
        assert "does not prove against the on-chain root" in lines[1]
        assert "; disputed in 0x" in lines[1]
        assert node.chain_status(altered.cycle_id) is CycleStatus.DISPUTED
        assert node.chain_status(honest.cycle_id) is CycleStatus.PROPOSED
        verdicts = json.loads(state.read_text())["checked"]
        assert verdicts[str(honest.cycle_id)] == "ok"
        assert verdicts[str(altered.cycle_id)].startswith("disputed 0x")

        node.sync()  # the dispute is indexed: the feed now says `disputed`
        command = _watch_command(
            node, server.url, _partner_key(node.database), state, "--timeout", "4"
        )
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert (again.returncode, again.stdout) == (0, ""), again.stderr
        assert json.loads(state.read_text())["checked"] == verdicts
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        server.stop()

    node.pass_dispute_window()
    node.sync()
    assert node.chain_status(honest.cycle_id) is CycleStatus.FINALIZED
    assert node.chain_status(altered.cycle_id) is CycleStatus.DISPUTED
