"""Fixtures of the onboarding tests: an app on the parametrized database, keys, a product."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from tests.integration.onboarding.onboarding_helpers import Api, setup_books

PEPPER = Settings().api_key_pepper.get_secret_value().encode()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def api(database: Database, settings: Settings) -> Iterator[Api]:
    setup_books(database)
    with database.session() as session:
        keys = {
            "app": create_api_key(session, Role.LENDER_APP, pepper=PEPPER),
            "admin": create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER),
            "auditor": create_api_key(session, Role.AUDITOR, pepper=PEPPER),
        }
    with TestClient(create_app(settings, database=database)) as client:
        yield Api(client, keys)
