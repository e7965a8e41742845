"""Quorum verification from proposeCycle calldata, against the signer set in force."""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from oracles.abi_codec import ContractCodec
from oracles.audit.events import EventRef
from oracles.audit.history import replay
from oracles.audit.quorum import ReportedContract, judge_cycle, judge_line_state, judge_signers
from oracles.audit.replay_state import ReportConsumed, SignerSet
from oracles.compiler import CompiledContracts
from oracles.eip712 import cycle_report_digest, line_state_report_digest, sorted_signatures
from tests.unit.audit.factory import HOUSE, REGISTRY, EventMaker, fresh_state, proposed

CHAIN_ID = 31337
SIGNERS: list[LocalAccount] = [Account.from_key(bytes([n]) * 32) for n in (1, 2, 3)]


def _set(accounts: list[LocalAccount], threshold: int, version: int = 1) -> SignerSet:
    return SignerSet(version, tuple(a.address for a in accounts), threshold, EventRef(1, 0, "0x01"))


def test_threshold_order_and_membership_are_required() -> None:
    members = sorted((a.address for a in SIGNERS), key=lambda a: int(a, 16))
    signer_set = _set(SIGNERS, 2)
    assert judge_signers(members[:2], signer_set) == ""
    assert judge_signers(members[:1], signer_set) == "1 signatures, threshold 2"
    assert judge_signers([members[1], members[0]], signer_set).startswith(
        "signers not strictly ascending"
    )
    stranger = Account.from_key(b"\x09" * 32).address
    assert "is not in signer set v1" in judge_signers(
        sorted([members[0], stranger], key=lambda a: int(a, 16)), signer_set
    )
    assert judge_signers(members, None) == "no signer set was in force"


def _proposal_tx(
    codec: ContractCodec, positions: dict[int, int], signers: list[LocalAccount]
) -> tuple[dict[str, Any], bytes]:
    partners = sorted(positions)
    root = b"\xcc" * 32
    digest = cycle_report_digest(
        CHAIN_ID, HOUSE, 7, root, 4, partners, [positions[p] for p in partners]
    )
    calldata = codec.function("proposeCycle").encode(
        [7, root, 4, partners, [positions[p] for p in partners], sorted_signatures(signers, digest)]
    )
    return {"input": "0x" + calldata.hex()}, digest


def _judge(
    compiled: CompiledContracts,
    signer_set: SignerSet,
    signers: list[LocalAccount],
    *,
    consumed: bool = True,
) -> str:
    abi = compiled.artifact("ClearingHouse").abi
    positions = {1: 300, 2: -300}
    make = EventMaker()
    event = proposed(make, 7, positions)
    state = replay([event], fresh_state())
    state.signer_sets.append(signer_set)
    tx, digest = _proposal_tx(ContractCodec(abi), positions, signers)
    if consumed:
        state.reports.append(
            ReportConsumed(
                HOUSE, "0x" + digest.hex(), "0x" + digest.hex(), signer_set.version, event.ref
            )
        )
    return judge_cycle(state.cycles[7], tx, state, ReportedContract(abi, CHAIN_ID, HOUSE)).problem


def test_quorum_of_the_signer_set_in_force_passes(compiled: CompiledContracts) -> None:
    assert _judge(compiled, _set(SIGNERS, 2), SIGNERS[:2]) == ""


def test_signatures_of_a_replaced_signer_set_fail(compiled: CompiledContracts) -> None:
    new_set = _set([Account.from_key(bytes([n]) * 32) for n in (4, 5)], 2, version=2)
    assert "is not in signer set v2" in _judge(compiled, new_set, SIGNERS[:2])


def test_too_few_signatures_fail(compiled: CompiledContracts) -> None:
    assert _judge(compiled, _set(SIGNERS, 3), SIGNERS[:2]) == "2 signatures, threshold 3"


def test_a_proposal_the_quorum_never_consumed_fails(compiled: CompiledContracts) -> None:
    problem = _judge(compiled, _set(SIGNERS, 2), SIGNERS[:2], consumed=False)
    assert problem == "the quorum consumed no report with this digest in the transaction"


