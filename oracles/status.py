"""What the oracles are doing: outbox depth, the latest errors per kind (decoded reverts),
indexer position and lag, signer addresses, and which node runs each background worker.

Read-only and cheap (a GROUP BY, a few indexed rows per kind, one checkpoint row, the
keystore files' public addresses without decrypting them); the chain head comes from the
caller.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox import OutboxError, fetch_depth_by_status, fetch_last_errors
from oracles.chain import get_redacted_url
from oracles.leases import fetch_leases
from oracles.signers import fetch_keystore_addresses, parse_remote_signers
from oracles.tables import IndexerCheckpoint


@dataclass(frozen=True)
class IndexerStatus:
    last_block: int | None
    last_block_hash: str | None
    updated_at: datetime | None
    chain_head: int | None
    lag_blocks: int | None


@dataclass(frozen=True)
class SignerStatus:
    addresses: list[str]
    threshold: int
    remote_endpoints: list[str]


@dataclass(frozen=True)
class WorkerLease:
    worker: str
    holder: str
    """The node id (`CREDITNET_NODE_ID`, default host:pid) that runs the worker."""
    epoch: int
    """The fencing epoch: rises each time another node takes the worker over."""
    expires_at: datetime


@dataclass(frozen=True)
class OracleStatus:
    outbox_by_kind: dict[str, dict[str, int]]
    outbox_totals: dict[str, int]
    indexer: IndexerStatus
    signers: SignerStatus
    last_errors: dict[str, list[OutboxError]]
    """Per kind, the latest errors of pending or parked rows (e.g. a decoded revert
    `reverted: ERC20InsufficientBalance(sender=0x.., balance=0, needed=1200)`)."""
    leases: list[WorkerLease]
    """Per background worker, the node holding its lease (empty before any node ran it)."""


def compute_signer_status(settings: Settings, keystore_dir: Path) -> SignerStatus:
    """The quorum as configured: the node's own signers (their keystores' addresses) and
    every remote signer, with the threshold over all of them."""
    remote = parse_remote_signers(settings.remote_signers)
    own = fetch_keystore_addresses(keystore_dir)[: settings.signer_count]
    return SignerStatus(
        addresses=[*own, *(address for _url, address in remote if address)],
        threshold=settings.signer_threshold,
        remote_endpoints=[get_redacted_url(url) for url, _address in remote],
    )


def fetch_oracle_status(
    database: Database, settings: Settings, chain_head: int | None, indexer_name: str = "main"
) -> OracleStatus:
    """The status of the node's oracles; `chain_head` is None when the chain is unreachable."""
    with Session(database.engine) as session:
        depth = fetch_depth_by_status(session)
        last_errors = fetch_last_errors(session)
        checkpoint = session.get(IndexerCheckpoint, indexer_name)
        leases = fetch_leases(session.connection())
    totals: Counter[str] = Counter()
    for by_status in depth.values():
        totals.update(by_status)
    last_block = checkpoint.block_number if checkpoint else None
    lag = None
    if chain_head is not None:
        lag = max(chain_head - (last_block if last_block is not None else 0), 0)
    return OracleStatus(
        outbox_by_kind=depth,
        outbox_totals=dict(sorted(totals.items())),
        indexer=IndexerStatus(
            last_block=last_block,
            last_block_hash=checkpoint.block_hash if checkpoint else None,
            updated_at=checkpoint.updated_at if checkpoint else None,
            chain_head=chain_head,
            lag_blocks=lag,
        ),
        signers=compute_signer_status(settings, settings.signer_keystore_dir),
        last_errors=last_errors,
        leases=[WorkerLease(x.name, x.holder, x.epoch, x.expires_at) for x in leases],
    )
