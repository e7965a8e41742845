"""The partner feed on both databases: each partner reads only its own cycles' state
changes (books closes, then the ClearingHouse's events as the indexer stored them), in
order; a reader resuming after any event's cursor gets the rest exactly once, whether it
reads in small batches or reconnects to the server-sent event stream with
`Last-Event-ID`; the stream is for partner keys only, sends heartbeats while idle and
ends when the reader goes; and the API documents it as `text/event-stream`."""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from node_api.auth.keys import Role, create_api_key
from node_api.cli.serve import ThreadServer
from node_api.http.app import create_app
from node_api.http.routes import partner_feed
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetValueError
from oracles.anvil import pick_free_port
from oracles.event_store import BlockRef, EventStore, StoredEvent
from settlement.cycle_close import close_settlement_cycle
from settlement.feed import START, FeedCursor, FeedEvent, fetch_feed_events
from settlement.netting import ClosedCycle
from settlement.salts import LeafSalts
from settlement.watch import SseMessage, SseParser
from tests.integration.settlement.books import APP, BANK_A, BANK_B, GUARD, Books, random_day

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
SALTS = LeafSalts.from_settings(Settings())
DEADLINE = 1_900_000_000
_blocks = itertools.count(100)


@pytest.fixture
def cycle(database: Database) -> ClosedCycle:
    books = Books(database)
    books.setup()
    day = random_day(books, random.Random(3), operations=14)
    closed = close_settlement_cycle(database, day, salts=SALTS)
    assert {BANK_A, BANK_B, APP} <= set(closed.partner_ids)
    assert GUARD not in closed.partner_ids
    return closed


def _position(cycle: ClosedCycle, partner_id: int) -> int:
    return cycle.net_positions_fen[cycle.partner_ids.index(partner_id)]


def _index(database: Database, cycle_id: int, event: str, **args: Any) -> None:
    """Store one ClearingHouse event as the indexer would (the mirror folds it too)."""
    number = next(_blocks)
    block = BlockRef(number, f"0x{number:064x}", f"0x{number - 1:064x}")
    stored = StoredEvent(
        block_number=number,
        block_hash=block.hash,
        log_index=0,
        tx_hash=f"0x{number:064x}",
        contract="ClearingHouse",
        event=event,
        subject=f"cycle:{cycle_id}",
        args={"cycleId": cycle_id, **args},
    )
    EventStore(database).store_range([stored], [block], block)


def _propose(database: Database, cycle: ClosedCycle) -> None:
    assert cycle.entries_root is not None
    _index(
        database,
        cycle.cycle_id,
        "CycleProposed",
        entriesRoot="0x" + cycle.entries_root.hex(),
        entryCount=cycle.entry_count,
        partnerIds=list(cycle.partner_ids),
        netPositions=list(cycle.net_positions_fen),
        disputeDeadline=DEADLINE,
        fundingDeadline=DEADLINE + 86_400,
    )


def _read_all(
    database: Database, partner_id: int, after: FeedCursor, limit: int
) -> list[FeedEvent]:
    """Every event after `after`, read `limit` at a time, resuming from the last cursor."""
    events: list[FeedEvent] = []
    with database.engine.connect() as conn:
        while batch := fetch_feed_events(conn, partner_id, after, limit):
            events += batch
            after = batch[-1].cursor
    return events


def test_each_partner_reads_its_own_cycles_state_changes_in_order(
    database: Database, cycle: ClosedCycle
) -> None:
    with database.engine.connect() as conn:
        (closed,) = fetch_feed_events(conn, BANK_A, START)
        assert fetch_feed_events(conn, GUARD, START) == []
    assert (closed.cycle_id, closed.status, closed.source) == (cycle.cycle_id, "closed", "books")
    assert closed.entries_root == "0x" + (cycle.entries_root or b"").hex()
    assert closed.net_position_fen == _position(cycle, BANK_A)
    assert closed.dispute_deadline is None

    _propose(database, cycle)
    _index(database, cycle.cycle_id, "CycleFunded", partnerId=BANK_B, amount=1)  # no change
    _index(database, cycle.cycle_id, "CycleDisputed", partnerId=BANK_B, reason="0x" + "00" * 32)
    _index(database, cycle.cycle_id, "DisputeResolved", upheld=False)
    _index(database, cycle.cycle_id, "CycleFinalized", entriesRoot=closed.entries_root)
    _index(database, cycle.cycle_id + 1, "CycleProposed", entriesRoot="0x" + "11" * 32,
           entryCount=1, partnerIds=[GUARD], netPositions=[0], disputeDeadline=1,
           fundingDeadline=2)  # fmt: skip

    for partner_id in (BANK_A, APP):
        events = _read_all(database, partner_id, START, limit=500)
        assert [(e.cycle_id, e.status) for e in events] == [
            (cycle.cycle_id, status)
            for status in ("closed", "proposed", "disputed", "proposed", "finalized")
        ]
        assert {e.net_position_fen for e in events} == {_position(cycle, partner_id)}
        assert [e.chain_event for e in events[1:]] == [
            "CycleProposed", "CycleDisputed", "DisputeResolved", "CycleFinalized"
        ]  # fmt: skip
        assert all(e.dispute_deadline == DEADLINE for e in events[1:])
        assert all(e.entries_root == closed.entries_root for e in events)
        cursors = [e.cursor for e in events]
        assert cursors == sorted(set(cursors))  # strictly growing
    guard = _read_all(database, GUARD, START, limit=500)
    assert [(e.cycle_id, e.status) for e in guard] == [(cycle.cycle_id + 1, "proposed")]


