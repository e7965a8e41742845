"""`GET /v1/oracles/status`: outbox depth by status, last block indexed, lag, signers, and
the node holding each background job's lease.

For the lender's admins and for auditors. Lag is the chain head minus the last
block the indexer stored; it is null when the chain RPC does not answer.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from node_api.http.authz import ExaminerDep
from node_api.http.services import ServicesDep
from oracles.status import fetch_oracle_status

router = APIRouter(tags=["oracles"])


class IndexerStatusPublic(BaseModel):
    last_block: int | None
    last_block_hash: str | None
    updated_at: datetime | None
    chain_head: int | None
    lag_blocks: int | None


class SignerStatusPublic(BaseModel):
    addresses: list[str]
    threshold: int
    remote_endpoints: list[str]


class OutboxErrorPublic(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    business_key: str
    status: str
    attempts: int
    error: str
    """The decoded revert (`reverted: Name(arg=value, ...)`) or why the row waits."""
    updated_at: datetime


class WorkerLeasePublic(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    worker: str
    """The background job (relayer, indexer, eod, settlement, ...)."""
    holder: str
    """The node that runs it (`CREDITNET_NODE_ID`, default host:pid)."""
    epoch: int
    """The fencing epoch: rises each time another node takes the job over."""
    expires_at: datetime
    """When the lease lapses unless its holder renews it; a stopped node sets it to now."""


class OracleStatusPublic(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    outbox_by_kind: dict[str, dict[str, int]]
    """Outbox rows by kind, then by status (pending, sent, confirmed, parked)."""
    outbox_totals: dict[str, int]
    """Outbox rows by status, all kinds together."""
    indexer: IndexerStatusPublic
    signers: SignerStatusPublic
    last_errors: dict[str, list[OutboxErrorPublic]] = {}
    """Per outbox kind, the latest errors of pending or parked rows, newest first."""
    leases: list[WorkerLeasePublic] = []
    """Which node runs each background job, under which fencing epoch, until when."""


@router.get("/v1/oracles/status", name="oracles_status", response_model=OracleStatusPublic)
def get_oracle_status(
    services: ServicesDep,
    _principal: ExaminerDep,
) -> OracleStatusPublic:
    """Relayer backlog, indexer position and lag, the oracle signer addresses, and which
    node runs each background job (relayer, indexer, end of day, settlement, ...)."""
    chain = services.chain
    head = chain.fetch_latest_block() if chain is not None else None
    status = fetch_oracle_status(services.database, services.settings, head)
    return OracleStatusPublic.model_validate(asdict(status))
