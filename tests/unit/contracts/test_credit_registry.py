"""CreditRegistry: agreements in two slots each, legal status transitions only,
limit amendments, and per-cycle credit-line state provable leaf by leaf."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from oracles.eip712 import line_state_report_digest
from tests.unit.contracts.helpers import (
    ACTIVE,
    CHARGED_OFF,
    CLOSED,
    DEFAULTED,
    FROZEN,
    PAUSER_ROLE,
    RELAYER_ROLE,
    MerkleTree,
    Network,
    deploy,
    events,
    expect_deploy_revert,
    expect_revert,
    line_leaf,
    line_state_args,
    send,
    sign_line_state,
)

pytestmark = pytest.mark.chain

INPUT_TYPES = ["bytes32", "bytes32", "bytes32", "uint32", "uint64", "uint32", "uint64"]
OPENED_AT = 1_795_824_000  # 2026-11-28 00:00 UTC
CYCLE_ID = 20_261_128
ZERO32 = bytes(32)
LINE_STATE_TYPES = ["uint64", "bytes32", "uint64", "uint256"]
LEGAL = {
    (ACTIVE, FROZEN),
    (FROZEN, ACTIVE),
    (ACTIVE, CLOSED),
    (FROZEN, CLOSED),
    (ACTIVE, DEFAULTED),
    (FROZEN, DEFAULTED),
    (DEFAULTED, CHARGED_OFF),
    (DEFAULTED, ACTIVE),
    (CHARGED_OFF, CLOSED),  # a charged-off debt sold (or recovered in full)
}
PATH_TO = {
    ACTIVE: [],
    FROZEN: [FROZEN],
    CLOSED: [CLOSED],
    DEFAULTED: [DEFAULTED],
    CHARGED_OFF: [DEFAULTED, CHARGED_OFF],
}


def agreement(serial: int, **overrides: Any) -> tuple[Any, ...]:
    """An AgreementInput tuple, fields in declaration order (limit in fen, APR in bps)."""
    fields = {
        "agreement_id": keccak(b"agreement" + serial.to_bytes(4, "big")),
        "borrower_ref": keccak(b"borrower" + serial.to_bytes(4, "big")),
        "terms_hash": keccak(b"terms" + serial.to_bytes(4, "big")),
        "product_code": 1001,
        "limit_fen": 5_000_000,
        "apr_bps": 1_800,
        "opened_at": OPENED_AT,
    }
    fields.update(overrides)
    return tuple(fields.values())


def commitment_of(item: tuple[Any, ...]) -> bytes:
    return keccak(abi_encode(INPUT_TYPES, list(item)))


def open_one(net: Network, serial: int = 1, **overrides: Any) -> bytes:
    item = agreement(serial, **overrides)
    send(net, net.relayer, net.registry, "openAgreements", [item])
    return bytes(item[0])


def record_of(net: Network, agreement_id: bytes) -> tuple[tuple[Any, ...], bytes]:
    record, commitment = net.registry.functions.getAgreement(agreement_id).call()
    return tuple(record), bytes(commitment)


def move_to(net: Network, agreement_id: bytes, status: int) -> None:
    for step in PATH_TO[status]:
        send(net, net.relayer, net.registry, "setStatus", agreement_id, step, 0)


# --- opening -------------------------------------------------------------------------


def test_open_stores_packed_record_and_commitment_and_emits_every_field(net: Network) -> None:
    item = agreement(1)
    receipt = send(net, net.relayer, net.registry, "openAgreements", [item])
    record, commitment = record_of(net, item[0])
    assert record == (ACTIVE, 5_000_000, 1_800, 1001, OPENED_AT, 0, 0)
    assert commitment == commitment_of(item)
    assert events(net.registry, receipt, "AgreementOpened") == [
        {
            "agreementId": item[0],
            "borrowerRef": item[1],
            "termsHash": item[2],
            "productCode": 1001,
            "limitFen": 5_000_000,
            "aprBps": 1_800,
            "openedAt": OPENED_AT,
            "commitment": commitment_of(item),
        }
    ]


def test_compute_commitment_hashes_the_abi_encoding_of_all_fields(net: Network) -> None:
    item = agreement(7, limit_fen=1, apr_bps=0)
    assert bytes(net.registry.functions.computeCommitment(item).call()) == commitment_of(item)


def test_open_batch_opens_every_agreement_in_order(net: Network) -> None:
    items = [agreement(serial) for serial in range(1, 6)]
    receipt = send(net, net.relayer, net.registry, "openAgreements", items)
    opened = events(net.registry, receipt, "AgreementOpened")
    assert [event["agreementId"] for event in opened] == [item[0] for item in items]
    assert all(record_of(net, item[0])[0][0] == ACTIVE for item in items)


def test_open_in_a_batch_of_100_costs_under_60k_gas_each(net: Network) -> None:
    items = [agreement(serial) for serial in range(1, 101)]
    receipt = send(net, net.relayer, net.registry, "openAgreements", items)
    assert receipt["gasUsed"] // 100 < 60_000


def test_unknown_agreement_reads_as_zero(net: Network) -> None:
    assert record_of(net, keccak(b"nobody")) == ((0, 0, 0, 0, 0, 0, 0), ZERO32)


def test_RevertWhen_opening_an_empty_batch(net: Network) -> None:
    expect_revert(net, net.relayer, net.registry, "openAgreements", [[]], "EmptyBatch")


@pytest.mark.parametrize(
    "override", [{"agreement_id": ZERO32}, {"borrower_ref": ZERO32}, {"opened_at": 0}]
)
def test_RevertWhen_id_borrower_ref_or_opened_at_is_zero(
    net: Network, override: dict[str, Any]
) -> None:
    bad = agreement(2, **override)
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "openAgreements",
        [[agreement(1), bad]],
        "InvalidAgreementInput",
        [1, bad[0]],
    )


def test_RevertWhen_reopening_with_same_data_reports_the_same_commitment(net: Network) -> None:
    item = agreement(1)
    send(net, net.relayer, net.registry, "openAgreements", [item])
    decoded = expect_revert(
        net, net.relayer, net.registry, "openAgreements", [[item]], "AgreementExists"
    )
    assert decoded == (item[0], commitment_of(item))


def test_RevertWhen_reopening_with_different_data_reports_a_different_commitment(
    net: Network,
) -> None:
    item = agreement(1)
    send(net, net.relayer, net.registry, "openAgreements", [item])
    conflicting = agreement(1, limit_fen=9_999)
    decoded = expect_revert(
        net, net.relayer, net.registry, "openAgreements", [[conflicting]], "AgreementExists"
    )
    assert decoded[1] == commitment_of(item) != commitment_of(conflicting)


def test_RevertWhen_a_batch_repeats_an_id_and_nothing_is_opened(net: Network) -> None:
    item = agreement(1)
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "openAgreements",
        [[item, item]],
        "AgreementExists",
        [item[0], commitment_of(item)],
    )
    assert record_of(net, item[0])[0][0] == 0


@pytest.mark.parametrize("who", ["admin", "outsider"])
def test_RevertWhen_non_relayer_opens(net: Network, who: str) -> None:
    account = getattr(net, who)
    expect_revert(
        net,
        account,
        net.registry,
        "openAgreements",
        [[agreement(1)]],
        "AccessControlUnauthorizedAccount",
        [account.address, RELAYER_ROLE],
    )


# --- limits --------------------------------------------------------------------------


def test_amend_limit_updates_record_and_emits_old_and_new(net: Network) -> None:
    agreement_id = open_one(net)
    receipt = send(net, net.relayer, net.registry, "amendLimit", agreement_id, 8_000_000, 31)
    record, commitment = record_of(net, agreement_id)
    assert record == (ACTIVE, 8_000_000, 1_800, 1001, OPENED_AT, 31, 1)
    assert commitment == commitment_of(agreement(1))
    assert events(net.registry, receipt, "AgreementLimitAmended") == [
        {
            "agreementId": agreement_id,
            "oldLimitFen": 5_000_000,
            "newLimitFen": 8_000_000,
            "reasonCode": 31,
        }
    ]


@pytest.mark.parametrize("status", [FROZEN, DEFAULTED])
def test_amend_limit_is_allowed_while_frozen_or_defaulted(net: Network, status: int) -> None:
    agreement_id = open_one(net)
    move_to(net, agreement_id, status)
    send(net, net.relayer, net.registry, "amendLimit", agreement_id, 0, 7)
    assert record_of(net, agreement_id)[0][1] == 0


@pytest.mark.parametrize("status", [CLOSED, CHARGED_OFF])
def test_RevertWhen_amending_a_closed_or_charged_off_agreement(net: Network, status: int) -> None:
    agreement_id = open_one(net)
    move_to(net, agreement_id, status)
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "amendLimit",
        [agreement_id, 1, 7],
        "AgreementNotAmendable",
        [agreement_id, status],
    )


def test_RevertWhen_amending_to_the_same_limit(net: Network) -> None:
    agreement_id = open_one(net)
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "amendLimit",
        [agreement_id, 5_000_000, 1],
        "LimitUnchanged",
        [agreement_id, 5_000_000],
    )


def test_RevertWhen_amending_an_unknown_agreement(net: Network) -> None:
    unknown = keccak(b"unknown")
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "amendLimit",
        [unknown, 1, 1],
        "AgreementNotFound",
        [unknown],
    )


def test_amend_limits_batch_applies_each_amendment(net: Network) -> None:
    send(net, net.relayer, net.registry, "openAgreements", [agreement(1), agreement(2)])
    first, second = agreement(1)[0], agreement(2)[0]
    send(net, net.relayer, net.registry, "amendLimits", [(first, 1, 5), (second, 2, 6)])
    assert record_of(net, first)[0][1] == 1
    assert record_of(net, second)[0][1] == 2


def test_RevertWhen_one_batch_amendment_fails_and_none_apply(net: Network) -> None:
    first = open_one(net)
    unknown = keccak(b"unknown")
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "amendLimits",
        [[(first, 1, 5), (unknown, 2, 6)]],
        "AgreementNotFound",
        [unknown],
    )
    assert record_of(net, first)[0][1] == 5_000_000


def test_RevertWhen_amending_an_empty_batch(net: Network) -> None:
    expect_revert(net, net.relayer, net.registry, "amendLimits", [[]], "EmptyBatch")


def test_RevertWhen_non_relayer_amends(net: Network) -> None:
    agreement_id = open_one(net)
    expect_revert(
        net,
        net.outsider,
        net.registry,
        "amendLimit",
        [agreement_id, 1, 1],
        "AccessControlUnauthorizedAccount",
        [net.outsider.address, RELAYER_ROLE],
    )


# --- status --------------------------------------------------------------------------


@pytest.mark.parametrize("transition", sorted(LEGAL))
def test_legal_transition_moves_status_and_emits(net: Network, transition: tuple[int, int]) -> None:
    source, target = transition
    agreement_id = open_one(net)
    move_to(net, agreement_id, source)
    receipt = send(net, net.relayer, net.registry, "setStatus", agreement_id, target, 42)
    record = record_of(net, agreement_id)[0]
    assert (record[0], record[5], record[6]) == (target, 42, len(PATH_TO[source]) + 1)
    assert events(net.registry, receipt, "AgreementStatusChanged") == [
        {"agreementId": agreement_id, "fromStatus": source, "toStatus": target, "reasonCode": 42}
    ]


@pytest.mark.parametrize("source", sorted(PATH_TO))
def test_RevertWhen_transition_is_not_legal(net: Network, source: int) -> None:
    agreement_id = open_one(net)
    move_to(net, agreement_id, source)
    for target in [*range(0, 8), 255]:
        if (source, target) in LEGAL:
            continue
        expect_revert(
            net,
            net.relayer,
            net.registry,
            "setStatus",
            [agreement_id, target, 1],
            "IllegalTransition",
            [source, target],
        )


def test_RevertWhen_setting_status_of_an_unknown_agreement(net: Network) -> None:
    unknown = keccak(b"unknown")
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "setStatus",
        [unknown, FROZEN, 1],
        "AgreementNotFound",
        [unknown],
    )


def test_set_statuses_applies_changes_in_order(net: Network) -> None:
    agreement_id = open_one(net)
    changes = [(agreement_id, DEFAULTED, 1), (agreement_id, ACTIVE, 2), (agreement_id, FROZEN, 3)]
    receipt = send(net, net.relayer, net.registry, "setStatuses", changes)
    moves = events(net.registry, receipt, "AgreementStatusChanged")
    assert [(m["fromStatus"], m["toStatus"]) for m in moves] == [
        (ACTIVE, DEFAULTED),
        (DEFAULTED, ACTIVE),
        (ACTIVE, FROZEN),
    ]
    assert record_of(net, agreement_id)[0][0] == FROZEN


def test_RevertWhen_one_batch_status_change_is_illegal_and_none_apply(net: Network) -> None:
    agreement_id = open_one(net)
    changes = [(agreement_id, CLOSED, 1), (agreement_id, ACTIVE, 2)]
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "setStatuses",
        [changes],
        "IllegalTransition",
        [CLOSED, ACTIVE],
    )
    assert record_of(net, agreement_id)[0][0] == ACTIVE


def test_RevertWhen_setting_statuses_with_an_empty_batch(net: Network) -> None:
    expect_revert(net, net.relayer, net.registry, "setStatuses", [[]], "EmptyBatch")


def test_RevertWhen_non_relayer_sets_status(net: Network) -> None:
    agreement_id = open_one(net)
    expect_revert(
        net,
        net.admin,
        net.registry,
        "setStatus",
        [agreement_id, FROZEN, 1],
        "AccessControlUnauthorizedAccount",
        [net.admin.address, RELAYER_ROLE],
    )


# --- line state ----------------------------------------------------------------------


def line_tree() -> tuple[MerkleTree, list[tuple[bytes, int]]]:
    balances = [(keccak(b"line" + bytes([i])), 10_000 * i) for i in range(1, 8)]
    return MerkleTree([line_leaf(aid, CYCLE_ID, fen) for aid, fen in balances]), balances


def commit_line_state(
    net: Network, root: bytes, count: int, total_fen: int, cycle_id: int = CYCLE_ID
) -> TxReceipt:
    """Commit a line state with a quorum-signed report, submitted by the relayer."""
    args = line_state_args(net, cycle_id, root, count, total_fen)
    return send(net, net.relayer, net.registry, "commitLineStateWithReport", *args)


def test_commit_line_state_stores_root_count_total_and_emits(net: Network) -> None:
    tree, balances = line_tree()
    total = sum(fen for _, fen in balances)
    receipt = commit_line_state(net, tree.root, 7, total)
    state = net.registry.functions.getLineState(CYCLE_ID).call()
    assert (bytes(state[0]), state[1], state[2]) == (tree.root, 7, total)
    assert events(net.registry, receipt, "LineStateCommitted") == [
        {
            "cycleId": CYCLE_ID,
            "root": tree.root,
            "count": 7,
            "totalOutstandingFen": total,
            "submitter": net.relayer.address,
        }
    ]


def test_verify_line_balance_proves_each_committed_balance(net: Network) -> None:
    tree, balances = line_tree()
    commit_line_state(net, tree.root, 7, 1)
    verify = net.registry.functions.verifyLineBalance
    for agreement_id, fen in balances:
        proof = tree.proof(line_leaf(agreement_id, CYCLE_ID, fen))
        assert verify(agreement_id, CYCLE_ID, fen, proof).call()
        assert not verify(agreement_id, CYCLE_ID, fen + 1, proof).call()
        assert not verify(agreement_id, CYCLE_ID + 1, fen, proof).call()


def test_verify_line_balance_is_false_for_an_uncommitted_cycle(net: Network) -> None:
    tree, balances = line_tree()
    agreement_id, fen = balances[0]
    proof = tree.proof(line_leaf(agreement_id, CYCLE_ID, fen))
    assert not net.registry.functions.verifyLineBalance(agreement_id, CYCLE_ID, fen, proof).call()


def test_RevertWhen_committing_a_cycle_twice(net: Network) -> None:
    root = keccak(b"root")
    commit_line_state(net, root, 1, 1)
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "commitLineStateWithReport",
        line_state_args(net, CYCLE_ID, keccak(b"other"), 1, 1),
        "LineStateAlreadyCommitted",
        [CYCLE_ID, root],
    )


def test_RevertWhen_committing_a_zero_root(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "commitLineStateWithReport",
        line_state_args(net, CYCLE_ID, ZERO32, 0, 0),
        "ZeroLineStateRoot",
        [CYCLE_ID],
    )


def test_RevertWhen_total_outstanding_exceeds_192_bits(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "commitLineStateWithReport",
        line_state_args(net, CYCLE_ID, keccak(b"root"), 1, 2**192),
        "SafeCastOverflowedUintDowncast",
        [192, 2**192],
    )


def test_line_state_report_digest_matches_the_python_mirror(net: Network) -> None:
    root = keccak(b"root")
    digest = line_state_report_digest(net.chain_id, net.registry.address, CYCLE_ID, root, 3, 900)
    on_chain = net.registry.functions.lineStateReportDigest(CYCLE_ID, root, 3, 900).call()
    assert bytes(on_chain) == digest


def test_anyone_commits_line_state_with_a_quorum_report(net: Network) -> None:
    root = keccak(b"root")
    args = line_state_args(net, CYCLE_ID, root, 3, 900)
    receipt = send(net, net.outsider, net.registry, "commitLineStateWithReport", *args)
    assert events(net.registry, receipt, "LineStateCommitted")[0]["submitter"] == (
        net.outsider.address
    )
    assert bytes(net.registry.functions.getLineState(CYCLE_ID).call()[0]) == root


def test_RevertWhen_a_line_state_report_is_replayed(net: Network) -> None:
    root = keccak(b"root")
    digest = line_state_report_digest(net.chain_id, net.registry.address, CYCLE_ID, root, 3, 900)
    args = line_state_args(net, CYCLE_ID, root, 3, 900)
    send(net, net.outsider, net.registry, "commitLineStateWithReport", *args)
    expect_revert(
        net,
        net.outsider,
        net.registry,
        "commitLineStateWithReport",
        args,
        "ReportAlreadyConsumed",
        [net.registry.address, digest],
    )


def test_RevertWhen_a_line_state_report_was_signed_for_another_registry(net: Network) -> None:
    root = keccak(b"root")
    signatures = sign_line_state(net, CYCLE_ID, root, 3, 900, registry=net.outsider.address)
    expect_revert(
        net,
        net.outsider,
        net.registry,
        "commitLineStateWithReport",
        [CYCLE_ID, root, 3, 900, signatures],
        "UnknownSigner",
    )


# --- attack: a line state without a quorum -------------------------------------------


def test_the_relayer_only_line_state_commit_is_gone_from_the_abi(net: Network) -> None:
    names = {item.get("name") for item in net.registry.abi if item["type"] == "function"}
    assert "commitLineStateWithReport" in names
    assert "commitLineState" not in names
    # Nor does the selector answer: a relayer call to the old function reverts with no data.
    selector = function_signature_to_4byte_selector(
        "commitLineState(uint64,bytes32,uint64,uint256)"
    )
    data = "0x" + (selector + abi_encode(LINE_STATE_TYPES, [CYCLE_ID, keccak(b"r"), 1, 1])).hex()
    call = {"from": net.relayer.address, "to": net.registry.address, "data": data}
    with pytest.raises(ContractLogicError):
        net.w3.eth.call(call)  # type: ignore[arg-type]
    assert net.registry.functions.getLineState(CYCLE_ID).call()[0] == ZERO32


@pytest.mark.parametrize("who", ["relayer", "admin"])
def test_RevertWhen_a_line_state_report_lacks_quorum(net: Network, who: str) -> None:
    root = keccak(b"root")
    for signers in ([], net.signers[: net.threshold - 1]):
        expect_revert(
            net,
            getattr(net, who),
            net.registry,
            "commitLineStateWithReport",
            line_state_args(net, CYCLE_ID, root, 3, 900, signers=signers),
            "QuorumNotReached",
            [len(signers), net.threshold],
        )
    assert net.registry.functions.getLineState(CYCLE_ID).call()[0] == ZERO32


def test_RevertWhen_the_relayer_and_admin_complete_a_quorum_as_non_signers(net: Network) -> None:
    root = keccak(b"root")
    signers = [net.signers[0], net.relayer]
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "commitLineStateWithReport",
        line_state_args(net, CYCLE_ID, root, 3, 900, signers=signers),
        "UnknownSigner",
    )


# --- pause, roles, construction ------------------------------------------------------


WRITES = [
    ("openAgreements", lambda aid: [[agreement(9)]]),
    ("amendLimit", lambda aid: [aid, 1, 1]),
    ("amendLimits", lambda aid: [[(aid, 1, 1)]]),
    ("setStatus", lambda aid: [aid, FROZEN, 1]),
    ("setStatuses", lambda aid: [[(aid, FROZEN, 1)]]),
    ("commitLineStateWithReport", lambda aid: [CYCLE_ID, keccak(b"root"), 1, 1, []]),
]


@pytest.mark.parametrize(("function", "make_args"), WRITES, ids=[w[0] for w in WRITES])
def test_RevertWhen_any_write_is_sent_while_paused(
    net: Network, function: str, make_args: Any
) -> None:
    agreement_id = open_one(net)
    send(net, net.admin, net.registry, "pause")
    expect_revert(
        net, net.relayer, net.registry, function, make_args(agreement_id), "EnforcedPause"
    )


def test_unpause_restores_writes(net: Network) -> None:
    send(net, net.admin, net.registry, "pause")
    send(net, net.admin, net.registry, "unpause")
    open_one(net)


def test_RevertWhen_non_pauser_pauses_the_registry(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.registry,
        "pause",
        [],
        "AccessControlUnauthorizedAccount",
        [net.relayer.address, PAUSER_ROLE],
    )


def test_registry_reports_its_quorum(net: Network) -> None:
    assert net.registry.functions.oracleQuorum().call() == net.quorum.address


@pytest.mark.parametrize("argument_index", [0, 1])
def test_RevertWhen_constructed_with_a_zero_address(net: Network, argument_index: int) -> None:
    args: list[str] = [net.admin.address, net.quorum.address]
    args[argument_index] = "0x" + "00" * 20
    artifact = net.compiled.artifact("CreditRegistry")
    expect_deploy_revert(net, artifact, args, "ZeroAddressArgument", [argument_index])


def test_a_fresh_registry_grants_only_the_admin_role(net: Network) -> None:
    artifact = net.compiled.artifact("CreditRegistry")
    registry = deploy(net, net.admin, artifact, net.admin.address, net.quorum.address)
    assert registry.functions.hasRole(bytes(32), net.admin.address).call()
    assert not registry.functions.hasRole(RELAYER_ROLE, net.admin.address).call()
