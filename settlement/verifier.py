"""`creditnet verify`: a funding partner checks its share of a cycle without trusting the lender.

Inputs are only the chain RPC, the ClearingHouse address, and the partner's own entries
with their proofs, downloaded from the partner API (NDJSON stream) or read from a file
(a JSON document with an `entries` list, a JSON list, or NDJSON). The check, all read at
one block:

1. the cycle's root, status and the partner's net position come from `getCycle` and
   `getPosition`; a root the lender states in the download must equal the chain's;
2. every entry proves against that root twice: locally (`MerkleProof.verify` semantics,
   `settlement.verify_core`) and by the contract itself (`verifyEntry` by `eth_call`),
   both with the entry's private salt as the lender sent it (each entry's `salt`; the
   partner can re-derive it from its own leaf secret, `settlement.salts.PartnerSalts`);
3. the proven entries sum exactly to the on-chain net position;
4. the cycle is finalized (or already funded), so its root can no longer change.

The outcome is OK only when all hold; otherwise every failing entry is named with its
reason. With a payout key the partner may dispute a cycle that fails while it is still
inside its dispute window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3

from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import ChainError, CreditNetValueError
from node_api.kernel.money import Fen
from oracles.chain import send_transaction
from oracles.tx_sender import JsonRpcClient, RpcFailure
from settlement.clearing_calls import (
    DISPUTE,
    DISPUTE_GAS,
    GET_CYCLE,
    GET_POSITION,
    CycleView,
    PositionView,
    encode_verify_entry,
)
from settlement.proofs import ProvenEntryJson, from_json
from settlement.verify_core import (
    FailureReason,
    ProvenEntry,
    VerificationReport,
    verify_partner_entries,
)

_REASON_TEXT = {
    FailureReason.WRONG_CYCLE: "belongs to another cycle",
    FailureReason.WRONG_PARTNER: "belongs to another partner",
    FailureReason.DUPLICATE_ENTRY: "appears twice",
    FailureReason.MALFORMED_PROOF: "has a malformed proof",
    FailureReason.NOT_IN_ROOT: "does not prove against the on-chain root",
}


class CycleStatement(TypedDict, total=False):
    """What the lender stated about the cycle besides the entries (the stream's header, or
    a file's other keys); the verifier checks `entries_root`."""

    entries_root: str
    cycle_id: int
    partner_id: int
    net_position_fen: Fen
    entry_count: int
    kinds: dict[str, int]


@dataclass
class EntrySource:
    """Entries as downloaded or read: the parsed ones, the unreadable ones, and what the
    lender stated about the cycle (root, net position) if it said anything."""

    entries: list[ProvenEntry] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    stated: CycleStatement = field(default_factory=lambda: CycleStatement())


def _add_item(source: EntrySource, item: Any, position: int) -> None:
    if not isinstance(item, dict):
        source.unreadable.append(f"item {position} is not an object")
        return
    if "entry_id" not in item:
        source.stated.update(cast(CycleStatement, item))
        return
    try:
        source.entries.append(from_json(cast(ProvenEntryJson, item)))
    except CreditNetValueError as error:
        source.unreadable.append(f"entry {item.get('entry_id')}: {error.detail}")


def parse_entries(lines: Iterable[str]) -> EntrySource:
    """Entries from NDJSON lines (a header object without `entry_id` is the lender's
    statement about the cycle)."""
    source = EntrySource()
    for position, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            source.unreadable.append(f"line {position} is not JSON")
            continue
        _add_item(source, item, position)
    return source


def load_entries_file(path: Path) -> EntrySource:
    """Entries from a file: a JSON document (`{"entries": [...], ...}` or a list) or NDJSON."""
    text = path.read_text()
    try:
        document = json.loads(text)
    except ValueError:
        return parse_entries(text.splitlines())
    source = EntrySource()
    items = document.get("entries", []) if isinstance(document, dict) else document
    if isinstance(document, dict):
        stated = {key: value for key, value in document.items() if key != "entries"}
        source.stated = cast(CycleStatement, stated)
    if not isinstance(items, list):
        raise CreditNetValueError("the file's entries must be a list", field="file")
    for position, item in enumerate(items, start=1):
        _add_item(source, item, position)
    return source


def download_entries(
    api_url: str, api_key: str, cycle_id: int, *, timeout_s: float = 60.0
) -> EntrySource:
    """Stream the partner's entries with proofs from the lender's partner API."""
    url = f"{api_url.rstrip('/')}/v1/partner/cycles/{cycle_id}/entries.ndjson"
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.stream("GET", url, headers=headers, timeout=timeout_s) as response:
            if response.status_code != 200:
                response.read()
                raise CreditNetValueError(
                    f"partner API answered HTTP {response.status_code}: {response.text[:200]}",
                    field="api",
                )
            return parse_entries(response.iter_lines())
    except httpx.HTTPError as error:
        raise ChainError(f"partner API unreachable: {type(error).__name__}") from None


@dataclass(frozen=True)
class VerifyOutcome:
    """The full result: the core report plus what only the chain could say."""

    report: VerificationReport
    chain_status: CycleStatus
    chain_root: bytes
    contract_rejected: tuple[int, ...]
    """Entries the local check passed but `verifyEntry` refused (should never happen)."""
    unreadable: tuple[str, ...]
    stated_root_matches: bool

    @property
    def ok(self) -> bool:
        return (
            self.report.ok
            and not self.contract_rejected
            and not self.unreadable
            and self.stated_root_matches
        )


def _eth_call(to: str, data: bytes, block: str) -> tuple[str, list[Any]]:
    return ("eth_call", [{"to": to, "data": "0x" + data.hex()}, block])


def _result_bytes(result: Any, what: str) -> bytes:
    if isinstance(result, RpcFailure):
        raise ChainError(f"{what} failed: {result.message}", code="rpc_error")
    return bytes.fromhex(str(result)[2:])


def fetch_chain_view(
    client: JsonRpcClient, clearing_house: str, cycle_id: int, partner_id: int
) -> tuple[str, CycleView, PositionView]:
    """(block, cycle, position) read at one block."""
    block = str(client.call("eth_blockNumber", []))
    cycle_out, position_out = client.batch(
        [
            _eth_call(clearing_house, GET_CYCLE.encode(cycle_id), block),
            _eth_call(clearing_house, GET_POSITION.encode(cycle_id, partner_id), block),
        ]
    )
    cycle = CycleView.decode(_result_bytes(cycle_out, "getCycle"))
    position = PositionView.decode(_result_bytes(position_out, "getPosition"))
    return block, cycle, position


def _contract_rejections(
    client: JsonRpcClient,
    clearing_house: str,
    block: str,
    proven: list[ProvenEntry],
    locally_failed: set[int],
) -> tuple[int, ...]:
    candidates = [item for item in proven if item.entry.entry_id not in locally_failed]
    calls = [
        _eth_call(clearing_house, encode_verify_entry(item.entry, item.proof), block)
        for item in candidates
    ]
    rejected = []
    for item, result in zip(candidates, client.batch(calls), strict=True):
        output = _result_bytes(result, "verifyEntry")
        if int.from_bytes(output[-32:], "big") != 1:
            rejected.append(item.entry.entry_id)
    return tuple(rejected)


def verify_partner_cycle(
    client: JsonRpcClient,
    clearing_house: str,
    *,
    partner_id: int,
    cycle_id: int,
    source: EntrySource,
) -> VerifyOutcome:
    """Run the whole check (module doc) against the chain behind `client`."""
    address = Web3.to_checksum_address(clearing_house)
    block, cycle, position = fetch_chain_view(client, address, cycle_id, partner_id)
    report = verify_partner_entries(
        partner_id=partner_id,
        cycle_id=cycle_id,
        root=cycle.entries_root,
        net_position_fen=position.net_position_fen,
        cycle_status=cycle.status,
        proven_entries=source.entries,
    )
    failed = {failure.entry_id for failure in report.failures}
    rejected = _contract_rejections(client, address, block, source.entries, failed)
    stated_root = source.stated.get("entries_root")
    return VerifyOutcome(
        report=report,
        chain_status=cycle.status,
        chain_root=cycle.entries_root,
        contract_rejected=rejected,
        unreadable=tuple(source.unreadable),
        stated_root_matches=stated_root in (None, "0x" + cycle.entries_root.hex()),
    )


def describe_outcome(outcome: VerifyOutcome, entries: list[ProvenEntry]) -> Iterator[str]:
    """Human-readable lines: the cycle, each failure with its entry, and the verdict."""
    report = outcome.report
    by_id = {item.entry.entry_id: item.entry for item in entries}
    yield (
        f"cycle {report.cycle_id}, partner {report.partner_id}: on-chain status "
        f"{outcome.chain_status.name.lower()}, root 0x{outcome.chain_root.hex()}"
    )
    yield (
        f"entries: {report.entry_count} received, {report.proven_count} proven, "
        f"sum {report.proven_total_fen} fen; on-chain net position {report.net_position_fen} fen"
    )
    for failure in report.failures:
        entry = by_id.get(failure.entry_id)
        what = f" ({entry.kind.name}, {entry.amount_fen} fen)" if entry else ""
        yield f"FAIL entry {failure.entry_id}{what}: {_REASON_TEXT[failure.reason]}"
    for entry_id in outcome.contract_rejected:
        yield f"FAIL entry {entry_id}: the ClearingHouse's verifyEntry refuses it"
    for problem in outcome.unreadable:
        yield f"FAIL unreadable {problem}"
    if not outcome.stated_root_matches:
        yield "FAIL the lender's stated root differs from the on-chain root"
    if not report.sum_matches:
        gap = report.net_position_fen - report.proven_total_fen
        yield f"FAIL proven entries miss the on-chain net position by {gap} fen"
    if not report.cycle_finalized:
        yield "FAIL the cycle is not finalized: its root may still change"
    yield "OK: every entry proves and sums to the on-chain position" if outcome.ok else "NOT OK"


def compute_dispute_reason(outcome: VerifyOutcome) -> bytes:
    """A 32-byte reason code: keccak256 of the failing entry ids (or the sum gap)."""
    ids = [failure.entry_id for failure in outcome.report.failures]
    ids += list(outcome.contract_rejected)
    text = "creditnet-verify:" + ",".join(str(entry_id) for entry_id in sorted(ids))
    if not ids:
        text += f"sum-gap:{outcome.report.net_position_fen - outcome.report.proven_total_fen}"
    return keccak(text=text)


def dispute_cycle(
    w3: Web3, account: LocalAccount, clearing_house: str, outcome: VerifyOutcome
) -> str:
    """Dispute the cycle as the partner's payout account; returns the transaction hash."""
    report = outcome.report
    data = DISPUTE.encode(report.cycle_id, report.partner_id, compute_dispute_reason(outcome))
    receipt = send_transaction(
        w3,
        account,
        {"to": Web3.to_checksum_address(clearing_house), "data": data, "gas": DISPUTE_GAS},
    )
    return str(receipt["transactionHash"].to_0x_hex())