def test_calldata_that_is_not_the_event_fails(compiled: CompiledContracts) -> None:
    abi = compiled.artifact("ClearingHouse").abi
    state = replay([proposed(EventMaker(), 7, {1: 300, 2: -300})], fresh_state())
    tx, _digest = _proposal_tx(ContractCodec(abi), {1: 200, 2: -200}, SIGNERS[:2])
    finding = judge_cycle(state.cycles[7], tx, state, ReportedContract(abi, CHAIN_ID, HOUSE))
    assert finding.problem == "proposeCycle arguments differ from the CycleProposed event"
    through_contract = judge_cycle(
        state.cycles[7], {"input": "0x1234"}, state, ReportedContract(abi, CHAIN_ID, HOUSE)
    )
    assert through_contract.problem == "the transaction's input is not a direct proposeCycle call"


LINE_ROOT = b"\x5e" * 32


def _line_state_tx(
    codec: ContractCodec, signers: list[LocalAccount], *, total_fen: int = 900
) -> tuple[dict[str, Any], bytes]:
    digest = line_state_report_digest(CHAIN_ID, REGISTRY, 7, LINE_ROOT, 3, total_fen)
    calldata = codec.function("commitLineStateWithReport").encode(
        [7, LINE_ROOT, 3, total_fen, sorted_signatures(signers, digest)]
    )
    return {"input": "0x" + calldata.hex()}, digest


def _judge_line_state(
    compiled: CompiledContracts, tx: dict[str, Any], digest: bytes, signer_set: SignerSet
) -> str:
    abi = compiled.artifact("CreditRegistry").abi
    event = EventMaker()(
        "CreditRegistry",
        "LineStateCommitted",
        cycleId=7,
        root="0x" + LINE_ROOT.hex(),
        count=3,
        totalOutstandingFen=900,
        submitter="0x" + "01" * 20,
    )
    state = replay([event], fresh_state())
    state.signer_sets.append(signer_set)
    state.reports.append(
        ReportConsumed(
            REGISTRY, "0x" + digest.hex(), "0x" + digest.hex(), signer_set.version, event.ref
        )
    )
    finding = judge_line_state(
        state.line_states[7], tx, state, ReportedContract(abi, CHAIN_ID, REGISTRY)
    )
    assert finding.subject == "line state of cycle 7"
    return finding.problem


def test_a_line_state_with_a_quorum_report_passes(compiled: CompiledContracts) -> None:
    codec = ContractCodec(compiled.artifact("CreditRegistry").abi)
    tx, digest = _line_state_tx(codec, SIGNERS[:2])
    assert _judge_line_state(compiled, tx, digest, _set(SIGNERS, 2)) == ""
    few, few_digest = _line_state_tx(codec, SIGNERS[:1])
    assert _judge_line_state(compiled, few, few_digest, _set(SIGNERS, 2)) == (
        "1 signatures, threshold 2"
    )


def test_a_line_state_committed_without_a_quorum_report_is_flagged(
    compiled: CompiledContracts,
) -> None:
    """The relayer-only `commitLineState(uint64,bytes32,uint64,uint256)` of older registries,
    or any call the auditor cannot decode as `commitLineStateWithReport`, is a finding."""
    codec = ContractCodec(compiled.artifact("CreditRegistry").abi)
    _tx, digest = _line_state_tx(codec, SIGNERS[:2])
    selector = Web3.keccak(text="commitLineState(uint64,bytes32,uint64,uint256)")[:4]
    relayer_only = selector + abi_encode(
        ["uint64", "bytes32", "uint64", "uint256"], [7, LINE_ROOT, 3, 900]
    )
    for tx in ({"input": "0x" + relayer_only.hex()}, {"input": "0x1234"}, None):
        problem = _judge_line_state(compiled, tx, digest, _set(SIGNERS, 2))  # type: ignore[arg-type]
        assert problem.startswith("committed without a quorum report"), problem
    other, other_digest = _line_state_tx(codec, SIGNERS[:2], total_fen=901)
    assert _judge_line_state(compiled, other, other_digest, _set(SIGNERS, 2)) == (
        "commitLineStateWithReport arguments differ from the event"
    )
