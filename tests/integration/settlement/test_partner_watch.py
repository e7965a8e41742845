"""`creditnet verify --watch`'s loop against the real feed (the chain check stood in for):
it waits for a lender that is not up yet, checks each cycle once as it is proposed,
reconnects with `Last-Event-ID` when the stream goes quiet, and after a restart from its
state file neither checks a cycle again nor skips one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from node_api.auth.keys import Role, create_api_key
from node_api.cli.serve import ThreadServer
from node_api.http.app import create_app
from node_api.http.routes import partner_feed
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetValueError
from oracles.anvil import pick_free_port
from settlement import watch
from settlement.netting import ClosedCycle
from settlement.watch import CycleCheck, PartnerWatch, WatchConfig, WatchState, WatchSummary
from tests.integration.settlement.books import BANK_A
from tests.integration.settlement.test_partner_feed import PEPPER, _index, _propose, cycle

__all__ = ["cycle"]  # a fixture
sqlite_only = pytest.mark.parametrize("db_backend", ["sqlite"])


class StandInChecker:
    """Records which cycles the loop asked to check; every one passes."""

    def __init__(self) -> None:
        self.checked: list[int] = []

    def check(self, cycle_id: int) -> CycleCheck:
        self.checked.append(cycle_id)
        return CycleCheck(cycle_id, True, (), "stand-in")

    def close(self) -> None:
        pass


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lender that polls often and sends no heartbeat, a watcher that thinks a silent
    stream dead after 0.4 s: every few tenths of a second, it reconnects."""
    monkeypatch.setattr(partner_feed, "POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(partner_feed, "HEARTBEAT_S", 100.0)
    monkeypatch.setattr(watch, "IDLE_TIMEOUT_S", 0.4)
    monkeypatch.setattr(watch, "BACKOFF_MAX_S", 0.4)


def _config(url: str, key: str, state: Path, **limits: float) -> WatchConfig:
    return WatchConfig(
        api_url=url,
        api_key=key,
        partner_id=BANK_A,
        rpc_url="http://127.0.0.1:1",  # never used by the stand-in
        clearing_house="0x" + "00" * 20,
        state_path=state,
        max_cycles=int(limits["max_cycles"]) if "max_cycles" in limits else None,
        timeout_s=limits.get("timeout_s"),
    )


def _wait_for(condition: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)
    assert condition()  # type: ignore[operator]


def _propose_to_bank_a(database: Database, cycle_id: int, root_byte: str) -> None:
    """A proposal only the chain knows of (the ClearingHouse lists bank-a in it)."""
    _index(
        database,
        cycle_id,
        "CycleProposed",
        entriesRoot="0x" + root_byte * 32,
        entryCount=1,
        partnerIds=[BANK_A],
        netPositions=[0],
        disputeDeadline=1,
        fundingDeadline=2,
    )


@pytest.fixture
def partner_key(database: Database) -> str:
    with database.session() as session:
        return create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=BANK_A)


@sqlite_only
def test_the_watch_checks_each_proposal_once_across_reconnects_and_restarts(
    database: Database, cycle: ClosedCycle, partner_key: str, tmp_path: Path, quick: None
) -> None:
    port = pick_free_port("127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    state_path = tmp_path / "watch.json"
    checker = StandInChecker()
    lines: list[str] = []
    warnings: list[str] = []
    watcher = PartnerWatch(
        _config(url, partner_key, state_path, max_cycles=2, timeout_s=30),
        lines.append,
        warnings.append,
        checker=checker,
    )
    result: list[WatchSummary] = []
    thread = threading.Thread(target=lambda: result.append(watcher.run()), daemon=True)
    thread.start()
    _wait_for(lambda: warnings)  # the lender is not up yet: the watcher backs off
    server = ThreadServer(create_app(Settings(data_dir=tmp_path), database=database), port)
    server.start()
    try:
        _wait_for(lambda: WatchState.load(state_path, BANK_A).cursor is not None)  # closed
        assert checker.checked == []  # a close is not a proposal
        _propose(database, cycle)
        _wait_for(lambda: checker.checked == [cycle.cycle_id])
        reconnects = len(warnings)
        _wait_for(lambda: len(warnings) >= reconnects + 2)  # quiet: it reconnects, resuming
        assert checker.checked == [cycle.cycle_id]
        other = cycle.cycle_id + 1
        _propose_to_bank_a(database, other, "22")
        thread.join(20)
        assert not thread.is_alive()
        assert checker.checked == [cycle.cycle_id, other]
        assert result[0].checked == 2 and result[0].ok
        assert lines == [f"OK cycle {cycle.cycle_id}: stand-in", f"OK cycle {other}: stand-in"]
        assert any("reconnecting" in warning for warning in warnings)
        saved = WatchState.load(state_path, BANK_A)
        assert saved.checked == {cycle.cycle_id: "ok", other: "ok"}

        # A restart from the state file: nothing is checked twice ...
        _index(database, cycle.cycle_id, "CycleDisputed", partnerId=BANK_A, reason="0x" + "00" * 32)
        _index(database, cycle.cycle_id, "DisputeResolved", upheld=False)  # proposed again
        again = PartnerWatch(
            _config(url, partner_key, state_path, timeout_s=1.5), lines.append, warnings.append,
            checker=checker,
        )  # fmt: skip
        assert again.run().checked == 0
        assert checker.checked == [cycle.cycle_id, other]
        resumed = WatchState.load(state_path, BANK_A)
        assert resumed.cursor is not None and resumed.cursor != saved.cursor

        # ... and nothing after the cursor is skipped.
        later = cycle.cycle_id + 2
        _propose_to_bank_a(database, later, "33")
        third = PartnerWatch(
            _config(url, partner_key, state_path, max_cycles=1, timeout_s=10), lines.append,
            warnings.append, checker=checker,
        )  # fmt: skip
        assert third.run().checked == 1
        assert checker.checked == [cycle.cycle_id, other, later]
    finally:
        server.stop()


@sqlite_only
def test_a_key_the_lender_refuses_stops_the_watch_at_once(
    database: Database, tmp_path: Path
) -> None:
    server = ThreadServer(
        create_app(Settings(data_dir=tmp_path), database=database), pick_free_port("127.0.0.1")
    )
    server.start()
    try:
        watcher = PartnerWatch(
            _config(server.url, "cn_not-a-key", tmp_path / "state.json", timeout_s=30),
            print,
            print,
            checker=StandInChecker(),
        )
        started = time.monotonic()
        with pytest.raises(CreditNetValueError, match="HTTP 401"):
            watcher.run()
        assert time.monotonic() - started < 5
    finally:
        server.stop()
