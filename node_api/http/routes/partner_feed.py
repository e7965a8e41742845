"""The partner feed: server-sent events for every state change of a partner's cycles.

A partner key opens `GET /v1/partner/feed` once and learns of each cycle it is in as the
books close it and as the ClearingHouse proposes, disputes, finalizes, funds, defaults or
rejects it, without asking again (`creditnet verify --watch` follows it). What is read and
how the cursor works is `settlement.feed`; this module authorizes, polls it on the node's
async database engine (no thread held per reader), and writes the events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from node_api.auth.keys import Principal
from node_api.http.authz import PartnerDep
from node_api.http.deps import DatabaseDep
from node_api.http.schemas import PROBLEMS
from node_api.kernel.db import Database
from node_api.kernel.errors import ForbiddenError
from node_api.kernel.money import Fen
from settlement.feed import START, FeedCursor, FeedEvent, fetch_feed_events

logger = logging.getLogger(__name__)

router = APIRouter(tags=["settlement"])

POLL_INTERVAL_S: Final = 1.0
"""How often an open feed looks for new events."""
HEARTBEAT_S: Final = 15.0
"""A comment line is sent after this long without an event, so proxies keep the stream."""
RETRY_MS: Final = 2_000
"""The reconnection delay the stream advises (`retry:`)."""
EVENT_NAME: Final = "cycle"


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response written by the route itself (FastAPI's
    `EventSourceResponse` would take the route for a generator of events)."""

    media_type = "text/event-stream"


open_feeds = 0
"""How many feeds are open in this process now."""

_FEED_PATH: Final = "/v1/partner/feed"
_ENTRIES_URL: Final = "/v1/partner/cycles/{cycle_id}/entries.ndjson"


class PartnerFeedEvent(BaseModel):
    """The `data:` of one feed event: a cycle you are in changed state."""

    cycle_id: int = Field(description="`attempt * 10**8 + yyyymmdd`.")
    cycle_date: str = Field(description="The business date the cycle settles (YYYY-MM-DD).")
    attempt: int = Field(description="0 for a date's first cycle; 1, 2, ... after a void one.")
    status: str = Field(
        description="`closed` (frozen in the books: your entries can be downloaded), or the "
        "ClearingHouse status the chain event set: `proposed`, `disputed`, `finalized`, "
        "`funded`, `rejected` or `defaulted`."
    )
    source: str = Field(description="`books` or `chain`.")
    chain_event: str | None = Field(
        description="The ClearingHouse event (`CycleProposed`, ...); null for `books`."
    )
    entries_root: str | None = Field(description="The cycle's Merkle root (0x-hex).")
    dispute_deadline: int | None = Field(
        description="Unix seconds until which you may dispute (known once proposed on-chain)."
    )
    net_position_fen: Fen = Field(
        description="Your net position (positive: you receive): the books' for a `books` "
        "event, the ClearingHouse's for a `chain` event."
    )
    block_number: int | None = Field(description="The chain event's block; null for `books`.")
    tx_hash: str | None = Field(description="The chain event's transaction; null for `books`.")
    entries_url: str = Field(description="Where to download your entries with their proofs.")


_EXAMPLE_STREAM: Final = (
    "retry: 2000\n\n"
    "event: cycle\n"
    'data: {"cycle_id":20250630,"cycle_date":"2025-06-30","attempt":0,"status":"closed",'
    '"source":"books","chain_event":null,"entries_root":"0x4f1c...","dispute_deadline":null,'
    '"net_position_fen":-830000,"block_number":null,"tx_hash":null,'
    '"entries_url":"/v1/partner/cycles/20250630/entries.ndjson"}\n'
    "id: 0.1751328000000000.20250630\n\n"
    ": heartbeat\n\n"
    "event: cycle\n"
    'data: {"cycle_id":20250630,"cycle_date":"2025-06-30","attempt":0,"status":"proposed",'
    '"source":"chain","chain_event":"CycleProposed","entries_root":"0x4f1c...",'
    '"dispute_deadline":1751417400,"net_position_fen":-830000,"block_number":1204,'
    '"tx_hash":"0x9a3e...","entries_url":"/v1/partner/cycles/20250630/entries.ndjson"}\n'
    "id: 17.1751328000000000.20250630\n\n"
)

