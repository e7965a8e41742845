"""The largest batch fits the chain: its gas limit under the block's, its bytes under a
pool's limit, and broadcasts split so no JSON-RPC request is refused for its size."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.outbox_table import AgreementOpenPayload, OutboxStatus
from oracles.abi_codec import ContractCodec
from oracles.anvil import AnvilProcess
from oracles.chain import LocalAccounts
from oracles.compiler import CompiledContracts
from oracles.manifest import Manifest
from oracles.relay_kinds import (
    AGREEMENT_OPEN_BATCH_MAX,
    OPEN_GAS_BASE,
    OPEN_GAS_PER_ITEM,
    TX_DATA_BYTES_MAX,
    AgreementOpenKind,
)
from oracles.tables import SubmissionStatus
from oracles.tx_sender import BROADCAST_HEX_CHARS_MAX, JsonRpcClient, compute_size_chunks
from tests.unit.oracles.oracle_helpers import (
    count_opened_on_chain,
    enqueue_all,
    fetch_outbox,
    fetch_submissions,
    make_opening,
    make_relayer,
)

OPENING: AgreementOpenPayload = make_opening(1).to_payload()


def _calldata_bytes(codec: ContractCodec, count: int) -> int:
    return len(AgreementOpenKind().encode(codec, [OPENING] * count))


@pytest.mark.parametrize(
    ("block_gas_limit", "expected"),
    [
        (OPEN_GAS_BASE + OPEN_GAS_PER_ITEM - 1, 1),
        (30_000_000, 399),  # (30M - 60k) // 75k
        (100_000_000, 535),  # the pool's size limit: (120,000 - 68) // 224
    ],
)
def test_the_largest_opening_batch_is_what_the_block_and_the_pool_take(
    block_gas_limit: int, expected: int
) -> None:
    assert AgreementOpenKind().get_batch_size_max(block_gas_limit) == expected


@settings(max_examples=60, deadline=None)
@given(block_gas_limit=st.integers(OPEN_GAS_BASE + OPEN_GAS_PER_ITEM, 300_000_000))
def test_an_opening_batch_fits_and_one_more_item_would_not(
    compiled: CompiledContracts, block_gas_limit: int
) -> None:
    kind = AgreementOpenKind()
    codec = ContractCodec(compiled.artifact("CreditRegistry").abi)
    count = kind.get_batch_size_max(block_gas_limit)

    assert kind.get_gas_limit([OPENING] * count) <= block_gas_limit
    assert _calldata_bytes(codec, count) <= TX_DATA_BYTES_MAX
    assert (
        count == AGREEMENT_OPEN_BATCH_MAX
        or kind.get_gas_limit([OPENING] * (count + 1)) > block_gas_limit
        or _calldata_bytes(codec, count + 1) > TX_DATA_BYTES_MAX
    )


@given(
    raw_txs=st.lists(st.text(alphabet="0123456789abcdef", max_size=40), max_size=30),
    chars_max=st.integers(1, 100),
)
def test_size_chunks_keep_the_order_and_stay_under_the_limit(
    raw_txs: list[str], chars_max: int
) -> None:
    chunks = compute_size_chunks(raw_txs, chars_max)

    assert [raw for chunk in chunks for raw in chunk] == raw_txs
    assert all(chunk for chunk in chunks)
    assert all(sum(map(len, chunk)) <= chars_max or len(chunk) == 1 for chunk in chunks)
    for first, second in pairwise(chunks):
        assert sum(map(len, first)) + len(second[0]) > chars_max  # no chunk closed early


@pytest.mark.chain
def test_the_relayer_fills_transactions_to_the_chain_limit_and_splits_broadcasts(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block_gas_limit = int(chain.eth.get_block("latest")["gasLimit"])
    batch = AgreementOpenKind().get_batch_size_max(block_gas_limit)
    # Enough full transactions in one step that their raw bytes need two broadcasts.
    full = (
        BROADCAST_HEX_CHARS_MAX
        // (2 * _calldata_bytes(ContractCodec(compiled.artifact("CreditRegistry").abi), batch))
        + 1
    )
    count = full * batch + 25
    enqueue_all(database, [make_opening(n) for n in range(count)])
    relayer = make_relayer(
        database,
        anvil.rpc_url,
        deployed,
        compiled,
        dev_accounts.relayer,
        batch_size_max=AGREEMENT_OPEN_BATCH_MAX,
        inflight_max=full + 1,
    )
    sent_chars: list[int] = []
    batch_of = JsonRpcClient.batch

    def recording_batch(
        client: JsonRpcClient, calls: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[Any]:
        raws = [params[0] for method, params in calls if method == "eth_sendRawTransaction"]
        if raws:
            sent_chars.append(sum(map(len, raws)))
        return batch_of(client, calls)

    monkeypatch.setattr(JsonRpcClient, "batch", recording_batch)
    relayer.run_until_idle(timeout_s=120)

    assert sum(sent_chars) > BROADCAST_HEX_CHARS_MAX  # the first step's sends needed a split
    assert max(sent_chars) <= BROADCAST_HEX_CHARS_MAX

    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}
    submissions = fetch_submissions(database)
    assert [s.item_count for s in submissions] == [batch] * full + [25]
    assert {s.status for s in submissions} == {SubmissionStatus.CONFIRMED}
    counts = count_opened_on_chain(
        chain, deployed.get_address("CreditRegistry"), deployed.created_at_block
    )
    assert len(counts) == count and set(counts.values()) == {1}
