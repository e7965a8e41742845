"""A relayed transaction cannot get stuck: when the base fee rises above what it offers,
the relayer signs the same nonce again at higher fees, records every attempt, and
whichever attempt the chain mines is the one the books keep; every item lands once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OutboxStatus
from oracles.abi_codec import DeployedContracts
from oracles.relayer import Relayer, RelayerConfig
from oracles.scaleout_tables import ATTEMPT_TABLE, AttemptReason
from oracles.tables import SubmissionStatus
from oracles.tx_sender import JsonRpcClient, TxSender, decode_dynamic_fee_call
from tests.integration.oracles.conftest import OwnChain
from tests.unit.oracles.oracle_helpers import (
    count_opened_on_chain,
    enqueue_all,
    fetch_outbox,
    fetch_submissions,
    make_opening,
)

pytestmark = pytest.mark.chain

REPRICE_AFTER_S = 30.0
ITEMS = 3


class FakeClock:
    """Naive UTC time that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def manual_chain(own_chain: OwnChain) -> Iterator[JsonRpcClient]:
    """The test's own anvil with automatic mining off: blocks come from `evm_mine`."""
    rpc = JsonRpcClient(own_chain.anvil.rpc_url)
    rpc.call("evm_setAutomine", [False])
    yield rpc
    rpc.close()


def _relayer(database: Database, chain: OwnChain, clock: FakeClock, **config: object) -> Relayer:
    sender = TxSender(JsonRpcClient(chain.anvil.rpc_url), chain.relayer, chain.manifest.chain_id)
    contracts = DeployedContracts.from_manifest(chain.manifest, chain.compiled)
    settings = RelayerConfig(reprice_after_s=REPRICE_AFTER_S, **config)  # type: ignore[arg-type]
    return Relayer(database, sender, contracts, settings, clock=clock)


def _attempts(database: Database) -> list[sa.Row[tuple[object, ...]]]:
    with database.engine.connect() as conn:
        return list(conn.execute(sa.select(ATTEMPT_TABLE).order_by(ATTEMPT_TABLE.c.id)).all())


def _price_out(rpc: JsonRpcClient, max_fee_wei: int) -> None:
    """Mine a block whose base fee is above `max_fee_wei`, so the pending transaction
    offering it cannot be included in this block or the next ones."""
    rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(max_fee_wei * 4)])
    rpc.call("evm_mine", [])


def _start_stuck(
    database: Database, chain: OwnChain, rpc: JsonRpcClient, clock: FakeClock, **config: object
) -> Relayer:
    enqueue_all(database, [make_opening(n) for n in range(ITEMS)])
    relayer = _relayer(database, chain, clock, **config)
    assert relayer.step()
    (first,) = _attempts(database)
    _price_out(rpc, first.max_fee_per_gas_wei)
    assert relayer.sender.fetch_receipts([first.tx_hash]) == [None]
    return relayer


def test_a_stuck_transaction_is_replaced_at_higher_fees_and_the_replacement_lands_once(
    database: Database, own_chain: OwnChain, manual_chain: JsonRpcClient
) -> None:
    clock = FakeClock()
    relayer = _start_stuck(database, own_chain, manual_chain, clock)

    clock.advance(REPRICE_AFTER_S - 1)
    relayer.step()
    assert len(_attempts(database)) == 1, "replaced before the configured time"

    clock.advance(1)
    assert relayer.step()
    first, second = _attempts(database)
    assert (first.reason, second.reason) == (AttemptReason.INITIAL, AttemptReason.REPRICE)
    assert first.nonce == second.nonce and first.submission_id == second.submission_id
    assert second.tx_hash != first.tx_hash and second.created_at == clock.now
    assert second.max_fee_per_gas_wei * 10_000 >= first.max_fee_per_gas_wei * 11_250
    tip_before, tip_after = first.max_priority_fee_per_gas_wei, second.max_priority_fee_per_gas_wei
    assert tip_after * 10_000 >= tip_before * 11_250
    assert decode_dynamic_fee_call(second.raw_tx).data == decode_dynamic_fee_call(first.raw_tx).data
    assert {row.tx_hash for row in fetch_outbox(database)} == {second.tx_hash}

    manual_chain.call("evm_mine", [])
    relayer.run_until_idle(timeout_s=20)

    (submission,) = fetch_submissions(database)
    assert submission.status == SubmissionStatus.CONFIRMED and submission.tx_hash == second.tx_hash
    rows = fetch_outbox(database)
    assert {(row.status, row.tx_hash) for row in rows} == {(OutboxStatus.CONFIRMED, second.tx_hash)}
    assert relayer.sender.fetch_receipts([first.tx_hash]) == [None]
    counts = count_opened_on_chain(
        own_chain.connect(),
        own_chain.manifest.get_address("CreditRegistry"),
        own_chain.manifest.created_at_block,
    )
    assert len(counts) == ITEMS and set(counts.values()) == {1}


def test_when_the_earlier_attempt_is_mined_the_books_adopt_it(
    database: Database, own_chain: OwnChain, manual_chain: JsonRpcClient
) -> None:
    clock = FakeClock()
    relayer = _start_stuck(database, own_chain, manual_chain, clock)
    clock.advance(REPRICE_AFTER_S)
    assert relayer.step()
    first, second = _attempts(database)
    # The replacement vanishes from the pool and the first version comes back and is mined.
    manual_chain.call("anvil_dropTransaction", [second.tx_hash])
    manual_chain.call("anvil_setNextBlockBaseFeePerGas", [hex(1)])
    manual_chain.call("eth_sendRawTransaction", [first.raw_tx])
    manual_chain.call("evm_mine", [])

    relayer.run_until_idle(timeout_s=20)

    (submission,) = fetch_submissions(database)
    assert submission.status == SubmissionStatus.CONFIRMED and submission.tx_hash == first.tx_hash
    assert {(row.status, row.tx_hash) for row in fetch_outbox(database)} == {
        (OutboxStatus.CONFIRMED, first.tx_hash)
    }
    assert len(_attempts(database)) == 2
    counts = count_opened_on_chain(
        own_chain.connect(),
        own_chain.manifest.get_address("CreditRegistry"),
        own_chain.manifest.created_at_block,
    )
    assert len(counts) == ITEMS and set(counts.values()) == {1}


def test_a_transaction_already_at_the_fee_ceiling_is_not_replaced(
    database: Database, own_chain: OwnChain, manual_chain: JsonRpcClient
) -> None:
    clock = FakeClock()
    probe = TxSender(
        JsonRpcClient(own_chain.anvil.rpc_url), own_chain.relayer, own_chain.manifest.chain_id
    )
    ceiling_wei = probe.fetch_fees().max_fee_per_gas_wei
    relayer = _start_stuck(database, own_chain, manual_chain, clock, fee_ceiling_wei=ceiling_wei)
    clock.advance(REPRICE_AFTER_S * 3)
    relayer.step()
    (only,) = _attempts(database)
    assert only.max_fee_per_gas_wei <= ceiling_wei
    (submission,) = fetch_submissions(database)
    assert submission.status == SubmissionStatus.SIGNED and submission.tx_hash == only.tx_hash
