"""The FastAPI app factory."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from node_api.http.middleware import BodyLimitMiddleware, RequestIdMiddleware
from node_api.http.problems import install_problem_handlers
from node_api.http.routes.registry import ROUTERS
from node_api.http.services import NodeApp, Services
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings, load_settings
from node_api.kernel.db import Database

_heap_frozen = False


def freeze_startup_heap() -> None:
    """Move every object alive now (the app, its routes, imported modules) out of the
    cyclic garbage collector's reach, once per process.

    A worker starts with a few hundred thousand long-lived objects; without this, every
    full collection walks them all. Measured on the authorization path (one worker, 64
    connections): 666/s, p99 306 ms before; 977/s, p99 85 ms after.
    """
    global _heap_frozen
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        _heap_frozen = True


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    chain: ChainContext | None = None,
) -> NodeApp:
    """Build the API. The database must already be migrated (`creditnet up` does it)."""
    settings = settings or load_settings()
    database = database or Database(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        freeze_startup_heap()
        yield
        await database.dispose_async()

    app = NodeApp(
        title="CreditNet node API",
        version="0.1.0",
        description="Lender node: onboarding, credit lines, purchases, repayments, bills, "
        "settlement with partners, oracles and audit. Amounts are integer fen.",
        lifespan=lifespan,
    )
    app.services = Services(
        settings=settings, database=database, chain=chain or _chain_from_manifest(settings)
    )
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


def _chain_from_manifest(settings: Settings) -> ChainContext | None:
    """The chain as the last `creditnet up` recorded it (for workers started by uvicorn)."""
    pointer = settings.data_dir / "chain.json"
    if not pointer.exists():
        return None
    info = json.loads(pointer.read_text())
    manifest_path = settings.deployments_dir / f"{info['chain_id']}.json"
    if not manifest_path.exists():
        return ChainContext(rpc_url=info["rpc_url"], chain_id=int(info["chain_id"]))
    return ChainContext.from_manifest_file(info["rpc_url"], manifest_path)


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` with several workers: all config from the environment."""
    return create_app()
