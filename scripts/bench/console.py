"""`creditnet bench console`: how long each console view's API calls take at scale.

1. Creates a fresh PostgreSQL database (`scratch_db`), migrates it and seeds it: `lines`
   active credit lines with their ledger (the end-of-day bench's seed, `eod_seed`), one
   application per line (1 % still waiting for review), `cycles` daily settlement cycles of
   `entries` entries each between the lender, a bank and a channel (with positions), one
   end-of-day run per cycle date with its steps and batches, and an outbox with a confirmed
   row per cycle and a few rows waiting.
2. Serves the real app under uvicorn in a thread (`ThreadServer`, one worker) and calls
   every request each view makes `repeat` times, the way the console calls them (the
   partner's cycles, cash flows, funded principal, the contracts' description and one
   cycle's entries as NDJSON; operations' review queue, portfolio, decisions per hour,
   end-of-day runs, oracle status and outbox age).
Figures: seed seconds; per request its median and slowest milliseconds; per view the sum
of its requests' medians (the browser sends them in parallel, so the view loads faster).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection

from node_api.auth.keys import Role, create_api_key
from node_api.cli.serve import ThreadServer
from node_api.http.app import create_app
from node_api.kernel.chain import EntryKind, PartnerRole
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.money import Fen
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.lending.eod.tables import eod_batch_table, eod_run_table, eod_step_table
from node_api.onboarding.tables import application_table
from oracles.anvil import pick_free_port
from scripts.bench.eod_seed import BENCH_DAY, PRODUCT_CODE, seed_bench
from scripts.bench.figures import Figures
from scripts.bench.scratch_db import scratch_database, shown_url
from settlement.entries import SettlementEntry, compute_leaf_hashes
from settlement.merkle import build_tree
from settlement.salts import LeafSalts
from settlement.tables import (
    cycle_table,
    entry_table,
    partner_table,
    position_table,
    tree_table,
)

LENDER, BANK, CHANNEL = 1, 2, 3
PARTNERS = (
    (LENDER, "lender", int(PartnerRole.LENDER)),
    (BANK, "bank-a", int(PartnerRole.FUNDER)),  # the seeded lines' funder (`eod_seed`)
    (CHANNEL, "app", int(PartnerRole.CHANNEL)),
)
STEPS = ("credit", "due", "late_fee", "accrue", "delinquency", "charge_off", "bill")
BATCH_LINES = 2_000


class _Copier:
    """COPY rows into a table through the connection's psycopg cursor."""

    def __init__(self, conn: Connection) -> None:
        self._cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def copy(self, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]) -> None:
        with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _applications(lines: int) -> Iterator[tuple[Any, ...]]:
    """One application per line, an hour apart backwards from the bench date; every
    hundredth still in review (no line), the rest approved."""
    start = datetime(BENCH_DAY.year, BENCH_DAY.month, BENCH_DAY.day, 12)
    detail = json.dumps({"score_exact": 600.0, "score_band": 6, "bin_indices": {}, "missing": []})
    for index in range(lines):
        review = index % 100 == 0
        applied = start - timedelta(minutes=index)
        status = "review" if review else "approved"
        yield (
            f"{index:032x}",
            f"c{index:031x}",
            PRODUCT_CODE,
            1,
            1,
            "app",
            applied,
            applied.date(),
            b"\x00",
            "bench-model",
            520 if review else 640,
            detail,
            "{}",
            "[]",
            status,
            json.dumps(["SCORE_BORDERLINE"] if review else []),
            json.dumps({"total": 1_000_000}),
            False,
            status,
            None if review else index + 1,
        )


def _cycles(first: date, cycles: int) -> Iterator[tuple[Any, ...]]:
    for number in range(cycles):
        day = first + timedelta(days=number)
        yield (
            int(day.strftime("%Y%m%d")),
            day,
            "proposed",
            "0x" + f"{number:064x}",
            0,
            0,
            3,
            0,
            datetime(day.year, day.month, day.day, 23),
        )


