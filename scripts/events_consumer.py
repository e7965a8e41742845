"""A sample consumer of the node's event stream (docs/EVENTS.md).

    python -m scripts.events_consumer --url nats://127.0.0.1:4222 --durable my-books

It reads the stream through a durable pull consumer (so it resumes where it stopped),
checks each event's schema version, hands it to `handle` and acknowledges it only after
`handle` returned. JetStream holds each event once, but delivers it again when an
acknowledgement was lost (a crash after `handle`, before the ack): `handle` must be
idempotent by the event's `id`. This sample keeps the ids it applied in a SQLite file
(`--state`), in the same transaction as what it applies, which is the pattern a real
consumer's own books would follow. What it applies here: one JSON line per new event on
stdout, and running totals per type.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import TypedDict

import nats
import orjson
from nats.errors import TimeoutError as NatsTimeoutError

SUPPORTED_SCHEMA = "creditnet.event/1"


class Event(TypedDict):
    """The envelope of docs/EVENTS.md (schema `creditnet.event/1`)."""

    schema: str
    id: str
    type: str
    as_of: str | None
    data: dict[str, object]


class AppliedEvents:
    """The ids this consumer applied, and its running totals, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("CREATE TABLE IF NOT EXISTS applied (id TEXT PRIMARY KEY)")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS totals (type TEXT PRIMARY KEY, events INTEGER NOT NULL)"
        )
        self.conn.commit()

    def apply(self, event: Event) -> bool:
        """Record `event` once; False when it was applied before (a redelivery)."""
        with self.conn:
            inserted = self.conn.execute(
                "INSERT OR IGNORE INTO applied (id) VALUES (?)", (event["id"],)
            ).rowcount
            if inserted == 0:
                return False
            self.conn.execute(
                "INSERT INTO totals (type, events) VALUES (?, 1) "
                "ON CONFLICT (type) DO UPDATE SET events = events + 1",
                (event["type"],),
            )
        return True

    def totals(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT type, events FROM totals ORDER BY type").fetchall())


def handle(event: Event, applied: AppliedEvents) -> None:
    """Apply one event (idempotent by id)."""
    if event.get("schema") != SUPPORTED_SCHEMA:
        raise ValueError(f"unsupported event schema {event.get('schema')!r}")
    if applied.apply(event):
        sys.stdout.write(orjson.dumps(event).decode() + "\n")
        sys.stdout.flush()


async def consume(args: argparse.Namespace) -> int:
    applied = AppliedEvents(Path(args.state))
    client = await nats.connect(args.url)
    handled = 0
    try:
        js = client.jetstream()
        subscription = await js.pull_subscribe(
            f"{args.prefix}.>", durable=args.durable, stream=args.stream
        )
        idle_s = 0.0
        while args.max_events == 0 or handled < args.max_events:
            try:
                messages = await subscription.fetch(100, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                idle_s += 1.0
                if args.exit_when_idle_s and idle_s >= args.exit_when_idle_s:
                    break
                continue
            idle_s = 0.0
            for message in messages:
                handle(orjson.loads(message.data), applied)
                await message.ack()
                handled += 1
    finally:
        await client.close()
    sys.stderr.write(orjson.dumps({"handled": handled, "totals": applied.totals()}).decode() + "\n")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222", help="the NATS server")
    parser.add_argument("--stream", default="CREDITNET_EVENTS", help="CREDITNET_EVENTS_STREAM")
    parser.add_argument("--prefix", default="creditnet", help="CREDITNET_EVENTS_SUBJECT_PREFIX")
    parser.add_argument("--durable", default="sample-consumer", help="durable consumer name")
    parser.add_argument("--state", default="events-consumer.db", help="applied ids (SQLite)")
    parser.add_argument("--max-events", type=int, default=0, help="stop after N (0: never)")
    parser.add_argument(
        "--exit-when-idle-s", type=float, default=0.0, help="stop after N idle seconds"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(consume(parse_args())))