def test_resuming_after_any_cursor_gives_the_rest_once_whatever_the_batch_size(
    database: Database, cycle: ClosedCycle
) -> None:
    _propose(database, cycle)
    _index(database, cycle.cycle_id, "CycleFinalized", entriesRoot="0x" + "00" * 32)
    _index(database, cycle.cycle_id, "CycleFullyFunded", totalDueFen=5)
    everything = _read_all(database, BANK_B, START, limit=500)
    assert [e.status for e in everything] == ["closed", "proposed", "finalized", "funded"]
    assert _read_all(database, BANK_B, START, limit=1) == everything
    for position, event in enumerate(everything):
        resumed = _read_all(database, BANK_B, FeedCursor.parse(str(event.cursor)), limit=2)
        assert resumed == everything[position + 1 :]


def test_a_cursor_is_three_growing_numbers_and_nothing_else_is_taken() -> None:
    cursor = FeedCursor(17, 1_751_328_000_000_000, 20250630)
    assert str(cursor) == "17.1751328000000000.20250630"
    assert FeedCursor.parse(str(cursor)) == cursor
    assert str(START) == "0.0.0"
    for bad in ("", "17", "1.2", "1.2.3.4", "-1.0.0", "a.b.c", "1.2.99999999999999999999"):
        with pytest.raises(CreditNetValueError):
            FeedCursor.parse(bad)


# --- the server-sent event stream -----------------------------------------------------


