"""Helpers of the relayer and indexer tests: outbox items, a relayer on the test chain,
and reads of what landed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from eth_account.signers.local import LocalAccount
from hypothesis import strategies as st
from sqlmodel import select
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.outbox import AgreementOpening, OutboxMessage, enqueue_core
from node_api.kernel.outbox_table import OutboxItem
from oracles.abi_codec import DeployedContracts
from oracles.compiler import CompiledContracts
from oracles.indexer import Indexer, IndexerConfig
from oracles.manifest import Manifest
from oracles.relayer import Relayer, RelayerConfig, StepHook
from oracles.tables import EVENT_TABLE, RelaySubmission
from oracles.tx_sender import JsonRpcClient, TxSender

OPENED_AT = 1_735_689_600  # 2025-01-01, UTC midnight


def make_opening(
    number: int, *, limit_fen: int = 800_000, opened_at: int = OPENED_AT
) -> AgreementOpening:
    """Agreement `number` with distinct id and borrower reference."""
    return AgreementOpening(
        agreement_id=(0xA0 << 248 | number).to_bytes(32, "big"),
        borrower_ref=(0xB0 << 248 | number).to_bytes(32, "big"),
        terms_hash=Web3.keccak(text=f"terms-{number}"),
        product_code=7,
        limit_fen=limit_fen,
        apr_bps=1_825,
        opened_at=opened_at,
    )


def enqueue_all(database: Database, messages: Sequence[OutboxMessage]) -> None:
    with database.engine.begin() as conn:
        enqueue_core(conn, messages)


def make_relayer(
    database: Database,
    rpc_url: str,
    manifest: Manifest,
    compiled: CompiledContracts,
    account: LocalAccount,
    *,
    hook: StepHook | None = None,
    **config: Any,
) -> Relayer:
    sender = TxSender(JsonRpcClient(rpc_url), account, manifest.chain_id)
    contracts = DeployedContracts.from_manifest(manifest, compiled)
    return Relayer(database, sender, contracts, RelayerConfig(**config), hook=hook)


def make_indexer(
    database: Database,
    rpc_url: str,
    manifest: Manifest,
    compiled: CompiledContracts,
    **config: Any,
) -> Indexer:
    contracts = DeployedContracts.from_manifest(manifest, compiled)
    return Indexer(database, JsonRpcClient(rpc_url), contracts, IndexerConfig(**config))


def fetch_outbox(database: Database) -> list[OutboxItem]:
    with database.session() as session:
        return list(session.exec(select(OutboxItem).order_by(OutboxItem.id)))  # type: ignore[arg-type]


def fetch_submissions(database: Database) -> list[RelaySubmission]:
    with database.session() as session:
        return list(session.exec(select(RelaySubmission).order_by(RelaySubmission.nonce)))  # type: ignore[arg-type]


def fetch_event_keys(database: Database) -> list[tuple[str, int]]:
    """(block hash, log index) of every stored event, sorted."""
    with database.engine.connect() as conn:
        rows = conn.execute(
            sa.select(EVENT_TABLE.c.block_hash, EVENT_TABLE.c.log_index).order_by(
                EVENT_TABLE.c.block_number, EVENT_TABLE.c.log_index
            )
        ).all()
    return [(str(block_hash), int(log_index)) for block_hash, log_index in rows]


def fetch_chain_event_keys(
    w3: Web3, addresses: Sequence[str], from_block: int
) -> list[tuple[str, int]]:
    """(block hash, log index) of every log the contracts emitted on the canonical chain."""
    logs = w3.eth.get_logs(
        {"fromBlock": from_block, "toBlock": "latest", "address": list(addresses)}  # type: ignore[typeddict-item]
    )
    return [(log["blockHash"].to_0x_hex(), int(log["logIndex"])) for log in logs]


def count_opened_on_chain(w3: Web3, registry_address: str, from_block: int) -> dict[str, int]:
    """How many AgreementOpened events each agreement id has on the canonical chain."""
    topic = Web3.keccak(
        text="AgreementOpened(bytes32,bytes32,bytes32,uint32,uint64,uint32,uint64,bytes32)"
    )
    logs = w3.eth.get_logs(
        {
            "fromBlock": from_block,
            "toBlock": "latest",
            "address": registry_address,
            "topics": [topic],
        }  # type: ignore[typeddict-item]
    )
    counts: dict[str, int] = {}
    for log in logs:
        key = log["topics"][1].to_0x_hex()
        counts[key] = counts.get(key, 0) + 1
    return counts


AGREEMENT_TYPES = ["bytes32", "bytes32", "bytes32", "uint32", "uint64", "uint32", "uint64"]
"""The ABI types of one agreement opening in `CreditRegistry.openAgreements`."""

AGREEMENT_ROWS = st.lists(
    st.tuples(
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=32, max_size=32),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**64 - 1),
    ),
    max_size=20,
)
"""Up to 20 agreement rows of any value their types allow."""
