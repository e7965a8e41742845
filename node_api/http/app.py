"""The FastAPI app factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from node_api.http.console import install_console
from node_api.http.docs import install_docs
from node_api.http.metrics import install_metrics
from node_api.http.middleware import AccessMiddleware, BodyLimitMiddleware, RequestIdMiddleware
from node_api.http.openapi import OPENAPI_TAGS, JsonObject, operation_id, refine_openapi
from node_api.http.problems import install_problem_handlers
from node_api.http.published_contracts import load_chain_context
from node_api.http.routes.application_lane import ApplicationFastLane
from node_api.http.routes.purchase_lane import AuthorizationFastLane
from node_api.http.routes.registry import ROUTERS
from node_api.http.services import NodeApp, Services
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings, load_settings
from node_api.kernel.db import Database
from node_api.lending.core.context import LendingCaches, LendingPolicy

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


API_DESCRIPTION = (
    "A CreditNet lender node: onboarding, credit lines, purchases, repayments, bills, "
    "settlement with partners, anchoring on-chain, oracles and audit.\n\n"
    "Authenticate with `Authorization: Bearer cn_...` (a key from `creditnet keys create`). "
    "Every amount is an integer number of fen (100 fen = 1 yuan); rates are in basis points "
    "(bps) or parts per million (ppm), as each field says. Every POST that changes state "
    "requires an `Idempotency-Key` header. Errors are RFC 9457 `application/problem+json` "
    "with a stable `code` and the offending `field`."
)


class DocumentedApp(NodeApp):
    """The API whose OpenAPI document is refined once (`node_api.http.openapi`)."""

    def openapi(self) -> JsonObject:
        if self.openapi_schema is None:
            refine_openapi(super().openapi())
        return super().openapi()


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

    app = DocumentedApp(
        title="CreditNet node API",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        # FastAPI's native OpenTelemetry hook asks the global providers on every request
        # (about 11 µs); the node configures none and exports its own metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.services = Services(
        settings=settings,
        database=database,
        chain=chain or load_chain_context(settings),
        lending=LendingCaches(policy=LendingPolicy.from_settings(settings)),
    )
    install_docs(app)
    install_console(app)
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_metrics(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        limits_by_path={"/v1/risk/models": settings.max_model_body_bytes},
    )
    app.add_middleware(AccessMiddleware, log_requests=settings.access_log)
    app.add_middleware(RequestIdMiddleware)
    # Before the whole stack: see routes.purchase_lane and routes.application_lane.
    app.serve_lanes_first(lambda regular: AuthorizationFastLane(ApplicationFastLane(regular)))
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` with several workers: all config from the environment."""
    return create_app()