def _entries(first: date, cycles: int, entries: int) -> Iterator[tuple[Any, ...]]:
    """Per cycle: the bank funds and is repaid principal, earns interest, the channel
    earns commission; every entry has its opposite on the lender (Σ = 0)."""
    kinds = (
        EntryKind.PRINCIPAL_FUNDED,
        EntryKind.PRINCIPAL_REPAID,
        EntryKind.INTEREST_SHARE,
        EntryKind.CHANNEL_COMMISSION,
    )
    for number in range(cycles):
        cycle_id = int((first + timedelta(days=number)).strftime("%Y%m%d"))
        for pair in range(entries // 2):
            kind = kinds[pair % len(kinds)]
            amount = 1_000 + (pair * 37) % 50_000
            signed = -amount if kind is EntryKind.PRINCIPAL_FUNDED else amount
            partner = CHANNEL if kind is EntryKind.CHANNEL_COMMISSION else BANK
            yield cycle_id, 2 * pair + 1, partner, int(kind), signed
            yield cycle_id, 2 * pair + 2, LENDER, int(kind), -signed


def _store_tree(conn: Connection, cycle_id: int) -> None:
    """The real Merkle tree of `cycle_id` (salts of the default settings' root secret, the
    ones the bench's app serves) with its root on the cycle, so its entries can be proven."""
    salts = LeafSalts.from_settings(Settings())
    rows = conn.execute(
        select(
            entry_table.c.entry_id, entry_table.c.partner_id, entry_table.c.kind,
            entry_table.c.amount_fen,
        ).where(entry_table.c.cycle_id == cycle_id)
    ).all()  # fmt: skip
    entries = [
        SettlementEntry(
            cycle_id=cycle_id,
            entry_id=int(entry_id),
            partner_id=int(partner_id),
            kind=EntryKind(int(kind)),
            amount_fen=Fen(int(amount)),
            salt=salts.salt(cycle_id, int(entry_id), int(partner_id)),
        )
        for entry_id, partner_id, kind, amount in rows
    ]
    tree = build_tree(compute_leaf_hashes(entries))
    conn.execute(insert(tree_table).values(cycle_id=cycle_id, tree_blob=tree.to_bytes()))
    conn.execute(
        update(cycle_table)
        .where(cycle_table.c.cycle_id == cycle_id)
        .values(entries_root="0x" + tree.root.hex(), entry_count=len(entries))
    )


def seed_console(conn: Connection, lines: int, cycles: int, entries: int) -> None:
    """Everything of step 1 of the module doc, in the caller's transaction."""
    seed_bench(conn, lines)
    writer = _Copier(conn)
    now = datetime.now(UTC).replace(tzinfo=None)
    writer.copy(
        partner_table.name,
        ["id", "ref", "role", "display_name", "payout_address", "active", "created_at"],
        (
            (number, ref, role, ref, "0x" + f"{number:040x}", True, now)
            for number, ref, role in PARTNERS
        ),
    )
    writer.copy(
        application_table.name,
        [
            "id", "customer_id", "product_code", "product_version", "policy_version",
            "channel_id", "applied_at", "business_date", "inputs_enc", "model_id", "score",
            "score_detail", "signals", "fraud_hits", "decision", "reason_codes", "limits",
            "existing_customer", "status", "credit_line_id",
        ],
        _applications(lines),
    )  # fmt: skip
    first = BENCH_DAY - timedelta(days=cycles)
    writer.copy(
        cycle_table.name,
        [
            "cycle_id", "cycle_date", "status", "entries_root", "entry_count", "event_count",
            "partner_count", "total_due_fen", "closed_at",
        ],
        _cycles(first, cycles),
    )  # fmt: skip
    writer.copy(
        entry_table.name,
        ["cycle_id", "entry_id", "partner_id", "kind", "amount_fen"],
        _entries(first, cycles, entries),
    )
    totals = select(
        entry_table.c.cycle_id,
        entry_table.c.partner_id,
        func.sum(entry_table.c.amount_fen),
        func.count(),
    ).group_by(entry_table.c.cycle_id, entry_table.c.partner_id)
    conn.execute(
        insert(position_table).from_select(
            ["cycle_id", "partner_id", "net_position_fen", "entry_count"], totals
        )
    )
    _store_tree(conn, int((BENCH_DAY - timedelta(days=1)).strftime("%Y%m%d")))
    days = [first + timedelta(days=number) for number in range(cycles)]
    writer.copy(eod_run_table.name, ["as_of", "status"], ((day, "done") for day in days))
    writer.copy(
        eod_step_table.name,
        ["as_of", "step", "status"],
        ((d, s, "done") for d in days for s in STEPS),
    )
    batches = max(lines // BATCH_LINES, 1)
    writer.copy(
        eod_batch_table.name,
        ["as_of", "step", "batch_no", "last_line_id", "lines", "postings", "amount_fen"],
        (
            (day, step, number, (number + 1) * BATCH_LINES, BATCH_LINES, BATCH_LINES, 1_000)
            for day in days
            for step in ("due", "accrue", "bill")
            for number in range(batches)
        ),
    )
    writer.copy(
        OUTBOX_TABLE.name,
        ["business_key", "kind", "payload", "status", "attempts", "created_at", "updated_at"],
        (
            (f"cycle:{day:%Y%m%d}", "cycle_propose", "{}", status, 1, now, now)
            for number, day in enumerate(days)
            for status in (("pending",) if number >= cycles - 3 else ("confirmed",))
        ),
    )
    conn.execute(text("ANALYZE"))


def _views(cycle_id: int) -> dict[str, list[tuple[str, str]]]:
    """The requests each view makes when it loads, with the role that makes them."""
    return {
        "partner_all_cycles": [("partner", "/v1/partner/cycle-page?limit=366")],
        "partner": [
            ("partner", "/v1/partner/cycle-page?limit=31"),
            ("partner", "/v1/contracts"),
            ("partner", "/v1/partner/cash-flows?limit=90"),
            ("partner", "/v1/partner/funded-principal"),
        ],
        "partner_vintages": [("partner", "/v1/partner/vintages")],
        "partner_cycle": [("partner", f"/v1/partner/cycles/{cycle_id}/entries.ndjson")],
        "operations": [
            ("admin", "/v1/console/review-queue?limit=50"),
            ("admin", "/v1/console/portfolio"),
            ("admin", "/v1/console/decisions-per-hour?hours=48"),
            ("admin", "/v1/console/eod-runs?limit=10"),
            ("admin", "/v1/oracles/status"),
            ("admin", "/v1/console/outbox-age"),
        ],
    }


def _time(client: httpx.Client, path: str, key: str, repeat: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise AssertionError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return timings


def run_console_bench(
    lines: int = 100_000,
    cycles: int = 365,
    entries: int = 600,
    repeat: int = 5,
    database_url: str | None = None,
    keep: int = 0,
) -> Figures:
    """Seed, then time every console view's requests (module doc)."""
    with scratch_database(database_url, "creditnet_bench_console", keep=bool(keep)) as url:
        database = Database(url, pool_size=4)
        try:
            started = time.perf_counter()
            with database.engine.begin() as conn:
                seed_console(conn, lines, cycles, entries)
            seed_s = time.perf_counter() - started
            figures = _measure(database, cycles, repeat)
            figures.update(
                lines=lines,
                cycles=cycles,
                entries=cycles * entries,
                seed_s=round(seed_s, 1),
                database=shown_url(url),
            )
            return figures
        finally:
            database.dispose()


def _measure(database: Database, cycles: int, repeat: int) -> Figures:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="creditnet-bench-console-")))
    pepper = settings.api_key_pepper.get_secret_value().encode()
    with database.session() as session:
        keys = {
            "admin": create_api_key(session, Role.LENDER_ADMIN, pepper=pepper),
            "partner": create_api_key(session, Role.PARTNER, pepper=pepper, partner_id=BANK),
        }
    latest_cycle = int((BENCH_DAY - timedelta(days=1)).strftime("%Y%m%d"))
    requests: Figures = {}
    views: dict[str, float] = {}
    server = ThreadServer(create_app(settings, database=database), pick_free_port())
    server.start()
    client = httpx.Client(base_url=server.url, timeout=60)
    try:
        for view, calls in _views(latest_cycle).items():
            total_ms = 0.0
            for role, path in calls:
                _time(client, path, keys[role], 1)  # warm: caches, compiled contracts
                timings = _time(client, path, keys[role], repeat)
                median_ms = statistics.median(timings)
                total_ms += median_ms
                requests[path] = {
                    "median_ms": round(median_ms, 1),
                    "max_ms": round(max(timings), 1),
                }
            views[view] = round(total_ms, 1)
    finally:
        client.close()
        server.stop()
    return {"requests": requests, "view_ms_sum_of_medians": views, "repeat": repeat}
