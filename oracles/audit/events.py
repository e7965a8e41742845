"""Decoding raw logs into named events with the published sources' ABIs.

A log whose topic0 the contract's ABI does not know is kept as an `UnknownEvent`
anomaly rather than dropped: code that emits events its published source does not
declare is exactly what an auditor must see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from oracles.abi_codec import ContractCodec
from oracles.audit.chain_reader import RawLog


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
    """A decoded event of one of the audited contracts."""

    contract: str
    address: str
    name: str
    args: dict[str, Any]
    ref: EventRef


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
        events.append(AuditEvent(name, address, event_codec.name, args, ref))
    return events, undecoded
