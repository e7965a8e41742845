"""One leader per background worker across every node serving the same database.

Each worker of `creditnet up` runs as terms under a lease (`oracles.leases`): a node
that takes the lease runs the worker until it stops, loses the lease or the worker
fails; another node waits and tries again every `acquire_every_s`. A renewer thread
extends the lease every third of its time to live and ends the term as soon as a renewal
fails, and a worker whose writes are fenced (the relayers, the event publisher) ends its
term at the first refused write. On a clean stop the lease is released, so another node
takes over at once; after a crash it expires after `CREDITNET_LEASE_TTL_S`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from node_api.kernel.config import Settings
from oracles.leases import LeaseLost, LeaseStore

log = logging.getLogger("creditnet.leases")

POLL_S: Final = 0.1
"""How often the renewer looks at the stop events between renewals."""

TermRunner = Callable[[int, threading.Event], None]
"""Runs a worker for one term: (epoch, term_stop) until `term_stop` is set."""


def get_node_id(settings: Settings) -> str:
    """This node's name in the leases: the configured one, else `<hostname>:<pid>`."""
    return settings.node_id or f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaseTiming:
    ttl_s: float
    acquire_every_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LeaseTiming:
        return cls(ttl_s=settings.lease_ttl_s, acquire_every_s=min(1.0, settings.lease_ttl_s / 4))


def run_under_lease(
    name: str,
    leases: LeaseStore,
    run_term: TermRunner,
    stop: threading.Event,
    timing: LeaseTiming,
) -> None:
    """Run `name`'s terms on this node whenever it holds the lease, until `stop`."""
    while not stop.is_set():
        try:
            epoch = leases.try_acquire(name)
        except Exception:  # the database may be down: try again, never die
            log.warning("lease not reachable", extra={"worker": name}, exc_info=True)
            epoch = None
        if epoch is None:
            stop.wait(timing.acquire_every_s)
            continue
        log.info("lease acquired", extra={"worker": name, "epoch": epoch})
        _run_term(name, leases, epoch, run_term, stop, timing)


def _run_term(
    name: str,
    leases: LeaseStore,
    epoch: int,
    run_term: TermRunner,
    stop: threading.Event,
    timing: LeaseTiming,
) -> None:
    term_stop = threading.Event()
    lost = threading.Event()
    renewer = threading.Thread(
        target=_renew,
        args=(name, leases, epoch, stop, term_stop, lost, timing),
        name=f"{name}-lease",
        daemon=True,
    )
    renewer.start()
    try:
        run_term(epoch, term_stop)
    except LeaseLost:
        lost.set()
    except Exception:
        log.exception("worker term failed", extra={"worker": name, "epoch": epoch})
        stop.wait(timing.acquire_every_s)
    finally:
        term_stop.set()
        renewer.join()
    if lost.is_set():
        log.warning("lease lost", extra={"worker": name, "epoch": epoch})
        return
    try:
        leases.release(name, epoch)
        log.info("lease released", extra={"worker": name, "epoch": epoch})
    except Exception:  # it expires by itself
        log.warning("lease not released", extra={"worker": name}, exc_info=True)


def _renew(
    name: str,
    leases: LeaseStore,
    epoch: int,
    stop: threading.Event,
    term_stop: threading.Event,
    lost: threading.Event,
    timing: LeaseTiming,
) -> None:
    """Renew every third of the time to live; end the term on stop or a lost lease."""
    renewed_at = time.monotonic()
    while not term_stop.is_set():
        if stop.wait(POLL_S):
            term_stop.set()
            return
        now = time.monotonic()
        if now - renewed_at < timing.ttl_s / 3:
            continue
        try:
            held = leases.renew(name, epoch)
        except Exception:
            log.warning("lease renewal failed", extra={"worker": name}, exc_info=True)
            held = now - renewed_at < timing.ttl_s
        if not held:
            lost.set()
            term_stop.set()
            return
        renewed_at = now


def fenced_step(
    name: str, step: Callable[[], bool], term_stop: threading.Event
) -> Callable[[], bool]:
    """`step`, ending the term at once when one of its writes is refused by the fence."""

    def run() -> bool:
        try:
            return step()
        except LeaseLost:
            log.warning("write refused by the lease fence", extra={"worker": name})
            term_stop.set()
            return False

    return run
