"""A publisher process that SIGKILLs itself after its Nth acknowledged page, before the
cursor write (run by test_event_stream.py; configured through CN_TEST_* variables)."""

from __future__ import annotations

import os
import signal
import sys

from node_api.events.jetstream import JetStreamSink
from node_api.events.publisher import HOOK_AFTER_PUBLISH, EventPublisher, PublisherConfig
from node_api.kernel.db import Database


def main() -> None:
    kill_after = int(sys.argv[1])
    pages = {"acknowledged": 0}

    def hook(point: str) -> None:
        if point == HOOK_AFTER_PUBLISH:
            pages["acknowledged"] += 1
            if pages["acknowledged"] >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    database = Database(os.environ["CN_TEST_DB_URL"])
    sink = JetStreamSink(
        os.environ["CN_TEST_NATS_URL"], os.environ["CN_TEST_STREAM"], os.environ["CN_TEST_PREFIX"]
    )
    EventPublisher(database, sink, PublisherConfig(page_size=16), hook=hook).run_until_idle(60)


if __name__ == "__main__":
    main()
