"""`creditnet bench ceiling`: the machine's ceiling for an authorization over HTTP.

The same load as `creditnet bench authorize` (the same generator, connections, phases
and `lines`) against `scripts.bench.ceiling_app`, the minimal authorization of
../shared/DESIGN.md's hot paths served under uvicorn in `workers` processes as the node
is, on a fresh database of its own. Machines of one kind differ in speed by up to 2x
(`machine` in every benchmark's figures); the node's authorization rate over this one's,
measured on the same machine minutes apart, is the figure that compares across them
(issue #20's 5,000/s was set against 6,281/s here: 80 %).

After the load the books are checked: every authorization answered 201 is one journal
row with two postings summing to zero, and every line's usage is the sum of its journal.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from node_api.cli.serve import NodeProcess
from scripts.bench.ceiling_app import DSN_ENV, SCHEMA, TOKEN_ENV
from scripts.bench.figures import Figures
from scripts.bench.http_load import LoadPlan, measure_load_phase, run_load_process
from scripts.bench.scratch_db import scratch_database, shown_url

LINE_LIMIT_FEN = 10**10
"""As `bench authorize`'s lines: no purchase of the load is refused."""
_BOOKS = text(
    "SELECT (SELECT count(*) FROM ceiling_journal), "
    "(SELECT count(*) FROM ceiling_response WHERE status_code = 201), "
    "(SELECT count(*) FROM ceiling_posting), "
    "(SELECT coalesce(sum(amount_fen), 0) FROM ceiling_posting), "
    "(SELECT count(*) FROM ceiling_line l WHERE used_fen <> (SELECT coalesce(sum(amount_fen), 0) "
    " FROM ceiling_journal j WHERE j.line_id = l.id))"
)


def run_ceiling_bench(
    database_url: str | None = None,
    duration_s: int = 10,
    concurrency: int = 128,
    workers: int = 2,
    lines: int = 20_000,
    rate_per_s: int = 2500,
    line_limit_fen: int = LINE_LIMIT_FEN,
) -> Figures:
    """Run the benchmark; return its figures (authorizations per second, latencies in ms,
    CPU per request of each party, and the books' check)."""
    with scratch_database(database_url, "creditnet_ceiling", migrated=False) as url:
        create_ceiling_tables(url, lines, line_limit_fen)
        token = secrets.token_urlsafe(24)
        environment = {DSN_ENV: asyncpg_dsn(url), TOKEN_ENV: token}
        figures: Figures = {"database": shown_url(url), "lines": lines, "workers": workers}
        module = "scripts.bench.ceiling_app"
        with NodeProcess(url, workers, module=module, environment=environment) as server:
            base = LoadPlan(
                "127.0.0.1", server.port, token, list(range(1, lines + 1)), 2.0, concurrency
            )
            warmup = run_load_process(base)
            # As autovacuum would once the tables fill: the statistics of tables that were
            # empty at first, so the foreign keys' cached checks use the indexes.
            analyze(url)
            peak = measure_load_phase(server.pid, url, replace(base, duration_s=duration_s))
            paced = measure_load_phase(
                server.pid, url, replace(base, duration_s=duration_s, rate_per_s=rate_per_s)
            )
        figures["http_max"] = peak
        figures[f"http_at_{rate_per_s}_per_s"] = paced
        answered = warmup.statuses.get(201, 0)
        for phase in (peak, paced):
            count = phase["authorized"]
            assert isinstance(count, int)
            answered += count
        figures["books"] = check_books(url, answered)
        return figures


def asyncpg_dsn(url: str) -> str:
    """The database URL as asyncpg takes it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_ceiling_tables(url: str, lines: int, line_limit_fen: int) -> None:
    """The app's four tables and `lines` lines (ids 1..lines) of `line_limit_fen` each."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in SCHEMA:
                conn.execute(text(statement))
            conn.execute(
                text(
                    "INSERT INTO ceiling_line (id, limit_fen, used_fen) "
                    "SELECT n, :limit, 0 FROM generate_series(1, :lines) AS n"
                ),
                {"limit": line_limit_fen, "lines": lines},
            )
    finally:
        engine.dispose()
    analyze(url)


def analyze(url: str) -> None:
    """Fresh statistics for every table (PostgreSQL replans the statements that use them)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def check_books(url: str, answered: int) -> Figures:
    """What the tables hold against the 201s the load generator received."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            journals, stored, postings, posted, lines_off = conn.execute(_BOOKS).one()
    finally:
        engine.dispose()
    return {
        "authorized_answers": answered,
        "journals": journals,
        "balanced": journals == answered == stored
        and postings == 2 * journals
        and posted == 0
        and lines_off == 0,
    }
