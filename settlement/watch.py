"""`creditnet verify --watch`: follow the lender's partner feed and check every proposal.

The partner opens the feed (`GET /v1/partner/feed`, server-sent events) and, for every
cycle that becomes proposed on-chain, downloads its own entries, verifies them against
the chain with `settlement.verifier` and prints one line: `OK cycle N ...` or `FAIL cycle
N: <reasons>`. A proposal is judged as it stands, before its root is final: every entry
must prove against the on-chain root (locally and by the contract) and the entries must
sum to the partner's on-chain position; that the cycle is not finalized yet is expected.

With a payout key, a cycle whose entries do not prove or do not sum is disputed on-chain
while its dispute window is open (the ClearingHouse still Proposed or Disputed by
another partner, this partner not having disputed, the chain's time before the deadline).
A lender that keeps refusing to serve the entries of a proposed cycle (`DOWNLOAD_ATTEMPTS`
times, with the pauses between reconnections) fails the check too: nothing of them proves.

The feed is followed with `Last-Event-ID`: after a dropped connection or an error the
watcher reconnects after a growing pause (the stream's `retry:` first, doubling up to
`BACKOFF_MAX_S`) and resumes after the last event it handled. With a state file, that
cursor and each checked cycle's verdict survive a restart: a cycle is checked (and
disputed) once, and nothing after the cursor is skipped. A check that could not finish
(the chain or the lender's API unreachable) is retried from the same event.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3

from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import ChainError, CreditNetError, CreditNetValueError
from oracles.chain import connect
from oracles.tx_sender import JsonRpcClient
from settlement.verifier import (
    EntrySource,
    VerifyOutcome,
    describe_outcome,
    dispute_cycle,
    download_entries,
    fetch_chain_view,
    verify_partner_cycle,
)

FEED_PATH: Final = "/v1/partner/feed"
BACKOFF_MIN_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
IDLE_TIMEOUT_S: Final = 45.0
"""A feed silent this long (the lender sends a heartbeat every 15 s) is reconnected."""
STATE_VERSION: Final = 1
DOWNLOAD_ATTEMPTS: Final = 3
"""A lender refusing a proposed cycle's entries this many times in a row fails the check."""
DISPUTABLE: Final = frozenset({CycleStatus.PROPOSED, CycleStatus.DISPUTED})
_FATAL_HTTP: Final = frozenset({400, 401, 403, 404, 422})


# --- server-sent events -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SseMessage:
    """One dispatched server-sent event."""

    event: str
    data: str
    id: str | None


