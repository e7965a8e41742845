"""The services one API process shares, built once at startup and typed.

`create_app` builds a `Services` and keeps it on the app (`NodeApp.services`); routes
take it through `ServicesDep` (or `services_of(request.app)` where they avoid FastAPI
dependencies). Nothing else is kept on `app.state`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from node_api.auth.keys import PrincipalCache
from node_api.http.renderers import render_use
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.service import AuthorizationService
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.vault_factory import build_vault


class AuthorizationServices:
    """The worker's authorization service for the running event loop (the group
    committer is bound to the loop it was made in, so a new loop gets a new service)."""

    def __init__(self, database: Database, caches: LendingCaches) -> None:
        self._database = database
        self._caches = caches
        self._service: AuthorizationService | None = None

    def current(self) -> AuthorizationService:
        service = self._service
        if service is None or service.loop is not asyncio.get_running_loop():
            service = AuthorizationService(self._database, self._caches, render_use)
            self._service = service
        return service


class OnboardingContexts:
    """The process's onboarding context, built on first use (it opens the PII vault,
    which only the onboarding routes need)."""

    def __init__(self, settings: Settings, caches: LendingCaches) -> None:
        self._settings = settings
        self._caches = caches
        self._context: OnboardingContext | None = None
        self._lock = threading.Lock()

    def current(self) -> OnboardingContext:
        context = self._context
        if context is None:
            with self._lock:
                context = self._context
                if context is None:
                    context = OnboardingContext(
                        vault=build_vault(self._settings), products=self._caches.products
                    )
                    self._context = context
        return context


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    database: Database
    chain: ChainContext | None
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    lending: LendingCaches = field(default_factory=LendingCaches)
    onboarding: OnboardingContexts = field(init=False)
    authorization: AuthorizationServices = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "onboarding", OnboardingContexts(self.settings, self.lending))
        object.__setattr__(
            self, "authorization", AuthorizationServices(self.database, self.lending)
        )


class NodeApp(FastAPI):
    """The API with its services, and its fast lanes served before its middleware stack."""

    services: Services
    _lanes: ASGIApp | None = None

    def serve_lanes_first(self, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        """Run the fast lanes `wrap` builds around the app's regular handling (FastAPI's
        and Starlette's middleware stack, then ours) ahead of all of it: a request a lane
        serves skips the stack's outer layers (FastAPI's error, telemetry and body-limit
        middleware: ~9 % of a worker's busy time on the authorization path), one it
        passes on gets the whole stack. A lane answers its own unexpected errors as the
        stack's last-resort handler would (`node_api.http.lane_io`)."""
        self._lanes = wrap(super().__call__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lanes = self._lanes
        if lanes is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self.root_path:  # as FastAPI and Starlette set them before the stack
            scope["root_path"] = self.root_path
        scope["app"] = self
        await lanes(scope, receive, send)


def services_of(app: Any) -> Services:
    """The services of the app serving a request (`request.app`, `scope["app"]`)."""
    services: Services = app.services
    return services


async def get_services(request: Request) -> Services:
    """FastAPI dependency (async: no threadpool hop)."""
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(get_services)]
