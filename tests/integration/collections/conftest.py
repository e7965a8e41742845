"""Fixtures of the collections tests: lending caches and a node at the business date."""

from __future__ import annotations

import pytest

from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.context import LendingCaches
from tests.integration.collections.helpers import AS_OF


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


@pytest.fixture
def node(database: Database) -> Database:
    """The database with the business date at `AS_OF`."""
    with database.engine.begin() as conn:
        set_business_date(conn, AS_OF)
    return database
