"""`GET /v1/health`: is the node up, which chain and contracts, which schema."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from node_api.http.services import ServicesDep
from node_api.schema.migrate import fetch_database_head

router = APIRouter(tags=["health"])


class ChainHealth(BaseModel):
    rpc: str
    chain_id: int | None
    latest_block: int | None
    contracts: dict[str, str]


class DatabaseHealth(BaseModel):
    backend: str
    migration_head: str | None


class Health(BaseModel):
    status: str
    chain: ChainHealth
    database: DatabaseHealth


@router.get("/v1/health", name="health_get", response_model=Health)
async def get_health(services: ServicesDep) -> Health:
    """Liveness and wiring, without authentication. `status` is `degraded` if the chain is down."""
    chain, database = services.chain, services.database
    latest = await run_in_threadpool(chain.fetch_latest_block) if chain else None
    head = await run_in_threadpool(fetch_database_head, database.engine)
    chain_health = ChainHealth(
        rpc="ok" if latest is not None else ("unreachable" if chain else "not configured"),
        chain_id=chain.chain_id if chain else None,
        latest_block=latest,
        contracts=chain.contract_addresses if chain else {},
    )
    return Health(
        status="ok" if latest is not None else "degraded",
        chain=chain_health,
        database=DatabaseHealth(backend=database.backend, migration_head=head),
    )
