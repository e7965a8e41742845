"""The NATS JetStream sink: one stream for every event subject of the node, with
de-duplication by message id over a window far longer than any restart.

nats-py is asynchronous; the sink runs its own event loop and is used from one thread
(the publisher's worker), like the relayer's RPC session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from node_api.events.schema import SCHEMA_NAME, BusinessEvent
from node_api.kernel.errors import CreditNetError

DUPLICATE_WINDOW_S: Final = 3_600.0
"""JetStream drops a message whose id it saw this recently: an hour covers any restart."""
MSG_ID_HEADER: Final = "Nats-Msg-Id"
SCHEMA_HEADER: Final = "CreditNet-Event-Schema"

T = TypeVar("T")


class EventStreamUnavailable(CreditNetError, ConnectionError):
    """NATS did not answer or did not acknowledge a publish; the worker retries."""

    code = "event_stream_unavailable"


class JetStreamSink:
    """Publishes events to `<subject_prefix>.<type>` in stream `stream`, created if absent."""

    def __init__(
        self,
        url: str,
        stream: str,
        subject_prefix: str,
        *,
        duplicate_window_s: float = DUPLICATE_WINDOW_S,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.duplicate_window_s = duplicate_window_s
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._client: Client | None = None
        self._js: JetStreamContext | None = None

    def publish(self, events: Sequence[BusinessEvent]) -> None:
        js = self._connect()

        async def send_all() -> None:
            # Queued in order without yielding to the loop (a page is far under the client's
            # 4,000 pending publishes, so no stall), flushed together, acknowledged together.
            acks = [
                await js.publish_async(
                    event.get_subject(self.subject_prefix),
                    event.to_json(),
                    headers={MSG_ID_HEADER: event.id, SCHEMA_HEADER: SCHEMA_NAME},
                )
                for event in events
            ]
            await asyncio.wait_for(asyncio.gather(*acks), timeout=self.timeout_s)

        self._run(send_all())

    def close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            with contextlib.suppress(EventStreamUnavailable):
                self._run(self._client.close())
        self._client = None
        self._js = None
        self._loop.close()

    def _connect(self) -> JetStreamContext:
        if self._js is not None and self._client is not None and self._client.is_connected:
            return self._js
        if self._client is not None and not self._client.is_closed:
            # After a failure: a fresh connection, without the old one's pending acks.
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                self._loop.run_until_complete(self._client.close())

        async def connect() -> tuple[Client, JetStreamContext]:
            client = await nats.connect(
                self.url,
                connect_timeout=self.timeout_s,
                max_reconnect_attempts=2,
                reconnect_time_wait=0.2,
            )
            js = client.jetstream(timeout=self.timeout_s)
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                await js.add_stream(
                    StreamConfig(
                        name=self.stream,
                        subjects=[f"{self.subject_prefix}.>"],
                        duplicate_window=self.duplicate_window_s,
                    )
                )
            return client, js

        self._client, self._js = self._run(connect())
        return self._js

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop.run_until_complete(coroutine)
        except (TimeoutError, NatsError, OSError) as error:
            self._js = None
            raise EventStreamUnavailable(
                f"event stream unavailable: {type(error).__name__}"
            ) from None
