"""Was each cycle and each credit-line state signed by a quorum of the signer set in force
when it landed?

The signatures are not in any event, so they come from the proposing transaction's
calldata (`eth_getTransactionByHash`). The auditor decodes `proposeCycle` with the
published ABI, checks its arguments are the event's, rebuilds the EIP-712 digest
(domain "CreditNet ClearingHouse" v1, this chain, this contract) independently,
recovers every signer, and checks them against the signer set the replay says was in
force just before the proposal: at least `threshold` signatures, signers strictly
ascending, every one a member. The quorum's own `ReportConsumed` event in the same
transaction must name the same digest and signer-set version.

Line states the same way from `commitLineStateWithReport` (domain "CreditNet
CreditRegistry" v1): the registry has no other way to commit one, so a
`LineStateCommitted` whose transaction is not a direct `commitLineStateWithReport` call
with the event's values (a relayer-only commit of an older registry, or a call through
another contract the auditor cannot decode) is a finding, never skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from oracles.audit.events import EventRef
from oracles.audit.replay_state import CycleReplay, LineStateReplay, ReplayedState, SignerSet
from oracles.audit.source_verify import DecodedCall, decode_function_call
from oracles.chain import RpcTransaction
from oracles.compiler import AbiEntry
from oracles.eip712 import cycle_report_digest, line_state_report_digest, recover_signer


@dataclass(frozen=True)
class QuorumFinding:
    """One proposal's verdict: `problem` is empty when the quorum is valid."""

    subject: str
    ref: EventRef
    address: str
    signers: tuple[str, ...]
    signer_set_version: int | None
    problem: str


@dataclass(frozen=True)
class ReportedContract:
    """The contract quorum reports are addressed to: its ABI decodes the reporting call,
    its chain id and address are the reports' EIP-712 domain."""

    abi: Sequence[AbiEntry]
    chain_id: int
    address: str


def _recover_all(digest: bytes, signatures: Sequence[str]) -> tuple[list[str], str]:
    """The recovered signers in order, and a problem when one does not recover."""
    signers: list[str] = []
    for index, signature in enumerate(signatures):
        try:
            signers.append(recover_signer(digest, bytes.fromhex(signature[2:])))
        except Exception:  # a malformed signature is a finding, not a crash
            return signers, f"signature {index} does not recover"
    return signers, ""


def judge_signers(signers: Sequence[str], signer_set: SignerSet | None) -> str:
    """Why `signers` are not a quorum of `signer_set` ("" when they are)."""
    if signer_set is None:
        return "no signer set was in force"
    if len(signers) < signer_set.threshold:
        return f"{len(signers)} signatures, threshold {signer_set.threshold}"
    members = {signer.lower() for signer in signer_set.signers}
    previous = -1
    for signer in signers:
        if int(signer, 16) <= previous:
            return f"signers not strictly ascending at {signer}"
        previous = int(signer, 16)
        if signer.lower() not in members:
            return f"{signer} is not in signer set v{signer_set.version}"
    return ""


def _consumed_in_tx(state: ReplayedState, tx: str, digest: bytes) -> tuple[bool, int | None]:
    """Whether the quorum consumed `digest` in `tx`, and with which signer-set version."""
    for report in state.reports:
        if report.ref.tx == tx and report.digest == "0x" + digest.hex():
            return True, report.signer_set_version
    return False, None


def _cycle_call_problem(call: DecodedCall | None, cycle: CycleReplay) -> str:
    if call is None or call.function != "proposeCycle":
        return "the transaction's input is not a direct proposeCycle call"
    args = call.args
    same = (
        int(args["cycleId"]) == cycle.cycle_id
        and str(args["entriesRoot"]) == cycle.entries_root
        and int(args["entryCount"]) == cycle.entry_count
        and tuple(int(v) for v in args["partnerIds"]) == cycle.partner_ids
        and tuple(int(v) for v in args["netPositions"]) == cycle.net_positions_fen
    )
    return "" if same else "proposeCycle arguments differ from the CycleProposed event"