@dataclass
class Feed:
    url: str
    tokens: dict[Any, str]

    def headers(self, who: Any, last_event_id: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return headers


@pytest.fixture
def feed(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Feed]:
    monkeypatch.setattr(partner_feed, "POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(partner_feed, "HEARTBEAT_S", 0.2)
    with database.session() as session:
        tokens: dict[Any, str] = {
            role: create_api_key(session, role, pepper=PEPPER)
            for role in (Role.LENDER_ADMIN, Role.AUDITOR, Role.LENDER_APP)
        }
        for partner_id in (BANK_A, BANK_B, GUARD):
            tokens[partner_id] = create_api_key(
                session, Role.PARTNER, pepper=PEPPER, partner_id=partner_id
            )
    server = ThreadServer(
        create_app(Settings(data_dir=tmp_path), database=database), pick_free_port("127.0.0.1")
    )
    server.start()
    try:
        yield Feed(server.url + "/v1/partner/feed", tokens)
    finally:
        server.stop()


@dataclass
class Received:
    events: list[SseMessage]
    heartbeats: int
    retry_lines: int


def _listen(
    feed: Feed, who: Any, *, events: int, last_event_id: str | None = None, idle: int = 3
) -> Received:
    """Read the stream until `events` events arrived, or `idle` heartbeats in a row came
    without one (every 0.2 s here once the server found nothing new). Idleness is counted
    in heartbeats, not seconds: a slow first read on a loaded machine delays the events
    but sends no heartbeat, so it cannot end the reading halfway through an event."""
    parser = SseParser()
    received = Received([], 0, 0)
    quiet = 0
    headers = feed.headers(who, last_event_id)
    with httpx.stream("GET", feed.url, headers=headers, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        for line in response.iter_lines():
            if line == ": heartbeat":
                received.heartbeats += 1
                quiet += 1
            received.retry_lines += line.startswith("retry: ")
            message = parser.feed(line)
            if message is not None:
                received.events.append(message)
                quiet = 0
            if len(received.events) >= events or quiet >= idle:
                break
    return received


def _data(message: SseMessage) -> dict[str, Any]:
    assert message.event == "cycle"
    body: dict[str, Any] = json.loads(message.data)
    return body


def _wait_closed_feeds() -> None:
    deadline = time.monotonic() + 5
    while partner_feed.open_feeds and time.monotonic() < deadline:
        time.sleep(0.02)
    assert partner_feed.open_feeds == 0


def test_the_stream_delivers_live_resumes_by_last_event_id_and_ends_with_the_reader(
    database: Database, cycle: ClosedCycle, feed: Feed
) -> None:
    first = _listen(feed, BANK_A, events=1)
    assert first.retry_lines == 1
    (closed,) = first.events
    body = _data(closed)
    assert (body["cycle_id"], body["status"], body["source"]) == (cycle.cycle_id, "closed", "books")
    assert body["net_position_fen"] == _position(cycle, BANK_A)
    assert body["entries_url"] == f"/v1/partner/cycles/{cycle.cycle_id}/entries.ndjson"
    assert closed.id is not None
    _wait_closed_feeds()

    # Live: the proposal reaches a reader already waiting, after a heartbeat or two.
    with httpx.stream("GET", feed.url, headers=feed.headers(BANK_A, closed.id), timeout=5) as live:
        parser, lines = SseParser(), live.iter_lines()
        heartbeats = 0
        while heartbeats < 2:
            heartbeats += next(lines) == ": heartbeat"
        _propose(database, cycle)
        proposed = next(m for m in parser.messages(lines))
    _wait_closed_feeds()
    body = _data(proposed)
    assert (body["status"], body["chain_event"]) == ("proposed", "CycleProposed")
    assert body["dispute_deadline"] == DEADLINE
    assert body["entries_root"] == "0x" + (cycle.entries_root or b"").hex()
    assert proposed.id is not None and proposed.id != closed.id

    # Reconnecting after each id gives what followed it, none lost and none twice.
    _index(database, cycle.cycle_id, "CycleFinalized", entriesRoot=body["entries_root"])
    from_start = _listen(feed, BANK_A, events=3)
    assert [_data(m)["status"] for m in from_start.events] == ["closed", "proposed", "finalized"]
    assert [m.id for m in from_start.events[:2]] == [closed.id, proposed.id]
    after_closed = _listen(feed, BANK_A, events=5, last_event_id=closed.id)
    assert [m.id for m in after_closed.events] == [m.id for m in from_start.events[1:]]
    caught_up = _listen(feed, BANK_A, events=1, last_event_id=from_start.events[-1].id)
    assert caught_up.events == [] and caught_up.heartbeats >= 1
    by_query = httpx.get(feed.url, params={"after": "x"}, headers=feed.headers(BANK_A), timeout=5)
    assert by_query.status_code == 422
    _wait_closed_feeds()


def test_a_partner_only_hears_of_its_own_cycles(
    database: Database, cycle: ClosedCycle, feed: Feed
) -> None:
    _propose(database, cycle)
    bank_b = _listen(feed, BANK_B, events=5)
    assert [_data(m)["status"] for m in bank_b.events] == ["closed", "proposed"]
    assert {_data(m)["net_position_fen"] for m in bank_b.events} == {_position(cycle, BANK_B)}
    outsider = _listen(feed, GUARD, events=1)
    assert outsider.events == [] and outsider.heartbeats >= 1
    _wait_closed_feeds()


def test_only_partner_keys_may_open_the_feed(feed: Feed) -> None:
    assert httpx.get(feed.url, timeout=5).status_code == 401
    wrong = httpx.get(feed.url, headers={"Authorization": "Bearer cn_nope"}, timeout=5)
    assert wrong.status_code == 401
    for role in (Role.LENDER_ADMIN, Role.AUDITOR, Role.LENDER_APP):
        refused = httpx.get(feed.url, headers=feed.headers(role), timeout=5)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
    bad_cursor = httpx.get(feed.url, headers=feed.headers(BANK_A, "not-a-cursor"), timeout=5)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["field"] == "Last-Event-ID"


def test_the_api_documents_the_feed_as_an_event_stream(feed: Feed) -> None:
    document = httpx.get(feed.url.replace("/v1/partner/feed", "/openapi.json"), timeout=5).json()
    operation = document["paths"]["/v1/partner/feed"]["get"]
    assert operation["operationId"] == "partner_feed_stream"
    content = operation["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    item = content["text/event-stream"]["itemSchema"]
    assert item["properties"]["data"]["contentSchema"] == {
        "$ref": "#/components/schemas/PartnerFeedEvent"
    }
    assert "id: " in content["text/event-stream"]["example"]
    assert "Last-Event-ID" in operation["description"]
    assert {p["name"] for p in operation["parameters"]} == {"Last-Event-ID", "after"}
    schema = document["components"]["schemas"]["PartnerFeedEvent"]
    assert {"cycle_id", "status", "entries_root", "dispute_deadline", "net_position_fen",
            "entries_url"} <= set(schema["properties"])  # fmt: skip
