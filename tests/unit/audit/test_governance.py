"""Governance on synthetic histories: timelock operations, admin actions that bypass the
timelock, and the deployment's handover of the admin roles."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from oracles.audit.audited import AuditedContracts
from oracles.audit.chain_reader import ChainReader
from oracles.audit.events import AuditEvent
from oracles.audit.governance_checks import (
    ADMIN_ROLE,
    PAUSER_ROLE,
    check_admin_via_timelock,
    check_handover,
    check_timelock_operations,
)
from oracles.audit.history import replay
from oracles.audit.replay_state import ReplayedState
from oracles.compiler import AbiEntry
from oracles.manifest import DeployedContract, Manifest, PostDeployRecord
from tests.unit.audit.factory import ADDRESSES, QUORUM, TIMELOCK, EventMaker, fresh_state

CONTRACTS = AuditedContracts(addresses=dict(ADDRESSES), codecs={}, abis={}, deploy_blocks={})
DEPLOYER, PROPOSER, EXECUTOR = ("0x" + f"{n:02x}" * 20 for n in (0xD0, 0xD1, 0xD2))
SIGNERS = ["0x" + "0a" * 20, "0x" + "0b" * 20]
SET_SIGNERS_ABI: AbiEntry = {
    "type": "function",
    "name": "setSigners",
    "inputs": [
        {"name": "newSigners", "type": "address[]"},
        {"name": "newThreshold", "type": "uint256"},
    ],
    "outputs": [],
}
OPERATION = "0x" + "0f" * 32
DEPLOY_TX = "0x" + "de" * 32
NO_READER = cast("ChainReader", None)


def _state() -> ReplayedState:
    state = fresh_state()
    state.abis = {"OracleQuorum": [SET_SIGNERS_ABI]}
    state.role_names = {ADMIN_ROLE: "DEFAULT_ADMIN_ROLE", PAUSER_ROLE: "PAUSER_ROLE"}
    return state


def _set_signers_calldata() -> str:
    selector = keccak(text="setSigners(address[],uint256)")[:4]
    return "0x" + (selector + abi_encode(["address[]", "uint256"], [SIGNERS, 2])).hex()


def _scheduled(make: EventMaker, delay: int, at: int = 1_000) -> AuditEvent:
    return make(
        "NetworkTimelock",
        "CallScheduled",
        at=at,
        id=OPERATION,
        index=0,
        target=QUORUM,
        value=0,
        data=_set_signers_calldata(),
        predecessor="0x" + "00" * 32,
        delay=delay,
    )


def _executed(make: EventMaker, at: int, *, same_tx: bool = False) -> AuditEvent:
    return make(
        "NetworkTimelock",
        "CallExecuted",
        at=at,
        same_tx=same_tx,
        id=OPERATION,
        index=0,
        target=QUORUM,
        value=0,
        data=_set_signers_calldata(),
    )


def _signer_set(make: EventMaker, version: int = 1) -> AuditEvent:
    return make("OracleQuorum", "SignerSetChanged", version=version, signers=SIGNERS, threshold=2)


def _min_delay(make: EventMaker, old: int, new: int) -> AuditEvent:
    return make("NetworkTimelock", "MinDelayChange", oldDuration=old, newDuration=new)


def _manifest(created_at_block: int = 1, deploy_txs: tuple[str, ...] = (DEPLOY_TX,)) -> Manifest:
    contracts = {
        name: DeployedContract(
            address=address, deploy_block=1, deploy_tx=deploy_txs[0], constructor_args="0x"
        )
        for name, address in ADDRESSES.items()
    }
    calls = [
        PostDeployRecord(contract="OracleQuorum", function="x", calldata="0x", tx=tx, block=1)
        for tx in deploy_txs[1:]
    ]
    return Manifest(
        chain_id=1,
        compiler_version="x",
        settings=cast("Any", {}),
        source_hashes={},
        deployer=DEPLOYER,
        created_at_block=created_at_block,
        contracts=contracts,
        post_deploy_calls=calls,
    )


def test_timelock_operation_is_decoded_and_its_execution_attributed_to_the_timelock() -> None:
    make = EventMaker()
    events = [
        _min_delay(make, 0, 60),
        _scheduled(make, 60, at=1_000),
        _signer_set(make),
        _executed(make, at=1_060, same_tx=True),
    ]
    state = replay(events, _state())
    assert state.anomalies == []
    (operation,) = state.timelock_operations
    assert (operation.state, operation.delay_s, operation.min_delay_s) == ("executed", 60, 60)
    assert operation.ready_at == 1_060 and operation.executed_at == 1_060
    description = f"OracleQuorum.setSigners([{SIGNERS[0]}, {SIGNERS[1]}], 2)".lower()
    assert operation.calls[0].description.lower() == description
    kinds = [(a.category, a.function, a.sender, a.operation) for a in state.admin_actions]
    assert kinds == [
        ("timelock", "updateDelay", "", ""),
        ("timelock", "schedule", "", OPERATION),
        ("signers", "setSigners", ADDRESSES["NetworkTimelock"], OPERATION),
        ("timelock", "execute", "", OPERATION),
    ]
    assert check_admin_via_timelock(state, CONTRACTS, _manifest()).passed
    assert check_timelock_operations(state, CONTRACTS).passed


def test_a_signer_set_changed_directly_by_an_account_fails_the_admin_check() -> None:
    make = EventMaker()
    direct = _signer_set(make)
    state = replay([direct], _state())
    # the runner fills in the sender of an event without one from its transaction
    state.admin_actions = [replace(action, sender=DEPLOYER) for action in state.admin_actions]
    check = check_admin_via_timelock(state, CONTRACTS, _manifest())
    assert not check.passed
    assert check.message.startswith(
        f"1 admin actions bypassed the timelock; first: OracleQuorum.setSigners sent directly "
        f"by {DEPLOYER}, not through the timelock: signer set v1"
    )
    (evidence,) = check.evidence
    assert (evidence.block, evidence.tx, evidence.address) == (
        direct.ref.block,
        direct.ref.tx,
        QUORUM,
    )
    # the same change inside the deployment's own transactions is the deployment's business
    assert check_admin_via_timelock(state, CONTRACTS, _manifest(deploy_txs=(direct.ref.tx,))).passed


def test_an_execution_in_another_transaction_does_not_vouch_for_a_direct_call() -> None:
    make = EventMaker()
    events = [
        _min_delay(make, 0, 60),
        _scheduled(make, 60, at=1_000),
        _signer_set(make),
        _executed(make, at=1_060),
    ]
    state = replay(events, _state())
    signer_action = next(a for a in state.admin_actions if a.category == "signers")
    assert signer_action.sender == "" and signer_action.operation == ""


def test_direct_pause_and_role_grant_fail_and_renouncing_does_not() -> None:
    make = EventMaker()
    events = [
        make("ClearingHouse", "Paused", account=DEPLOYER),
        make("ClearingHouse", "Unpaused", account=TIMELOCK),
        make("ClearingHouse", "RoleGranted", role=PAUSER_ROLE, account=EXECUTOR, sender=DEPLOYER),
        make("ClearingHouse", "RoleRevoked", role=ADMIN_ROLE, account=DEPLOYER, sender=DEPLOYER),
    ]
    check = check_admin_via_timelock(replay(events, _state()), CONTRACTS, _manifest())
    problems = [str(e.values["problem"]) for e in check.evidence]
    assert [p.split(" sent directly")[0] for p in problems] == [
        "ClearingHouse.pause",
        "ClearingHouse.grantRole",
    ]


def test_a_delay_below_the_minimum_in_force_is_flagged() -> None:
    make = EventMaker()
    events = [_min_delay(make, 0, 60), _scheduled(make, 59)]
    state = replay(events, _state())
    check = check_timelock_operations(state, CONTRACTS)
    assert not check.passed
    assert "scheduled with a delay of 59 s, below the minimum delay of 60 s" in check.message
    assert check.evidence[0].values["min_delay_s"] == 60
    assert check.evidence[0].tx == events[1].ref.tx


def test_an_execution_before_the_operation_is_ready_or_never_scheduled_is_flagged() -> None:
    make = EventMaker()
    events = [_min_delay(make, 0, 60), _scheduled(make, 60, at=1_000), _executed(make, at=1_059)]
    problems = [a.problem for a in replay(events, _state()).anomalies]
    assert len(problems) == 1 and "executed at 1059, before it was ready at 1060" in problems[0]
    make = EventMaker()
    unknown = replay([_executed(make, at=5)], _state())
    assert [a.problem for a in unknown.anomalies] == [f"operation {OPERATION} was never scheduled"]
    partial = _state()
    partial.partial = True
    assert replay([_executed(EventMaker(), at=5)], partial).anomalies == []


def test_cancelling_records_the_operation_and_cancelling_twice_is_flagged() -> None:
    make = EventMaker()
    events = [
        _min_delay(make, 0, 60),
        _scheduled(make, 60),
        make("NetworkTimelock", "Cancelled", id=OPERATION),
        make("NetworkTimelock", "Cancelled", id=OPERATION),
    ]
    state = replay(events, _state())
    assert state.timelock_operations[0].state == "cancelled"
    assert [a.problem for a in state.anomalies] == [
        f"operation {OPERATION} cancelled while cancelled"
    ]
    assert state.admin_actions[-1].description.startswith("cancelled operation 0x0f0f0f0f")


def _grant(make: EventMaker, contract: str, role: str, account: str) -> AuditEvent:
    return make(contract, "RoleGranted", role=role, account=account, sender=DEPLOYER)


def _handover_events(make: EventMaker, *, renounce: bool) -> list[AuditEvent]:
    events = []
    for contract in ("OracleQuorum", "CreditRegistry", "ClearingHouse"):
        events.append(_grant(make, contract, ADMIN_ROLE, DEPLOYER))
        events.append(_grant(make, contract, ADMIN_ROLE, TIMELOCK))
        events.append(_grant(make, contract, PAUSER_ROLE, TIMELOCK))
        if renounce:
            events.append(
                make(contract, "RoleRevoked", role=ADMIN_ROLE, account=DEPLOYER, sender=DEPLOYER)
            )
    return events


def test_handover_passes_once_the_deployer_renounced_its_admin_roles() -> None:
    make = EventMaker()
    events = _handover_events(make, renounce=True)
    state = replay(events, _state())
    manifest = _manifest(created_at_block=events[-1].ref.block)
    assert check_handover(NO_READER, CONTRACTS, state, manifest).passed


def test_handover_fails_while_the_deployer_keeps_an_admin_role() -> None:
    make = EventMaker()
    events = _handover_events(make, renounce=False)
    state = replay(events, _state())
    manifest = _manifest(created_at_block=events[-1].ref.block)
    check = check_handover(NO_READER, CONTRACTS, state, manifest)
    assert not check.passed and len(check.evidence) == 3
    assert check.message.startswith(
        f"3 handover problems; first: the deployer {to_checksum_address(DEPLOYER)} still holds "
        "DEFAULT_ADMIN_ROLE on "
        "OracleQuorum after the deployment's last call"
    )


def test_handover_fails_without_a_timelock_in_the_deployment() -> None:
    addresses = {k: v for k, v in ADDRESSES.items() if k != "NetworkTimelock"}
    contracts = AuditedContracts(addresses=addresses, codecs={}, abis={}, deploy_blocks={})
    check = check_handover(NO_READER, contracts, _state(), _manifest())
    assert not check.passed
    assert "no NetworkTimelock in the deployment" in check.message


def test_a_batch_is_one_operation_executed_in_one_transaction() -> None:
    make = EventMaker()
    pause = "0x" + keccak(text="pause()")[:4].hex()
    house = ADDRESSES["ClearingHouse"]
    common = {"id": OPERATION, "value": 0}
    scheduled = {**common, "predecessor": "0x" + "00" * 32, "delay": 60}
    events = [
        _min_delay(make, 0, 60),
        make(
            "NetworkTimelock",
            "CallScheduled",
            at=1_000,
            index=0,
            target=QUORUM,
            data=_set_signers_calldata(),
            **scheduled,
        ),
        make(
            "NetworkTimelock",
            "CallScheduled",
            at=1_000,
            same_tx=True,
            index=1,
            target=house,
            data=pause,
            **scheduled,
        ),
        _signer_set(make),
        make(
            "NetworkTimelock",
            "CallExecuted",
            at=1_060,
            same_tx=True,
            index=0,
            target=QUORUM,
            data=_set_signers_calldata(),
            **common,
        ),
        make("ClearingHouse", "Paused", same_tx=True, account=TIMELOCK),
        make(
            "NetworkTimelock",
            "CallExecuted",
            at=1_060,
            same_tx=True,
            index=1,
            target=house,
            data=pause,
            **common,
        ),
    ]
    state = replay(events, _state())
    assert state.anomalies == []
    (operation,) = state.timelock_operations
    assert [call.index for call in operation.calls] == [0, 1]
    assert all(call.executed is not None for call in operation.calls)
    assert operation.calls[1].description == "ClearingHouse: call " + pause + " (4 bytes)"
    assert check_admin_via_timelock(state, CONTRACTS, _manifest()).passed
