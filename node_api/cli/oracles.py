"""`creditnet relayer` and `creditnet indexer`: the oracle workers without the API.

They take the same worker leases as `creditnet up`, so they may run beside nodes serving
the same database: whichever process holds a worker's lease runs it, the others wait
and take over when it stops or dies.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import typer

from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.kernel.logs import configure_logging
from node_api.runtime.background import start_oracle_workers
from node_api.runtime.boot import start_chain


def register(app: typer.Typer) -> None:
    app.command("relayer")(relayer)
    app.command("indexer")(indexer)


def _run(data_dir: Path | None, *, relay: bool, index: bool) -> None:
    # The signal handlers come first, as in `creditnet up`: a SIGTERM during start-up
    # stops the process cleanly (exit 0, leases released) once the workers are up.
    with _stop_on_signal() as stop:
        configure_logging()
        settings = node_settings(data_dir)
        database = open_database(settings)
        chain = start_chain(settings)
        try:
            workers = start_oracle_workers(settings, database, chain, relay=relay, index=index)
            try:
                while not stop.wait(1.0):
                    pass
            finally:
                workers.stop()  # leases released: another process takes over at once
        finally:
            chain.stop()


@contextmanager
def _stop_on_signal() -> Iterator[threading.Event]:
    """An event SIGINT or SIGTERM sets, for as long as the block runs."""
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def relayer(data_dir: Path | None = DATA_DIR) -> None:
    """Drain the outbox to the chain until stopped (Ctrl-C), under the relayer's lease."""
    _run(data_dir, relay=True, index=False)


def indexer(data_dir: Path | None = DATA_DIR) -> None:
    """Follow the contracts' events into the books until stopped (Ctrl-C), under the
    indexer's lease."""
    _run(data_dir, relay=False, index=True)
