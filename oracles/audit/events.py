"""Decoding raw logs into named events with the published sources' ABIs.

A log whose topic0 the contract's ABI does not know is kept as an `UnknownEvent`
anomaly rather than dropped: code that emits events its published source does not
declare is exactly what an auditor must see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from eth_utils.address import to_checksum_address

from oracles.abi_codec import ContractCodec
from oracles.audit.chain_reader import RawLog

TIMED_EVENTS: Final = frozenset({"CycleDefaulted", "CallScheduled", "CallExecuted"})
"""Events whose block time the replay judges: a default only after the funding deadline,
a timelock operation executed only once its delay has passed."""


@dataclass(frozen=True)
class EventRef:
    """Where an event is: block, log index (block-wide, so it orders events) and tx."""

    block: int
    log_index: int
    tx: str

    @property
    def order(self) -> tuple[int, int]:
        return (self.block, self.log_index)


@dataclass(frozen=True)
class AuditEvent:
    """A decoded event of one of the audited contracts; `timestamp` is its block's unix
    seconds where the audit knows it (see `TIMED_EVENTS`)."""

    contract: str
    address: str
    name: str
    args: dict[str, Any]
    ref: EventRef
    timestamp: int | None = None


@dataclass(frozen=True)
class UndecodedLog:
    """A log the contract's published ABI cannot decode."""

    contract: str
    address: str
    topic0: str
    ref: EventRef
    reason: str


def decode_logs(
    logs: Iterable[RawLog], codecs: Mapping[str, tuple[str, ContractCodec]]
) -> tuple[list[AuditEvent], list[UndecodedLog]]:
    """Decode `logs`; `codecs` maps a lowercase address to (contract name, codec)."""
    events: list[AuditEvent] = []
    undecoded: list[UndecodedLog] = []
    checksummed = {address: to_checksum_address(address) for address in codecs}
    for log in logs:
        name, codec = codecs[log.address]
        address = checksummed[log.address]
        ref = EventRef(log.block_number, log.log_index, log.tx_hash)
        topic0 = log.topics[0] if log.topics else b""
        event_codec = codec.events.get(topic0)
        if event_codec is None:
            undecoded.append(
                UndecodedLog(name, address, "0x" + topic0.hex(), ref, "unknown topic0")
            )
            continue
        try:
            args = event_codec.decode(log.topics, log.data)
        except Exception as error:  # malformed data is evidence, not a crash
            undecoded.append(
                UndecodedLog(name, address, "0x" + topic0.hex(), ref, type(error).__name__)
            )
            continue
        events.append(AuditEvent(name, address, event_codec.name, args, ref, log.block_timestamp))
    return events, undecoded


def stamp_events(
    events: Sequence[AuditEvent], fetch: Callable[[Sequence[int]], Mapping[int, int]]
) -> list[AuditEvent]:
    """`events` with the block timestamp filled in for every `TIMED_EVENTS` event that
    lacks one; `fetch` maps block numbers to their timestamps (one batch)."""
    missing = [e.ref.block for e in events if e.name in TIMED_EVENTS and e.timestamp is None]
    if not missing:
        return list(events)
    found = fetch(missing)
    return [
        replace(e, timestamp=found.get(e.ref.block))
        if e.name in TIMED_EVENTS and e.timestamp is None
        else e
        for e in events
    ]
