"""Live bin counts per card, persisted, for population stability on `/v1/risk/monitoring`.

Every scored application adds one to its bin of each characteristic and to its
score band, in the application's own transaction. Counters are spread over
`SHARD_COUNT` rows per bin (the shard is picked from the application id) so that
concurrent applications rarely wait on the same row; a report adds the shards up.
Rows are upserted in key order, so two transactions never deadlock on them; on
PostgreSQL one set-based statement upserts all of an application's cells.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    SmallInteger,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from node_api.risk.card import ScorecardCard
from node_api.risk.monitoring import LiveCounts, StabilityReport, compute_stability_report
from node_api.risk.scorecard import ScoreResult

SHARD_COUNT = 16
SCORE_BAND_SERIES = ""
"""The `characteristic` value of score-band counters (card characteristics have names)."""

live_count_table = Table(
    "risk_live_count",
    SQLModel.metadata,
    Column("model_id", String(80), primary_key=True),
    Column("characteristic", String(128), primary_key=True),
    Column("bin_index", Integer, primary_key=True, autoincrement=False),
    Column("shard", SmallInteger, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
)


def get_shard(key: str) -> int:
    """A stable shard for a key (the application id)."""
    return zlib.crc32(key.encode("utf-8")) % SHARD_COUNT


def record_live_score(conn: Connection, result: ScoreResult, *, shard_key: str) -> None:
    """Count one scored application: its bin of every characteristic and its score band."""
    if conn.dialect.name == "postgresql":
        conn.execute(_UPSERT_SET_BASED, compute_live_cell_arrays([result], shard_key))
        return
    shard = get_shard(shard_key)
    rows = [
        {
            "model_id": result.model_id,
            "characteristic": name,
            "bin_index": index,
            "shard": shard,
            "count": 1,
        }
        for name, index in compute_live_cells(result)
    ]
    conn.execute(_upsert_statement(conn.dialect.name), rows)


def compute_live_cells(result: ScoreResult) -> list[tuple[str, int]]:
    """The (characteristic, bin) cells one scored application counts, in key order."""
    cells = [(name, index) for name, index in result.bin_indices.items()]
    cells.append((SCORE_BAND_SERIES, result.score_band))
    cells.sort()
    return cells


def compute_live_cell_arrays(results: Sequence[ScoreResult], shard_key: str) -> dict[str, Any]:
    """The parameters of `LIVE_COUNT_UPSERT_SQL`: the cells of every result (given in
    model id order), as arrays in PostgreSQL's text form (cheaper to bind than lists,
    which psycopg adapts element by element)."""
    model_ids, names, indices = [], [], []
    for result in results:
        for name, index in compute_live_cells(result):
            model_ids.append(result.model_id)
            names.append(name)
            indices.append(index)
    return {
        "live_shard": get_shard(shard_key),
        "live_model_ids": _text_array(model_ids),
        "live_characteristics": _text_array(names),
        "live_bin_indices": "{" + ",".join(map(str, indices)) + "}",
    }


def _text_array(values: Sequence[str]) -> str:
    """PostgreSQL's text form of an array of strings: each quoted, backslash and double
    quote escaped, so any content reads back unchanged."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


LIVE_COUNT_UPSERT_SQL = (
    "INSERT INTO risk_live_count (model_id, characteristic, bin_index, shard, count) "
    "SELECT v.model_id, v.characteristic, v.bin_index, CAST(:live_shard AS SMALLINT), 1 "
    "FROM unnest(CAST(:live_model_ids AS VARCHAR[]), CAST(:live_characteristics AS VARCHAR[]), "
    "CAST(:live_bin_indices AS INTEGER[])) "
    "WITH ORDINALITY AS v(model_id, characteristic, bin_index, n) ORDER BY v.n "
    "ON CONFLICT (model_id, characteristic, bin_index, shard) "
    "DO UPDATE SET count = risk_live_count.count + excluded.count"
)
"""PostgreSQL: every cell of an application in one statement (one execution instead of
one per cell), upserted in the order of the arrays, which is key order. Its parameters
are `compute_live_cell_arrays`; the decision's rows embed it in their own statement."""
_UPSERT_SET_BASED = text(LIVE_COUNT_UPSERT_SQL)


@functools.cache
def _upsert_statement(dialect_name: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE SET count = count + excluded.count, built once."""
    table = live_count_table
    insert: Any = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    return insert.on_conflict_do_update(
        index_elements=["model_id", "characteristic", "bin_index", "shard"],
        set_={"count": table.c.count + insert.excluded.count},
    )


def fetch_live_counts(conn: Connection, card: ScorecardCard) -> LiveCounts:
    """The card's live counts, shards added up; bins the card does not have are ignored."""
    live = LiveCounts.empty(card)
    table = live_count_table
    rows = conn.execute(
        select(table.c.characteristic, table.c.bin_index, func.sum(table.c.count))
        .where(table.c.model_id == card.model_id)
        .group_by(table.c.characteristic, table.c.bin_index)
    ).all()
    for name, index, count in rows:
        series = live.score_bands if name == SCORE_BAND_SERIES else live.bins.get(str(name))
        if series is not None and 0 <= int(index) < len(series):
            series[int(index)] = int(count)
    return live


def fetch_live_model_ids(conn: Connection) -> list[str]:
    """Model ids that have scored at least one live application."""
    table = live_count_table
    return [str(m) for m in conn.execute(select(table.c.model_id).distinct()).scalars()]


def fetch_stability_report(conn: Connection, card: ScorecardCard) -> StabilityReport:
    """PSI of live applications against the card's training distribution."""
    return compute_stability_report(card, fetch_live_counts(conn, card))
