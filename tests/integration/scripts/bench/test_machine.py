"""The PostgreSQL reference of `creditnet bench`'s machine figures, on the real server."""

from __future__ import annotations

from scripts.bench import machine
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql


def test_the_postgresql_reference_is_timed_on_the_server() -> None:
    require_postgresql("the reference statement runs on the server")

    figures = machine.reference_figures(PG_ADMIN_URL)

    assert set(figures) == {"python_ms", "postgres_ms"}
    postgres_ms = figures["postgres_ms"]
    assert isinstance(postgres_ms, float) and 0 < postgres_ms < 60_000
