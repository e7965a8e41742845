"""The relayer: drains the outbox to the chain, exactly once per business key.

Each step (1) advances every recorded transaction: confirmed after N blocks,
rebroadcast (the same raw bytes) when the node does not know it, resolved by
on-chain state when its nonce was taken by another transaction, diagnosed when it
reverted; then (2) takes pending items in id order per kind, signs batches with
its own nonces, records each transaction (hash, nonce, raw bytes) and marks its
items sent in one database transaction, and only then broadcasts them in JSON-RPC
arrays. A crash at any point leaves either nothing sent or a recorded transaction
that step (1) finds again, so no business key is sent twice.

The broadcast runs in a thread of its own: anvil answers `eth_sendRawTransaction`
only once it has mined the transactions (about 60 µs an opening), and it answers
other calls meanwhile, so the next step's database work and signing overlap the
mining. It is joined (its outcome handled, then the "after_send" hook) before the
next broadcast starts, so transactions reach the node in nonce order, or at the end
of the next step that sends nothing.

A transaction still unmined `reprice_after_s` after its latest attempt is signed again
with the same nonce at higher fees (each raised by at least the node's replacement
minimum, the max fee capped at `fee_ceiling_wei`); every attempt is recorded before it
is broadcast, and whichever attempt the chain mines is adopted as the submission's
transaction. The nonce still lands once, so its items do too.

A reverted batch is diagnosed by business key: items already on-chain with the
same content count as landed, with different content are parked as an alert, and
the rest are bisected with `eth_call` so a poison item is parked with its error
while the others go back to the queue. RPC outages raise `RpcUnavailable`; the
worker loop backs off and calls `step` again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from node_api.kernel.db import Database, WriteFence
from node_api.kernel.outbox import get_utc_now
from oracles.abi_codec import DeployedContracts, ErrorArgs, describe_error
from oracles.relay_kinds import (
    Landing,
    LandingCheck,
    RelayAccount,
    RelayKind,
    build_relay_kinds,
)
from oracles.relay_store import (
    Attempt,
    Intent,
    OpenSubmission,
    Outcome,
    QueuedItem,
    RelayStore,
)
from oracles.tables import SubmissionStatus
from oracles.tx_sender import (
    BroadcastOutcome,
    BroadcastResult,
    JsonRpcClient,
    RpcFailure,
    RpcReceipt,
    TxSender,
    cap_fees,
    compute_replacement_fees,
    decode_dynamic_fee_call,
)

logger = logging.getLogger(__name__)

StepHook = Callable[[str], None]
"""Called at named points of a submission ("before_send", "after_send",
"after_receipt"); tests use it to crash the relayer exactly there."""

HOOK_BEFORE_SEND: Final = "before_send"
HOOK_AFTER_SEND: Final = "after_send"
HOOK_AFTER_RECEIPT: Final = "after_receipt"
GWEI: Final = 10**9

Clock = Callable[[], datetime]
"""Naive UTC now: when attempts are recorded and judged stuck (injectable for tests)."""


@dataclass(frozen=True)
class RelayerConfig:
    """How the relayer batches, pipelines and waits."""

    confirmations: int = 0
    """A transaction in block b is final once the head is at b + confirmations."""
    batch_size_max: int = 200
    """Cap on items per transaction (each kind has its own cap too)."""
    inflight_max: int = 8
    """Recorded transactions not yet final, at most."""
    max_attempts: int = 5
    """An item whose batches reverted this often without an explanation is parked."""
    rebroadcast_after_s: float = 5.0
    """Broadcast a recorded transaction again when the node has not seen it this long."""
    reprice_after_s: float = 30.0
    """Replace a transaction still unmined this long after its latest attempt."""
    reprice_bump_bps: int = 1_250
    """Each replacement raises both fees by at least this (and the node's 10% minimum)."""
    fee_ceiling_wei: int = 500 * GWEI
    """No attempt offers a max fee per gas above this."""


class _Broadcast:
    """Recorded transactions being broadcast by a thread, and what the node answered."""

    def __init__(self, sender: TxSender, rpc: JsonRpcClient, intents: Sequence[Intent]) -> None:
        self.intents = list(intents)
        self.step_number = 0
        self.results: list[BroadcastResult] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(sender, rpc, [intent.signed.raw_tx for intent in intents]),
            name="relayer-broadcast",
            daemon=True,
        )
        self._thread.start()

    def _run(self, sender: TxSender, rpc: JsonRpcClient, raw_txs: list[str]) -> None:
        try:
            self.results = sender.broadcast(raw_txs, rpc)
        except BaseException as error:  # handed to the relayer's thread at join
            self.error = error

    def join(self) -> list[BroadcastResult]:
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.results


