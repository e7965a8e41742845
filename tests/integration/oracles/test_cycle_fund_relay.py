"""The lender's funding of a finalized cycle goes through the outbox: the treasury's own
relayer approves exactly the debt and then funds it. With an empty treasury nothing is
sent: the simulated revert is decoded (`ERC20InsufficientBalance(...)`), kept on the row
and on the status, and the funding is retried after a top-up; a funding already on-chain
is confirmed without another transaction (exactly once)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from node_api.kernel.chain import CycleStatus
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox import CycleFinalization, CycleFundApproval, CycleFunding
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from oracles.abi_codec import DeployedContracts
from oracles.chain import LocalAccounts
from oracles.relay_kinds import RelayAccount
from oracles.relay_store import LANDED_EARLIER
from oracles.relayer import Relayer, RelayerConfig
from oracles.status import fetch_oracle_status
from oracles.tables import SUBMISSION_TABLE
from oracles.tx_sender import JsonRpcClient, TxSender
from tests.integration.oracles.conftest import OwnChain
from tests.integration.oracles.test_cycle_relay import (
    BOOKS,
    DEBTOR,
    DISPUTE_WINDOW_S,
    _call,
    _contract,
    _partners,
    _proposal,
    _relay,
    _signer_set,
)
from tests.unit.oracles.oracle_helpers import enqueue_all, fetch_outbox

pytestmark = pytest.mark.chain
DUE_FEN = 2_500
TREASURY_INDEX = 8


def _finalized_cycle(database: Database, chain: OwnChain) -> None:
    gathering = _signer_set(chain, tampered=0).gather_cycle_signatures(BOOKS)
    enqueue_all(database, [*_partners(), _proposal(gathering.signatures)])
    enqueue_all(database, [CycleFinalization(BOOKS.cycle_id)])
    _relay(database, chain)
    w3 = chain.connect()
    w3.provider.make_request("evm_increaseTime", [DISPUTE_WINDOW_S + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    _due_now(database)
    _relay(database, chain)


def _due_now(database: Database) -> None:
    with database.engine.begin() as conn:
        conn.execute(sa.update(OUTBOX_TABLE).values(available_at=None))


def _treasury_relayer(database: Database, chain: OwnChain) -> Relayer:
    account = LocalAccounts().account(TREASURY_INDEX)
    sender = TxSender(JsonRpcClient(chain.anvil.rpc_url), account, chain.manifest.chain_id)
    contracts = DeployedContracts.from_manifest(chain.manifest, chain.compiled)
    return Relayer(database, sender, contracts, RelayerConfig(), account=RelayAccount.TREASURY)


def _submission_kinds(database: Database) -> list[str]:
    with database.engine.connect() as conn:
        return [str(kind) for kind in conn.execute(sa.select(SUBMISSION_TABLE.c.kind)).scalars()]


def _rows(database: Database) -> dict[str, Any]:
    return {row.kind: row for row in fetch_outbox(database)}


def test_an_empty_treasury_shows_the_decoded_revert_and_funds_after_a_top_up(
    database: Database, own_chain: OwnChain, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _finalized_cycle(database, own_chain)
    house = _contract(own_chain, "ClearingHouse")
    token = _contract(own_chain, "SettlementToken")
    treasury = LocalAccounts().account(TREASURY_INDEX)
    enqueue_all(
        database,
        [
            CycleFundApproval(BOOKS.cycle_id, DEBTOR, DUE_FEN, house.address),
            CycleFunding(BOOKS.cycle_id, DEBTOR, DUE_FEN),
        ],
    )
    _relay(database, own_chain)  # the node's relayer leaves the treasury's kinds alone
    assert _rows(database)["cycle_fund_approve"].status == OutboxStatus.PENDING

    relayer = _treasury_relayer(database, own_chain)
    with caplog.at_level(logging.WARNING, logger="oracles.relayer"):
        relayer.run_until_idle(30)
    rows = _rows(database)
    assert rows["cycle_fund_approve"].status == OutboxStatus.CONFIRMED
    funding = rows["cycle_fund"]
    assert funding.status == OutboxStatus.PENDING and funding.available_at is not None
    expected = f"ERC20InsufficientBalance(sender={treasury.address}, balance=0, needed={DUE_FEN})"
    assert funding.last_error == f"not yet: {expected}"
    assert "cycle_fund" not in _submission_kinds(database)  # simulated, no gas spent
    (logged,) = [
        r
        for r in caplog.records
        if r.getMessage() == "outbox item reverted"
        and str(getattr(r, "business_key", "")).startswith("cycle_fund:")
    ]
    assert getattr(logged, "error") == expected  # noqa: B009 - a log record's extra field
    status = fetch_oracle_status(database, Settings(data_dir=tmp_path), None)
    (shown,) = status.last_errors["cycle_fund"]
    assert shown.business_key == f"cycle_fund:{BOOKS.cycle_id}:{DEBTOR}"
    assert expected in shown.error

    deployer = LocalAccounts().deployer
    _call(own_chain, deployer, token, "mint", treasury.address, DUE_FEN)
    _due_now(database)
    relayer.run_until_idle(30)
    assert _rows(database)["cycle_fund"].status == OutboxStatus.CONFIRMED
    assert house.functions.getCycle(BOOKS.cycle_id).call()[1] == CycleStatus.FUNDED
    assert token.functions.balanceOf(treasury.address).call() == 0
    assert _submission_kinds(database).count("cycle_fund") == 1

    # A crash that lost the confirmation: the check before sending finds it on-chain.
    with database.engine.begin() as conn:
        conn.execute(
            sa.update(OUTBOX_TABLE)
            .where(OUTBOX_TABLE.c.kind == "cycle_fund")
            .values(status=OutboxStatus.PENDING.value, tx_hash=None)
        )
    relayer.run_until_idle(30)
    funding = _rows(database)["cycle_fund"]
    assert funding.status == OutboxStatus.CONFIRMED and funding.last_error == LANDED_EARLIER
    assert _submission_kinds(database).count("cycle_fund") == 1