class SseParser:
    """The `text/event-stream` format, one line at a time (the WHATWG parsing rules:
    comments ignored, `data` lines joined, `id` kept across events, `retry` noted)."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseMessage | None:
        """The event a blank line completes, else None."""
        if not line:
            data, event = self._data, self._event or "message"
            self._data, self._event = [], ""
            return SseMessage(event, "\n".join(data), self.last_id) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def messages(self, lines: Iterable[str]) -> Iterator[SseMessage]:
        for line in lines:
            message = self.feed(line)
            if message is not None:
                yield message


# --- state --------------------------------------------------------------------------


@dataclass
class WatchState:
    """What survives a restart: the cursor after the last event handled, and the verdict
    of every cycle checked (`ok`, `fail` or `disputed 0x<tx>`)."""

    partner_id: int
    cursor: str | None = None
    checked: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None, partner_id: int) -> WatchState:
        """The state in `path`, or a fresh one when there is no file (or no path)."""
        if path is None or not path.exists():
            return cls(partner_id)
        try:
            document = json.loads(path.read_text())
            state = cls(
                partner_id=int(document["partner_id"]),
                cursor=document.get("cursor"),
                checked={int(key): str(value) for key, value in document["checked"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CreditNetValueError(f"{path} is not a watch state file", field="state") from None
        if state.partner_id != partner_id:
            raise CreditNetValueError(
                f"{path} is partner {state.partner_id}'s state, not {partner_id}'s", field="state"
            )
        return state

    def save(self, path: Path | None) -> None:
        """Write the state atomically (a crash leaves the old file or the new one)."""
        if path is None:
            return
        document = {
            "version": STATE_VERSION,
            "partner_id": self.partner_id,
            "cursor": self.cursor,
            "checked": {str(key): value for key, value in sorted(self.checked.items())},
        }
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n")
        os.replace(temporary, path)


# --- checking one proposal ----------------------------------------------------------


def judge_as_proposed(outcome: VerifyOutcome) -> VerifyOutcome:
    """The outcome judged as a proposal: everything `VerifyOutcome.ok` requires except
    that the root be final (a proposal's is not, by definition, until its window ends)."""
    report = outcome.report
    if report.cycle_finalized:
        return outcome
    return replace(outcome, report=replace(report, cycle_status=CycleStatus.FINALIZED))


def has_dispute_grounds(outcome: VerifyOutcome) -> bool:
    """The partner's entries do not prove against the on-chain root, or do not sum to its
    on-chain position (an unreadable or refused download counts: nothing of it proves)."""
    report = outcome.report
    return bool(
        report.failures or outcome.contract_rejected or outcome.unreadable or not report.sum_matches
    )


@dataclass(frozen=True, slots=True)
class CycleCheck:
    """The verdict on one proposed cycle, and what was done about it."""

    cycle_id: int
    ok: bool
    reasons: tuple[str, ...]
    summary: str
    disputed_tx: str | None = None
    not_disputed: str | None = None
    """Why a failing cycle was not disputed (with a payout key): window closed, ..."""

    @property
    def verdict(self) -> str:
        if self.ok:
            return "ok"
        return f"disputed {self.disputed_tx}" if self.disputed_tx else "fail"

    def line(self) -> str:
        """The one line printed for the cycle."""
        if self.ok:
            return f"OK cycle {self.cycle_id}: {self.summary}"
        text = f"FAIL cycle {self.cycle_id}: " + "; ".join(self.reasons)
        if self.disputed_tx:
            text += f"; disputed in {self.disputed_tx}"
        elif self.not_disputed:
            text += f"; not disputed: {self.not_disputed}"
        return text


@dataclass(frozen=True)
class WatchConfig:
    """What the watcher needs: the lender's API and key, the chain, the partner."""

    api_url: str
    api_key: str
    partner_id: int
    rpc_url: str
    clearing_house: str
    payout_account: LocalAccount | None = None
    """The partner's payout key: disputes are filed only with it."""
    state_path: Path | None = None
    max_cycles: int | None = None
    timeout_s: float | None = None


def _format_time(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CycleChecker(Protocol):
    """What the loop asks of a checker (`ProposalChecker`, or a test's stand-in)."""

    def check(self, cycle_id: int) -> CycleCheck: ...

    def close(self) -> None: ...


class ProposalChecker:
    """Checks proposed cycles against the chain and disputes the failing ones."""

    def __init__(self, config: WatchConfig) -> None:
        self.config = config
        self.rpc = JsonRpcClient(config.rpc_url)
        self._w3: Web3 | None = None
        self._refusals: dict[int, int] = {}

    def close(self) -> None:
        self.rpc.close()

    def check(self, cycle_id: int) -> CycleCheck:
        """Verify the cycle; dispute it when it fails and the window is open. ChainError
        when the chain or the lender cannot be reached (check again later)."""
        config = self.config
        source = self._fetch_entries(cycle_id)
        outcome = judge_as_proposed(
            verify_partner_cycle(
                self.rpc,
                config.clearing_house,
                partner_id=config.partner_id,
                cycle_id=cycle_id,
                source=source,
            )
        )
        report = outcome.report
        if outcome.ok:
            summary = (
                f"{report.proven_count} entries prove against root 0x{outcome.chain_root.hex()} "
                f"and sum to the on-chain position {report.net_position_fen} fen "
                f"(on-chain status {outcome.chain_status.name.lower()})"
            )
            return CycleCheck(cycle_id, True, (), summary)
        reasons = tuple(
            line.removeprefix("FAIL ")
            for line in describe_outcome(outcome, source.entries)
            if line.startswith("FAIL ")
        ) or ("the lender's statement differs from the chain",)
        check = CycleCheck(cycle_id, False, reasons, "")
        if config.payout_account is None or not has_dispute_grounds(outcome):
            return check
        closed = self._window_closed(cycle_id)
        if closed is not None:
            return replace(check, not_disputed=closed)
        try:
            tx_hash = dispute_cycle(
                self._web3(), config.payout_account, config.clearing_house, outcome
            )
        except ChainError as error:
            if error.code not in ("tx_reverted", "tx_rejected"):
                raise
            return replace(check, not_disputed=f"the dispute failed: {error.detail}")
        return replace(check, disputed_tx=tx_hash)

    def _fetch_entries(self, cycle_id: int) -> EntrySource:
        """The partner's entries. A refusal (an HTTP error) is retried (ChainError) up to
        `DOWNLOAD_ATTEMPTS` times; then it counts as a download of which nothing proves."""
        config = self.config
        try:
            return download_entries(config.api_url, config.api_key, cycle_id)
        except CreditNetValueError as refused:
            attempts = self._refusals[cycle_id] = self._refusals.get(cycle_id, 0) + 1
            if attempts < DOWNLOAD_ATTEMPTS:
                raise ChainError(
                    f"the lender refused the entries of cycle {cycle_id}: {refused.detail}",
                    code="entries_refused",
                ) from None
            return EntrySource(unreadable=[f"download refused by the lender: {refused.detail}"])

    def _web3(self) -> Web3:
        if self._w3 is None:
            self._w3 = connect(self.config.rpc_url)
        return self._w3

    def _window_closed(self, cycle_id: int) -> str | None:
        """Why the partner can no longer dispute the cycle, or None while it can."""
        config = self.config
        address = Web3.to_checksum_address(config.clearing_house)
        block, cycle, position = fetch_chain_view(self.rpc, address, cycle_id, config.partner_id)
        if cycle.status not in DISPUTABLE:
            return f"the cycle is {cycle.status.name.lower()} on-chain"
        if position.disputed:
            return "you already disputed it"
        header = self.rpc.call("eth_getBlockByNumber", [block, False])
        if int(header["timestamp"], 16) >= cycle.dispute_deadline:
            return f"its dispute window closed at {_format_time(cycle.dispute_deadline)}"
        return None


# --- following the feed -------------------------------------------------------------


@dataclass
class WatchSummary:
    checked: int = 0
    failed: int = 0
    disputed: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0


class FeedClosedError(ChainError):
    """The feed could not be followed for now (connection refused or dropped, 5xx)."""

    code = "feed_unavailable"


@dataclass
class WatchClock:
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class PartnerWatch:
    """The loop: follow the feed, check each proposal once, keep the cursor."""

    def __init__(
        self,
        config: WatchConfig,
        echo: Callable[[str], None],
        warn: Callable[[str], None],
        *,
        checker: CycleChecker | None = None,
        clock: WatchClock | None = None,
    ) -> None:
        self.config = config
        self.echo = echo
        self.warn = warn
        self.checker: CycleChecker = checker or ProposalChecker(config)
        self.clock = clock or WatchClock()
        self.state = WatchState.load(config.state_path, config.partner_id)
        self.summary = WatchSummary()
        self._backoff = BACKOFF_MIN_S
        self._deadline = None if config.timeout_s is None else self.clock.now() + config.timeout_s

    def run(self) -> WatchSummary:
        """Follow the feed until `max_cycles` cycles were checked or `timeout_s` passed."""
        try:
            while not self._done():
                try:
                    retry_s = self._follow_once()
                except (httpx.HTTPError, ChainError) as error:
                    if self._done():
                        break
                    detail = error.detail if isinstance(error, CreditNetError) else repr(error)
                    self.warn(f"feed interrupted ({detail}); reconnecting in {self._backoff:.1f} s")
                    self._pause(self._backoff)
                    self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
                    continue
                if not self._done():  # the stream ended cleanly: reconnect after its `retry:`
                    self._pause(retry_s)
        finally:
            self.checker.close()
        return self.summary

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - self.clock.now()

    def _done(self) -> bool:
        limit = self.config.max_cycles
        if limit is not None and self.summary.checked >= limit:
            return True
        remaining = self._remaining()
        return remaining is not None and remaining <= 0

    def _pause(self, seconds: float) -> None:
        remaining = self._remaining()
        self.clock.sleep(seconds if remaining is None else max(0.0, min(seconds, remaining)))

    def _follow_once(self) -> float:
        """One connection: handle events until done; returns the backoff to use next
        (the stream's `retry:`). Raises on a dropped or refused connection."""
        config = self.config
        headers = {
            "Authorization": f"Bearer {config.api_key}",
            "Accept": "text/event-stream",
            "Cache-Control": "no-store",
        }
        if self.state.cursor is not None:
            headers["Last-Event-ID"] = self.state.cursor
        remaining = self._remaining()
        read_s = IDLE_TIMEOUT_S if remaining is None else max(0.05, min(IDLE_TIMEOUT_S, remaining))
        url = config.api_url.rstrip("/") + FEED_PATH
        timeout = httpx.Timeout(10.0, read=read_s)
        parser = SseParser()
        try:
            with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
                self._check_response(response)
                for message in parser.messages(response.iter_lines()):
                    self._handle(message)
                    if self._done():
                        break
        except httpx.ReadTimeout:
            if not self._done():
                raise
        retry_s = (parser.retry_ms or 0) / 1000
        return max(BACKOFF_MIN_S, retry_s)

    def _check_response(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            return
        response.read()
        text = f"the feed answered HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in _FATAL_HTTP:
            raise CreditNetValueError(text, field="api")
        raise FeedClosedError(text)

    def _handle(self, message: SseMessage) -> None:
        if message.event == "cycle":
            try:
                data: dict[str, Any] = json.loads(message.data)
            except ValueError:
                raise FeedClosedError("the feed sent an event that is not JSON") from None
            if data.get("status") == "proposed":
                self._check(int(data["cycle_id"]))
        if message.id is not None:
            self.state.cursor = message.id
            self.state.save(self.config.state_path)
        self._backoff = BACKOFF_MIN_S  # progress: the next failure starts small again

    def _check(self, cycle_id: int) -> None:
        if cycle_id in self.state.checked:
            return  # checked before (a restart, or proposed again after a dismissed dispute)
        check = self.checker.check(cycle_id)
        self.state.checked[cycle_id] = check.verdict
        self.state.save(self.config.state_path)
        self.summary.checked += 1
        self.summary.failed += 0 if check.ok else 1
        self.summary.disputed += 1 if check.disputed_tx else 0
        self.echo(check.line())


def watch_partner_feed(
    config: WatchConfig, echo: Callable[[str], None], warn: Callable[[str], None]
) -> WatchSummary:
    """Run the watch (module doc) and return what it checked."""
    return PartnerWatch(config, echo, warn).run()