_SSE_ITEM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": [EVENT_NAME]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/PartnerFeedEvent"},
        },
        "id": {
            "type": "string",
            "description": "The cursor just past this event: send it back as `Last-Event-ID`.",
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}


def _partner_id(who: Principal) -> int:
    if who.partner_id is None:
        raise ForbiddenError("this partner key names no partner")
    return who.partner_id


def _frame(event: FeedEvent) -> bytes:
    body = PartnerFeedEvent(
        **event.to_json(), entries_url=_ENTRIES_URL.format(cycle_id=event.cycle_id)
    )
    return (
        f"event: {EVENT_NAME}\ndata: ".encode()
        + orjson.dumps(body.model_dump(mode="json"))
        + f"\nid: {event.cursor}\n\n".encode()
    )


async def _read(database: Database, partner_id: int, after: FeedCursor) -> list[FeedEvent]:
    async with database.async_engine.connect() as conn:
        return await conn.run_sync(fetch_feed_events, partner_id, after)


async def feed_frames(
    database: Database, partner_id: int, after: FeedCursor
) -> AsyncIterator[bytes]:
    """The stream: `retry:`, then every event after `after` as it appears, a heartbeat
    comment when idle. Ends when the reader goes (the response is cancelled)."""
    global open_feeds
    open_feeds += 1
    cursor = after
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        quiet_since = time.monotonic()
        while True:
            try:
                events = await _read(database, partner_id, cursor)
            except Exception:  # the reader reconnects with its last id when the books answer
                logger.warning("partner feed read failed", exc_info=True)
                return
            for event in events:
                yield _frame(event)
                cursor = event.cursor
            if events:
                quiet_since = time.monotonic()
                continue  # there may be more: read again at once
            if time.monotonic() - quiet_since >= HEARTBEAT_S:
                yield b": heartbeat\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_INTERVAL_S)
    finally:
        open_feeds -= 1
        logger.debug("partner feed closed", extra={"partner_id": partner_id})


@router.get(
    _FEED_PATH,
    name="partner_feed_stream",
    response_class=EventStreamResponse,
    response_model=PartnerFeedEvent,
    responses={
        200: {
            "description": "An endless `text/event-stream` of events (see above).",
            "content": {
                "text/event-stream": {"itemSchema": _SSE_ITEM_SCHEMA, "example": _EXAMPLE_STREAM}
            },
        },
        **PROBLEMS,
    },
)
async def stream_partner_feed(
    who: PartnerDep,
    database: DatabaseDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The `id` of the last event you received: the stream resumes after it.",
        ),
    ] = None,
    after: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Same as `Last-Event-ID`, for clients that cannot set headers "
            "(the header wins when both are given).",
        ),
    ] = None,
) -> EventStreamResponse:
    """Every state change of the cycles you are in, as server-sent events, live.

    One `cycle` event per change, oldest first: `closed` when the books freeze a cycle you
    have a position in (your entries can be downloaded from `entries_url`), then, as the
    ClearingHouse changes it, `proposed` (with `dispute_deadline`: check your entries and
    dispute before it), `disputed`, `finalized`, `funded`, `rejected` or `defaulted`
    (`proposed` again when a dispute is dismissed). Each event's `data` is one JSON
    object (`PartnerFeedEvent`); its `id` is a cursor. A comment line (`: heartbeat`)
    comes after 15 s without an event.

    **Resuming.** Reconnect with header `Last-Event-ID` (or `?after=`) set to the last
    `id` you received: the stream goes on with the next event, none lost and none twice.
    Without a cursor it starts from your first cycle. The cursor is opaque (three
    numbers, each of which only grows); keep it as text.

    Partner keys only; the stream carries only your own cycles and your own positions.
    What the ClearingHouse says can be checked on-chain: `creditnet verify --watch`
    follows this feed and checks each proposed cycle before its dispute deadline.
    """
    partner_id = _partner_id(who)
    cursor = START
    if last_event_id is not None:
        cursor = FeedCursor.parse(last_event_id, field="Last-Event-ID")
    elif after is not None:
        cursor = FeedCursor.parse(after, field="after")
    return EventStreamResponse(
        feed_frames(database, partner_id, cursor),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