class Relayer:
    """Moves outbox items to the chain; one instance per relayer account."""

    def __init__(
        self,
        database: Database,
        sender: TxSender,
        contracts: DeployedContracts,
        config: RelayerConfig | None = None,
        *,
        hook: StepHook | None = None,
        account: RelayAccount = RelayAccount.RELAYER,
        clock: Clock = get_utc_now,
        fence: WriteFence | None = None,
    ) -> None:
        self.store = RelayStore(database, sender.address, fence)
        self.sender = sender
        self.contracts = contracts
        self.config = config or RelayerConfig()
        self.account = account
        self.kinds: dict[str, RelayKind[Any]] = build_relay_kinds(account)
        self._hook = hook or (lambda _point: None)
        self._clock = clock
        self._nonce_synced = False
        self._block_gas_limit = 0
        self._last_broadcast: dict[str, float] = {}
        self._at_ceiling: set[int] = set()
        self._broadcast_rpc = JsonRpcClient(sender.rpc.url, timeout_s=sender.rpc.timeout_s)
        self._broadcasting: _Broadcast | None = None
        self._step_number = 0

    def step(self) -> bool:
        """One round: advance recorded transactions, then submit new ones. True if it did work."""
        if not self._nonce_synced:
            self.sender.sync_nonce(self.store.fetch_nonce_floor())
            self._block_gas_limit = self.sender.fetch_block_gas_limit()
            self._nonce_synced = True
        open_submissions = self.store.fetch_open_submissions()
        open_hashes = {s.tx_hash for s in open_submissions}
        self._last_broadcast = {
            tx_hash: at for tx_hash, at in self._last_broadcast.items() if tx_hash in open_hashes
        }
        self._step_number += 1
        progressed = self._advance(open_submissions) if open_submissions else False
        submitted = self._submit_new()
        if self._broadcasting and self._broadcasting.step_number != self._step_number:
            self._finish_broadcast()  # this step sent nothing: wait no longer
        return submitted or progressed

    def run_until_idle(self, timeout_s: float, idle_sleep_s: float = 0.01) -> None:
        """Step until nothing is pending or in flight (tests and benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            worked = self.step()
            if not worked and not self._broadcasting and not self.store.fetch_open_submissions():
                return
            if not worked:
                time.sleep(idle_sleep_s)
        raise TimeoutError(f"relayer not idle after {timeout_s} s")

    # -- recorded transactions ----------------------------------------------------------

    def _advance(self, open_submissions: Sequence[OpenSubmission]) -> bool:
        attempts = self.store.fetch_attempts([s.id for s in open_submissions])
        submissions, receipts, head = self._find_mined(open_submissions, attempts)
        missing = [s for s, receipt in zip(submissions, receipts, strict=True) if receipt is None]
        repriced = self._reprice_stuck(missing, attempts) if missing else set()
        unrepriced = [s for s in missing if s.id not in repriced]
        progressed = bool(repriced)
        if unrepriced:
            progressed |= self._rebroadcast_missing(unrepriced, attempts)
        final_ok: list[tuple[str, RpcReceipt]] = []
        final_reverted: list[OpenSubmission] = []
        for submission, receipt in zip(submissions, receipts, strict=True):
            if receipt is None:
                continue
            block = int(receipt["blockNumber"], 16)
            if head < block + self.config.confirmations:
                if submission.status != SubmissionStatus.MINED or submission.block_number != block:
                    self.store.record_mined(submission.id, block, receipt["blockHash"])
                continue
            if int(receipt["status"], 16) == 1:
                final_ok.append((submission.tx_hash, receipt))
            else:
                final_reverted.append(submission)
        if final_ok or final_reverted:
            self._hook(HOOK_AFTER_RECEIPT)
        self.store.record_confirmed(final_ok)
        for submission in final_reverted:
            self._resolve_by_chain_state(submission, SubmissionStatus.REVERTED)
        if final_ok:
            logger.info("relayed", extra={"transactions": len(final_ok), "head": head})
        return progressed or bool(final_ok or final_reverted)

    def _find_mined(
        self, submissions: Sequence[OpenSubmission], attempts: dict[int, list[Attempt]]
    ) -> tuple[list[OpenSubmission], list[RpcReceipt | None], int]:
        """Each submission with the receipt of whichever of its attempts was mined (None:
        none yet), and the head block asked with them; an earlier attempt that was mined
        is adopted as the submission's."""
        groups = [_attempt_hashes(s, attempts.get(s.id, [])) for s in submissions]
        found, head = self.sender.fetch_receipts_and_head(
            [tx_hash for group in groups for tx_hash in group]
        )
        resolved: list[OpenSubmission] = []
        receipts: list[RpcReceipt | None] = []
        offset = 0
        for submission, group in zip(submissions, groups, strict=True):
            hits = [
                (tx_hash, receipt)
                for tx_hash, receipt in zip(group, found[offset : offset + len(group)], strict=True)
                if receipt is not None
            ]
            offset += len(group)
            if hits and hits[0][0] != submission.tx_hash:
                (mined,) = [a for a in attempts[submission.id] if a.tx_hash == hits[0][0]]
                self.store.adopt_attempt(submission, mined)
                logger.info(
                    "earlier attempt mined",
                    extra={"nonce": submission.nonce, "tx_hash": mined.tx_hash},
                )
                submission = dataclasses.replace(submission, tx_hash=mined.tx_hash)
            resolved.append(submission)
            receipts.append(hits[0][1] if hits else None)
        return resolved, receipts, head

    def _reprice_stuck(
        self, missing: Sequence[OpenSubmission], attempts: dict[int, list[Attempt]]
    ) -> set[int]:
        """Replace each transaction unmined `reprice_after_s` after its latest attempt with
        the same call at higher fees; the ids of the submissions replaced."""
        now = self._clock()
        wait = timedelta(seconds=self.config.reprice_after_s)
        stuck = [
            s
            for s in missing
            if s.status == SubmissionStatus.SIGNED.value
            and attempts.get(s.id)
            and now - attempts[s.id][-1].created_at >= wait
        ]
        if not stuck:
            return set()
        suggested = self.sender.fetch_fees()
        raw_txs = self.store.fetch_raw_txs([s.id for s in stuck])
        repriced: set[int] = set()
        for submission in stuck:
            current = decode_dynamic_fee_call(raw_txs[submission.id]).fees
            fees = compute_replacement_fees(
                current, suggested, self.config.reprice_bump_bps, self.config.fee_ceiling_wei
            )
            if fees is None:
                if submission.id not in self._at_ceiling:
                    self._at_ceiling.add(submission.id)
                    logger.warning(
                        "stuck transaction at the fee ceiling",
                        extra={"nonce": submission.nonce, "tx_hash": submission.tx_hash},
                    )
                continue
            signed = self.sender.sign_replacement(raw_txs[submission.id], fees)
            self.store.record_replacement(submission, signed, fees, now)
            (result,) = self.sender.broadcast([signed.raw_tx])
            self._last_broadcast[signed.tx_hash] = time.monotonic()
            repriced.add(submission.id)
            logger.warning(
                "stuck transaction repriced",
                extra={
                    "nonce": submission.nonce,
                    "replaced": submission.tx_hash,
                    "tx_hash": signed.tx_hash,
                    "max_fee_per_gas_wei": fees.max_fee_per_gas_wei,
                    "max_priority_fee_per_gas_wei": fees.max_priority_fee_per_gas_wei,
                    "broadcast": result.outcome.value,
                },
            )
        return repriced

    def _rebroadcast_missing(
        self, missing: Sequence[OpenSubmission], attempts: dict[int, list[Attempt]]
    ) -> bool:
        """Broadcast again the recorded transactions the node does not know (asked only
        about those not broadcast for `rebroadcast_after_s`)."""
        now = time.monotonic()
        quiet = [
            s
            for s in missing
            if now - self._last_broadcast.get(s.tx_hash, -1e9) >= self.config.rebroadcast_after_s
        ]
        if not quiet:
            return False
        known = self.sender.fetch_known([s.tx_hash for s in quiet])
        due = [s for s, is_known in zip(quiet, known, strict=True) if not is_known]
        if not due:
            return False
        raw_txs = self.store.fetch_raw_txs([s.id for s in due])
        results = self.sender.broadcast([raw_txs[s.id] for s in due])
        progressed = False
        for submission, result in zip(due, results, strict=True):
            self._last_broadcast[submission.tx_hash] = now
            if result.outcome is BroadcastOutcome.NONCE_TOO_LOW:
                hashes = _attempt_hashes(submission, attempts.get(submission.id, []))
                if not any(self.sender.fetch_receipts(hashes)):
                    logger.warning(
                        "nonce taken by another transaction",
                        extra={"tx_hash": submission.tx_hash, "nonce": submission.nonce},
                    )
                    self._resolve_by_chain_state(submission, SubmissionStatus.DROPPED)
                    progressed = True
            elif result.outcome is BroadcastOutcome.REJECTED:
                logger.error(
                    "broadcast rejected",
                    extra={"tx_hash": submission.tx_hash, "error": result.message},
                )
                self.store.record_item_error(
                    submission.tx_hash, f"broadcast rejected: {result.message}"
                )
        return progressed

    def _sort_by_landing(
        self, relay_kind: RelayKind[Any], items: Sequence[QueuedItem], outcome: Outcome
    ) -> list[QueuedItem]:
        """Record the items already on-chain as landed and those in conflict as parked;
        return the rest, which the chain does not show yet."""
        absent: list[QueuedItem] = []
        for item, check in zip(items, self._check_landing(relay_kind, items), strict=True):
            if check.landing is Landing.SAME:
                outcome.landed.append(item.id)
            elif check.landing is Landing.CONFLICT:
                logger.error(
                    "conflicting on-chain state", extra={"business_key": item.business_key}
                )
                outcome.parked[item.id] = f"conflict: {check.detail}"
            else:
                absent.append(item)
        return absent

    def _resolve_by_chain_state(self, submission: OpenSubmission, status: SubmissionStatus) -> None:
        """Settle the items of a reverted or dropped transaction by their on-chain state."""
        relay_kind = self.kinds[submission.kind]
        items = self.store.fetch_items_of(submission.tx_hash)
        outcome = Outcome(landed=[], parked={}, retry={})
        absent = self._sort_by_landing(relay_kind, items, outcome)
        if status is SubmissionStatus.DROPPED:
            outcome.retry.update(
                {item.id: (0.0, "nonce taken by another transaction") for item in absent}
            )
        else:
            self._diagnose(relay_kind, absent, outcome)
        self.store.close_submission(submission.id, status, outcome)
        logger.warning(
            "submission closed",
            extra={
                "tx_hash": submission.tx_hash,
                "status": status.value,
                "landed": len(outcome.landed),
                "parked": len(outcome.parked),
                "retried": len(outcome.retry),
            },
        )

    def _check_landing(
        self, relay_kind: RelayKind[Any], items: Sequence[QueuedItem]
    ) -> list[LandingCheck]:
        contract = self.contracts.get(relay_kind.view_target)
        calls = [
            (contract.address, relay_kind.encode_view(contract.codec, item.payload))
            for item in items
        ]
        checks = []
        for item, output in zip(items, self.sender.call_many(calls), strict=True):
            if isinstance(output, RpcFailure):
                raise RuntimeError(f"view for {item.business_key} failed: {output.message}")
            checks.append(relay_kind.classify(contract.codec, item.payload, output))
        return checks

    def _diagnose(
        self, relay_kind: RelayKind[Any], items: Sequence[QueuedItem], outcome: Outcome
    ) -> None:
        """Bisect reverted items with eth_call: poison items are parked (or delayed when the
        revert means "not yet"); the others go back to the queue."""
        failures = self._find_failures(relay_kind, list(items))
        for item in items:
            failure = failures.get(item.id)
            if failure is None:
                if item.attempts >= self.config.max_attempts:
                    outcome.parked[item.id] = f"reverted {item.attempts} times; a simulation passes"
                else:
                    outcome.retry[item.id] = (
                        0.0,
                        "batch reverted; retried without the failing items",
                    )
                continue
            self._settle_failure(relay_kind, item, failure, outcome)

    def _settle_failure(
        self,
        relay_kind: RelayKind[Any],
        item: QueuedItem,
        failure: tuple[str, ErrorArgs, str],
        outcome: Outcome,
    ) -> None:
        """A decoded revert of one item: retry it after the kind's delay ("not yet") or park it."""
        name, args, description = failure
        delay_s = (
            relay_kind.get_retry_delay_s(name, args, self.sender.fetch_block_timestamp())
            if name
            else None
        )
        if delay_s is not None:
            outcome.retry[item.id] = (delay_s, f"not yet: {description}")
        else:
            outcome.parked[item.id] = f"reverted: {description}"
        # Business keys and revert arguments carry ids, addresses and amounts only.
        logger.warning(
            "outbox item reverted",
            extra={
                "kind": relay_kind.kind.value,
                "business_key": item.business_key,
                "error": description,
                "retry_in_s": delay_s,
                "parked": delay_s is None,
            },
        )

    def _find_failures(
        self, relay_kind: RelayKind[Any], items: list[QueuedItem]
    ) -> dict[int, tuple[str, ErrorArgs, str]]:
        if not items:
            return {}
        contract = self.contracts.get(relay_kind.contract)
        data = relay_kind.encode(contract.codec, [item.payload for item in items])
        (result,) = self.sender.call_many([(contract.address, data)])
        if not isinstance(result, RpcFailure):
            return {}
        if len(items) == 1:
            decoded = self.contracts.decode_error(result.data)
            if decoded is None:
                described = describe_error(None, result.data) if result.data else result.message
                return {items[0].id: ("", {}, described)}
            return {items[0].id: (decoded[0], decoded[1], describe_error(decoded, result.data))}
        middle = len(items) // 2
        return self._find_failures(relay_kind, items[:middle]) | self._find_failures(
            relay_kind, items[middle:]
        )

    # -- new transactions ----------------------------------------------------------------

    def _submit_new(self) -> bool:
        open_submissions = self.store.fetch_open_submissions()
        free = self.config.inflight_max - len(open_submissions)
        busy_kinds = {s.kind for s in open_submissions}
        planned: list[tuple[RelayKind[Any], list[QueuedItem]]] = []
        settled_unsent = False
        for relay_kind in self.kinds.values():
            if free <= 0:
                break
            if relay_kind.strict_order and relay_kind.kind.value in busy_kinds:
                continue
            slots = 1 if relay_kind.strict_order else free
            batches = self._take_batches(relay_kind, slots)
            if batches and relay_kind.check_before_send:
                taken = sum(len(batch) for batch in batches)
                batches = self._check_before_send(relay_kind, batches)
                settled_unsent |= sum(len(batch) for batch in batches) < taken
            planned.extend((relay_kind, batch) for batch in batches)
            free -= len(batches)
        if not planned:
            return settled_unsent
        self._send(planned)
        return True

    def _check_before_send(
        self, relay_kind: RelayKind[Any], batches: list[list[QueuedItem]]
    ) -> list[list[QueuedItem]]:
        """The batches without items already on-chain (confirmed now), in conflict (parked)
        or whose simulation reverts (retried later or parked, with the decoded error)."""
        outcome = Outcome(landed=[], parked={}, retry={})
        kept: list[list[QueuedItem]] = []
        for batch in batches:
            absent = self._sort_by_landing(relay_kind, batch, outcome)
            failures = self._find_failures(relay_kind, absent)
            for item in absent:
                if item.id in failures:
                    self._settle_failure(relay_kind, item, failures[item.id], outcome)
            ready = [item for item in absent if item.id not in failures]
            if ready:
                kept.append(ready)
        if outcome.landed or outcome.parked or outcome.retry:
            self.store.apply_outcome(outcome)
        return kept

    def _take_batches(self, relay_kind: RelayKind[Any], slots: int) -> list[list[QueuedItem]]:
        size = max(
            1,
            min(
                relay_kind.get_batch_size_max(self._block_gas_limit),
                self.config.batch_size_max,
            ),
        )
        barrier = self.store.fetch_barrier_id([kind.value for kind in relay_kind.depends_on])
        items = self.store.fetch_pending(relay_kind.kind.value, size * slots, barrier)
        batches: list[list[QueuedItem]] = []
        for item in items:
            group = relay_kind.get_batch_group(item.payload)
            current = batches[-1] if batches else None
            if (
                current is None
                or len(current) >= size
                or relay_kind.get_batch_group(current[0].payload) != group
            ):
                if len(batches) == slots:
                    break
                batches.append([])
            batches[-1].append(item)
        return batches

    def _send(self, planned: Sequence[tuple[RelayKind[Any], list[QueuedItem]]]) -> None:
        fees = cap_fees(self.sender.fetch_fees(), self.config.fee_ceiling_wei)
        intents = []
        for relay_kind, batch in planned:
            contract = self.contracts.get(relay_kind.contract)
            payloads = [item.payload for item in batch]
            signed = self.sender.sign_call(
                contract.address,
                relay_kind.encode(contract.codec, payloads),
                relay_kind.get_gas_limit(payloads),
                fees,
            )
            intents.append(Intent(relay_kind.kind.value, signed, [item.id for item in batch]))
        try:
            self.store.record_intents(intents, fees, self._clock())
        except BaseException:
            self._nonce_synced = False  # nothing was recorded or sent: take the nonces again
            raise
        self._finish_broadcast()  # the earlier nonces reach the node first
        self._hook(HOOK_BEFORE_SEND)
        now = time.monotonic()
        for intent in intents:
            self._last_broadcast[intent.signed.tx_hash] = now
        self._broadcasting = _Broadcast(self.sender, self._broadcast_rpc, intents)
        self._broadcasting.step_number = self._step_number

    def _finish_broadcast(self) -> None:
        """Wait for the broadcast under way (if any) and handle what the node answered."""
        broadcasting, self._broadcasting = self._broadcasting, None
        if broadcasting is None:
            return
        results = broadcasting.join()
        self._hook(HOOK_AFTER_SEND)
        for intent, result in zip(broadcasting.intents, results, strict=True):
            if result.outcome is BroadcastOutcome.NONCE_TOO_LOW:
                self._nonce_synced = False  # another sender used the account: count again
            if result.outcome is not BroadcastOutcome.ACCEPTED:
                logger.error(
                    "broadcast refused",
                    extra={"tx_hash": intent.signed.tx_hash, "error": result.message},
                )


def _attempt_hashes(submission: OpenSubmission, attempts: Sequence[Attempt]) -> list[str]:
    """The submission's current transaction first, then its other attempts."""
    return [submission.tx_hash, *(a.tx_hash for a in attempts if a.tx_hash != submission.tx_hash)]
