"""Fixtures of the lending tests: caches, a business date and an open line."""

from __future__ import annotations

import pytest

from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.context import LendingCaches
from tests.integration.lending.helpers import OPENED_ON, open_line


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


@pytest.fixture
def line_id(database: Database, caches: LendingCaches) -> int:
    """A line: total 100,000; purchase 80,000; REV1 80,000 (app sub-limit 30,000);
    cash 10,000 with CASH1; business date = the opening day."""
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        return open_line(conn, caches, cash_fen=10_000, channel_limits={"app": 30_000})
