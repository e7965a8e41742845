"""FastAPI dependencies shared by the routes: settings, database session, principal."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from node_api.auth.keys import Principal, Role, verify_api_key
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import AuthenticationError, ForbiddenError

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer cn_...`")
_CACHE_TTL_S = 30.0


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with database.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]


class PrincipalCache:
    """Verified keys for a short while, so the hot path does not hit the key table each call.

    A revoked key stops working within `_CACHE_TTL_S` seconds.
    """

    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    def get(self, presented: str) -> Principal | None:
        entry = self._entries.get(hashlib.sha256(presented.encode()).digest())
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, presented: str, principal: Principal) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        digest = hashlib.sha256(presented.encode()).digest()
        self._entries[digest] = (time.monotonic() + _CACHE_TTL_S, principal)


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("an API key is required (Authorization: Bearer cn_...)")
    cache: PrincipalCache = request.app.state.principal_cache
    principal = cache.get(credentials.credentials)
    if principal is None:
        settings: Settings = request.app.state.settings
        database: Database = request.app.state.database
        with database.session() as session:
            principal = verify_api_key(
                session,
                credentials.credentials,
                pepper=settings.node_secret.get_secret_value().encode(),
            )
        cache.put(credentials.credentials, principal)
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only the given roles."""
    allowed = frozenset(roles)

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(
                f"role {principal.role.value} may not call this; allowed: "
                + ", ".join(sorted(r.value for r in allowed))
            )
        return principal

    return dependency
