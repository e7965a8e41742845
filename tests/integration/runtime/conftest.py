"""Fixtures of the runtime tests: a NATS JetStream server and a stream of the test's own.

NATS runs on 127.0.0.1:4222 on this kind of machine and in CI (`CREDITNET_TEST_NATS_URL`
overrides it). Like PostgreSQL in tests/db_fixtures.py: under CI=true a missing server
fails the run; elsewhere the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import nats
import orjson
import pytest
from nats.js.errors import NotFoundError

from tests.db_fixtures import IN_CI

NATS_URL = os.environ.get("CREDITNET_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _nats_problem() -> str | None:
    parsed = urlparse(NATS_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), 2):
            return None
    except OSError as error:
        return str(error)


@pytest.fixture(scope="session")
def nats_url() -> str:
    problem = _nats_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"NATS JetStream is mandatory under CI=true and is unreachable: {problem}")
        pytest.skip(f"event stream tests skipped: no NATS at {NATS_URL} ({problem})")
    return NATS_URL


@dataclass(frozen=True)
class OwnStream:
    """A stream and subject prefix only this test publishes to."""

    url: str
    name: str
    prefix: str

    def consume_all(self) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        """Every message in the stream: (subject, document, headers), in stream order."""
        return asyncio.run(_consume(self))

    def count(self) -> int:
        return asyncio.run(_count(self))


async def _consume(stream: OwnStream) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """Read the stream by sequence number (no consumer, so nothing is redelivered or
    left unread when a fetch times out)."""
    client = await nats.connect(stream.url)
    try:
        js = client.jetstream()
        state = (await js.stream_info(stream.name)).state
        messages: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        if state.messages == 0:
            return messages
        for sequence in range(state.first_seq, state.last_seq + 1):
            message = await js.get_msg(stream.name, sequence)
            messages.append(
                (str(message.subject), orjson.loads(message.data or b"{}"), message.headers or {})
            )
        return messages
    finally:
        await client.close()


async def _count(stream: OwnStream) -> int:
    client = await nats.connect(stream.url)
    try:
        info = await client.jetstream().stream_info(stream.name)
        return int(info.state.messages)
    finally:
        await client.close()


async def _delete(stream: OwnStream) -> None:
    client = await nats.connect(stream.url)
    try:
        await client.jetstream().delete_stream(stream.name)
    except NotFoundError:
        pass
    finally:
        await client.close()


@pytest.fixture
def test_stream(nats_url: str) -> Iterator[OwnStream]:
    token = secrets.token_hex(4)
    stream = OwnStream(nats_url, f"CN_TEST_{token}", f"cntest{token}")
    yield stream
    asyncio.run(_delete(stream))
