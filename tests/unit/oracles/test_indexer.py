"""The indexer stores each canonical event once, mirrors it, and survives reorgs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from web3 import Web3

from node_api.kernel.db import Database
from oracles.anvil import AnvilProcess, revert_to_snapshot, take_snapshot
from oracles.chain import LocalAccounts
from oracles.chain_mirror import EventRecord, apply_cycle_event, fold_subject, get_subject
from oracles.compiler import CompiledContracts
from oracles.indexer import FOLLOWED_CONTRACTS, fetch_indexer_checkpoint
from oracles.manifest import Manifest
from oracles.tables import CHAIN_AGREEMENT_TABLE, EVENT_TABLE
from tests.unit.oracles.oracle_helpers import (
    enqueue_all,
    fetch_chain_event_keys,
    fetch_event_keys,
    make_indexer,
    make_opening,
    make_relayer,
)


def _record(event: str, block: int, **args: object) -> EventRecord:
    return EventRecord("ClearingHouse", event, dict(args), block, 0, f"0x{block:064x}")


def test_cycle_mirror_follows_the_lifecycle_to_funded_and_claimed() -> None:
    proposed = _record(
        "CycleProposed",
        10,
        cycleId=7,
        entriesRoot="0x" + "11" * 32,
        entryCount=3,
        partnerIds=[1, 2],
        netPositions=[-300, 300],
        disputeDeadline=1_000,
    )
    records = [
        proposed,
        _record("CycleFinalized", 11, cycleId=7, entriesRoot="0x" + "11" * 32),
        _record("CycleFunded", 12, cycleId=7, partnerId=1, amount=300),
        _record("CycleFullyFunded", 12, cycleId=7, totalDueFen=300),
        _record("CycleClaimed", 13, cycleId=7, partnerId=2, payout="0x" + "ab" * 20, amount=300),
    ]
    state = fold_subject("cycle:7", None, records)
    assert state is not None
    cycle = state["cycle"]
    assert (cycle["status"], cycle["funded_fen"], cycle["claimed_fen"]) == (4, 300, 300)
    assert cycle["total_due_fen"] == 300
    assert {p: v["settled_fen"] for p, v in state["positions"].items()} == {1: 300, 2: 300}


def test_dispute_upheld_rejects_and_dismissed_returns_to_proposed() -> None:
    proposed = _record(
        "CycleProposed",
        1,
        cycleId=7,
        entriesRoot="0x" + "11" * 32,
        entryCount=1,
        partnerIds=[1, 2],
        netPositions=[-1, 1],
        disputeDeadline=9,
    )
    disputed = apply_cycle_event(
        apply_cycle_event(None, proposed),
        _record("CycleDisputed", 2, cycleId=7, partnerId=2, reason="0x" + "00" * 32),
    )
    assert disputed["cycle"]["status"] == 2 and disputed["positions"][2]["disputed"]
    upheld = apply_cycle_event(disputed, _record("DisputeResolved", 3, cycleId=7, upheld=True))
    dismissed = apply_cycle_event(disputed, _record("DisputeResolved", 3, cycleId=7, upheld=False))
    assert (upheld["cycle"]["status"], dismissed["cycle"]["status"]) == (5, 1)


def test_RevertWhen_a_cycle_event_comes_before_its_proposal() -> None:
    with pytest.raises(ValueError):
        apply_cycle_event(None, _record("CycleFinalized", 1, cycleId=7, entriesRoot="0x"))


def test_events_outside_the_mirror_have_a_contract_subject() -> None:
    assert get_subject("OracleQuorum", "SignerSetChanged", {}) == "contract:OracleQuorum"
    assert fold_subject("contract:OracleQuorum", None, []) is None


def _addresses(deployed: Manifest) -> list[str]:
    return [deployed.get_address(name) for name in FOLLOWED_CONTRACTS]


def _count(database: Database, table: sa.Table) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.mark.chain
def test_indexer_stores_each_event_once_and_mirrors_the_agreements(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    enqueue_all(database, [make_opening(n) for n in range(250)])
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    indexer = make_indexer(database, anvil.rpc_url, deployed, compiled, range_max_blocks=3)
    indexer.run_until_caught_up(30)
    make_indexer(database, anvil.rpc_url, deployed, compiled).run_until_caught_up(30)

    first_block = min(c.deploy_block for c in deployed.contracts.values())
    assert fetch_event_keys(database) == fetch_chain_event_keys(
        chain, _addresses(deployed), first_block
    )
    assert _count(database, CHAIN_AGREEMENT_TABLE) == 250
    checkpoint = fetch_indexer_checkpoint(database)
    assert checkpoint is not None and checkpoint.number == chain.eth.block_number


@pytest.mark.chain
def test_indexer_stays_the_configured_depth_behind_the_head(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    enqueue_all(database, [make_opening(n) for n in range(3)])
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    indexer = make_indexer(database, anvil.rpc_url, deployed, compiled, confirmations=3)
    indexer.run_until_caught_up(30)
    assert _count(database, CHAIN_AGREEMENT_TABLE) == 0
    chain.provider.make_request("anvil_mine", [3])  # type: ignore[arg-type]
    indexer.run_until_caught_up(30)
    assert _count(database, CHAIN_AGREEMENT_TABLE) == 3


@pytest.mark.chain
def test_reorg_rolls_back_and_ends_with_exactly_the_canonical_events(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    enqueue_all(database, [make_opening(n) for n in range(10)])
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    indexer = make_indexer(database, anvil.rpc_url, deployed, compiled)
    indexer.run_until_caught_up(30)
    fork_point = take_snapshot(chain)

    enqueue_all(database, [make_opening(n) for n in range(100, 400)])
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    indexer.run_until_caught_up(30)
    assert _count(database, CHAIN_AGREEMENT_TABLE) == 310

    revert_to_snapshot(chain, fork_point)  # the fork: those blocks are gone
    with database.engine.begin() as conn:  # the books forget what they relayed on the lost fork
        conn.execute(sa.text("DELETE FROM oracle_outbox"))
        conn.execute(sa.text("DELETE FROM relay_attempt"))  # references relay_submission
        conn.execute(sa.text("DELETE FROM relay_submission"))
    enqueue_all(database, [make_opening(n) for n in range(500, 1000)])
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    indexer.run_until_caught_up(30)

    first_block = min(c.deploy_block for c in deployed.contracts.values())
    assert indexer.reorgs_handled >= 1
    assert fetch_event_keys(database) == fetch_chain_event_keys(
        chain, _addresses(deployed), first_block
    )
    with database.engine.connect() as conn:
        ids = {row[0] for row in conn.execute(sa.select(CHAIN_AGREEMENT_TABLE.c.agreement_id))}
        opened = conn.execute(
            sa.select(sa.func.count())
            .select_from(EVENT_TABLE)
            .where(EVENT_TABLE.c.event == "AgreementOpened")
        ).scalar_one()
    expected = {"0x" + make_opening(n).agreement_id.hex() for n in [*range(10), *range(500, 1000)]}
    assert ids == expected
    assert opened == len(expected)


@pytest.mark.chain
def test_reorg_to_a_shorter_chain_also_rolls_back(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    indexer = make_indexer(database, anvil.rpc_url, deployed, compiled)
    indexer.run_until_caught_up(30)
    fork_point = take_snapshot(chain)
    enqueue_all(database, [make_opening(n) for n in range(600)])  # three blocks
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    indexer.run_until_caught_up(30)
    assert _count(database, CHAIN_AGREEMENT_TABLE) == 600

    revert_to_snapshot(chain, fork_point)
    with database.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM oracle_outbox"))
        conn.execute(sa.text("DELETE FROM relay_attempt"))  # references relay_submission
        conn.execute(sa.text("DELETE FROM relay_submission"))
    enqueue_all(database, [make_opening(n) for n in range(700, 705)])  # one block
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    indexer.run_until_caught_up(30)

    first_block = min(c.deploy_block for c in deployed.contracts.values())
    assert fetch_event_keys(database) == fetch_chain_event_keys(
        chain, _addresses(deployed), first_block
    )
    assert _count(database, CHAIN_AGREEMENT_TABLE) == 5
    checkpoint = fetch_indexer_checkpoint(database)
    assert checkpoint is not None and checkpoint.number == chain.eth.block_number
