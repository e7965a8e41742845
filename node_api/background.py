"""Background workers that run inside `creditnet up` (relayer, indexer, schedulers)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from node_api.config import Settings
from node_api.db import Database

if TYPE_CHECKING:
    from node_api.node_runtime import ChainRuntime

log = logging.getLogger("creditnet.workers")


@dataclass
class BackgroundWorkers:
    """Worker threads sharing one stop event."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def spawn(self, name: str, loop: Callable[[threading.Event], None]) -> None:
        def run() -> None:
            try:
                loop(self.stop_event)
            except Exception:
                log.exception("worker crashed", extra={"worker": name})

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout_s)


def start_background_workers(
    settings: Settings, database: Database, chain: ChainRuntime
) -> BackgroundWorkers:
    workers = BackgroundWorkers()
    return workers