def judge_cycle(
    cycle: CycleReplay, tx: RpcTransaction | None, state: ReplayedState, house: ReportedContract
) -> QuorumFinding:
    """The quorum verdict of one proposed cycle."""
    assert cycle.proposed is not None
    return _judge_report(
        f"cycle {cycle.cycle_id}",
        cycle.proposed,
        _decoded_call(tx, house.abi),
        state,
        house.address,
        lambda call: _cycle_call_problem(call, cycle),
        lambda: cycle_report_digest(
            house.chain_id,
            house.address,
            cycle.cycle_id,
            bytes.fromhex(cycle.entries_root[2:]),
            cycle.entry_count,
            cycle.partner_ids,
            cycle.net_positions_fen,
        ),
    )


def _decoded_call(tx: RpcTransaction | None, abi: Sequence[AbiEntry]) -> DecodedCall | None:
    return decode_function_call(abi, bytes.fromhex(str(tx["input"])[2:])) if tx else None


def _judge_report(
    subject: str,
    ref: EventRef,
    call: DecodedCall | None,
    state: ReplayedState,
    address: str,
    problem_of: Callable[[DecodedCall | None], str],
    digest_of: Callable[[], bytes],
) -> QuorumFinding:
    """The verdict of one quorum-authorized write: the call must be the direct report call
    (`problem_of`), then its signatures are judged against the report's digest."""
    signer_set = state.signer_set_at(ref.order)
    problem = problem_of(call)
    if problem or call is None:
        version = signer_set.version if signer_set else None
        return QuorumFinding(subject, ref, address, (), version, problem)
    return _judge_signatures(subject, ref, address, digest_of(), call, signer_set, state)


def _judge_signatures(
    subject: str,
    ref: EventRef,
    address: str,
    digest: bytes,
    call: DecodedCall,
    signer_set: SignerSet | None,
    state: ReplayedState,
) -> QuorumFinding:
    version = signer_set.version if signer_set else None
    signers, problem = _recover_all(digest, call.args["signatures"])
    problem = problem or judge_signers(signers, signer_set)
    consumed, consumed_version = _consumed_in_tx(state, ref.tx, digest)
    if not problem and not consumed:
        problem = "the quorum consumed no report with this digest in the transaction"
    if not problem and consumed_version != version:
        problem = (
            f"the quorum validated with signer set v{consumed_version}, replay says v{version}"
        )
    return QuorumFinding(subject, ref, address, tuple(signers), version, problem)


def _line_state_call_problem(call: DecodedCall | None, line_state: LineStateReplay) -> str:
    if call is None or call.function != "commitLineStateWithReport":
        return (
            "committed without a quorum report: the transaction's input is not a direct "
            "commitLineStateWithReport call"
        )
    args = call.args
    same = (
        int(args["cycleId"]) == line_state.cycle_id
        and str(args["root"]) == line_state.root
        and int(args["count"]) == line_state.count
        and int(args["totalOutstandingFen"]) == line_state.total_outstanding_fen
    )
    return "" if same else "commitLineStateWithReport arguments differ from the event"


def judge_line_state(
    line_state: LineStateReplay,
    tx: RpcTransaction | None,
    state: ReplayedState,
    registry: ReportedContract,
) -> QuorumFinding:
    """The quorum verdict of one committed line state (see the module doc)."""
    return _judge_report(
        f"line state of cycle {line_state.cycle_id}",
        line_state.ref,
        _decoded_call(tx, registry.abi),
        state,
        registry.address,
        lambda call: _line_state_call_problem(call, line_state),
        lambda: line_state_report_digest(
            registry.chain_id,
            registry.address,
            line_state.cycle_id,
            bytes.fromhex(line_state.root[2:]),
            line_state.count,
            line_state.total_outstanding_fen,
        ),
    )
