"""FastAPI dependencies shared by the routes: settings, database and a session, all
from the app's `Services` (who is calling is `node_api.http.authz`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from node_api.http.services import services_of
from node_api.kernel.config import Settings
from node_api.kernel.db import Database


async def get_settings(request: Request) -> Settings:
    return services_of(request.app).settings


async def get_database(request: Request) -> Database:
    return services_of(request.app).database


def get_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with database.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
