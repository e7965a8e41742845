"""NetworkTimelock: the admin cannot change the oracle signers without announcing it.

An OracleQuorum whose admin role is held by the timelock (and renounced by the deployer)
accepts a new signer set only through `schedule` then, once the delay has passed,
`execute`. Every partner sees the pending change in `CallScheduled` for the whole delay,
and a funding partner holding only the canceller role can `cancel` it (but not schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from tests.unit.contracts.helpers import (
    DEFAULT_ADMIN_ROLE,
    PAUSER_ROLE,
    Network,
    advance_time,
    deploy,
    events,
    expect_revert,
    send,
)

pytestmark = pytest.mark.chain

MIN_DELAY_S = 2 * 86_400
PROPOSER_ROLE = bytes(Web3.keccak(text="PROPOSER_ROLE"))
EXECUTOR_ROLE = bytes(Web3.keccak(text="EXECUTOR_ROLE"))
CANCELLER_ROLE = bytes(Web3.keccak(text="CANCELLER_ROLE"))
NO_PREDECESSOR = bytes(32)
SALT = Web3.keccak(text="rotate signers 2026-11")
READY_STATE = (1 << 2).to_bytes(32, "big")  # OperationState.Ready as TimelockController encodes it


@dataclass
class Governed:
    """A timelock, a quorum it administers, and who plays which part."""

    timelock: Contract
    quorum: Contract
    lender: LocalAccount  # proposer A, the quorum's former admin
    funding_partner: LocalAccount  # proposer B
    executor: LocalAccount
    new_signers: list[str]

    def operation(self, salt: bytes = SALT) -> list[Any]:
        """(target, value, data, predecessor, salt) of `setSigners(new_signers, 2)`."""
        data = self.quorum.encode_abi("setSigners", args=[self.new_signers, 2])
        return [self.quorum.address, 0, data, NO_PREDECESSOR, salt]

    def operation_id(self, salt: bytes = SALT) -> bytes:
        return bytes(self.timelock.functions.hashOperation(*self.operation(salt)).call())


@pytest.fixture
def governed(net: Network) -> Governed:
    """NetworkTimelock(2 days, proposers [lender], executors [executor], cancellers [funding
    partner]) and an OracleQuorum whose admin and pauser roles it holds, the deployer (the
    lender) having renounced its own."""
    lender, funding_partner, executor = net.admin, net.partners[1], net.relayer
    timelock = deploy(
        net,
        lender,
        net.compiled.artifact("NetworkTimelock"),
        MIN_DELAY_S,
        [lender.address],
        [executor.address],
        [funding_partner.address],
    )
    signers = [account.address for account in net.signers]
    quorum = deploy(net, lender, net.compiled.artifact("OracleQuorum"), lender.address, signers, 2)
    send(net, lender, quorum, "grantRole", DEFAULT_ADMIN_ROLE, timelock.address)
    send(net, lender, quorum, "grantRole", PAUSER_ROLE, timelock.address)
    send(net, lender, quorum, "renounceRole", DEFAULT_ADMIN_ROLE, lender.address)
    new_signers: list[str] = [net.signers[0].address, net.outsider.address, net.partners[3].address]
    return Governed(timelock, quorum, lender, funding_partner, executor, new_signers)


def signer_set(g: Governed) -> tuple[list[str], int, int]:
    quorum = g.quorum.functions
    return quorum.signers().call(), quorum.threshold().call(), quorum.signerSetVersion().call()


def test_the_timelock_has_no_admin_account_and_the_funding_partner_may_only_cancel(
    net: Network, governed: Governed
) -> None:
    has_role = governed.timelock.functions.hasRole
    assert governed.timelock.functions.getMinDelay().call() == MIN_DELAY_S
    assert has_role(DEFAULT_ADMIN_ROLE, governed.timelock.address).call()
    assert not has_role(DEFAULT_ADMIN_ROLE, governed.lender.address).call()
    assert has_role(PROPOSER_ROLE, governed.lender.address).call()
    assert has_role(CANCELLER_ROLE, governed.lender.address).call()
    assert not has_role(PROPOSER_ROLE, governed.funding_partner.address).call()
    assert has_role(CANCELLER_ROLE, governed.funding_partner.address).call()
    assert has_role(EXECUTOR_ROLE, governed.executor.address).call()
    assert not governed.quorum.functions.hasRole(DEFAULT_ADMIN_ROLE, net.admin.address).call()


def test_the_admin_cannot_change_signers_without_the_timelock_delay(
    net: Network, governed: Governed
) -> None:
    g = governed
    before = signer_set(g)

    # The former admin can no longer act directly, nor take its role back.
    expect_revert(
        net,
        g.lender,
        g.quorum,
        "setSigners",
        [g.new_signers, 2],
        "AccessControlUnauthorizedAccount",
        [g.lender.address, DEFAULT_ADMIN_ROLE],
    )
    expect_revert(
        net,
        g.lender,
        g.quorum,
        "grantRole",
        [DEFAULT_ADMIN_ROLE, g.lender.address],
        "AccessControlUnauthorizedAccount",
        [g.lender.address, DEFAULT_ADMIN_ROLE],
    )

    # Nor can it schedule with less than the minimum delay, or execute before it ends.
    expect_revert(
        net,
        g.lender,
        g.timelock,
        "schedule",
        [*g.operation(), MIN_DELAY_S - 1],
        "TimelockInsufficientDelay",
        [MIN_DELAY_S - 1, MIN_DELAY_S],
    )
    receipt = send(net, g.lender, g.timelock, "schedule", *g.operation(), MIN_DELAY_S)
    operation_id = g.operation_id()
    scheduled = events(g.timelock, receipt, "CallScheduled")
    assert len(scheduled) == 1
    assert scheduled[0]["id"] == operation_id
    assert scheduled[0]["target"] == g.quorum.address
    assert scheduled[0]["data"] == bytes.fromhex(g.operation()[2][2:])
    assert scheduled[0]["delay"] == MIN_DELAY_S
    assert g.timelock.functions.isOperationPending(operation_id).call()
    expect_revert(
        net,
        g.executor,
        g.timelock,
        "execute",
        g.operation(),
        "TimelockUnexpectedOperationState",
        [operation_id, READY_STATE],
    )
    advance_time(net, MIN_DELAY_S - 60)
    expect_revert(
        net,
        g.executor,
        g.timelock,
        "execute",
        g.operation(),
        "TimelockUnexpectedOperationState",
        [operation_id, READY_STATE],
    )

    # The funding partner objects and cancels it: even after the delay it cannot run.
    cancelled = send(net, g.funding_partner, g.timelock, "cancel", operation_id)
    assert events(g.timelock, cancelled, "Cancelled") == [{"id": operation_id}]
    advance_time(net, MIN_DELAY_S)
    expect_revert(
        net,
        g.executor,
        g.timelock,
        "execute",
        g.operation(),
        "TimelockUnexpectedOperationState",
        [operation_id, READY_STATE],
    )
    assert signer_set(g) == before

    # Scheduled again and left alone, it runs once the delay has passed.
    send(net, g.lender, g.timelock, "schedule", *g.operation(), MIN_DELAY_S)
    advance_time(net, MIN_DELAY_S)
    executed = send(net, g.executor, g.timelock, "execute", *g.operation())
    assert len(events(g.timelock, executed, "CallExecuted")) == 1
    assert signer_set(g) == (g.new_signers, 2, before[2] + 1)
    assert g.timelock.functions.isOperationDone(operation_id).call()


def test_RevertWhen_someone_without_the_role_schedules_or_executes(
    net: Network, governed: Governed
) -> None:
    g = governed
    expect_revert(
        net,
        net.outsider,
        g.timelock,
        "schedule",
        [*g.operation(), MIN_DELAY_S],
        "AccessControlUnauthorizedAccount",
        [net.outsider.address, PROPOSER_ROLE],
    )
    expect_revert(
        net,
        g.funding_partner,
        g.timelock,
        "schedule",
        [*g.operation(), MIN_DELAY_S],
        "AccessControlUnauthorizedAccount",
        [g.funding_partner.address, PROPOSER_ROLE],
    )
    send(net, g.lender, g.timelock, "schedule", *g.operation(), MIN_DELAY_S)
    advance_time(net, MIN_DELAY_S)
    expect_revert(
        net,
        net.outsider,
        g.timelock,
        "execute",
        g.operation(),
        "AccessControlUnauthorizedAccount",
        [net.outsider.address, EXECUTOR_ROLE],
    )
    expect_revert(
        net,
        net.outsider,
        g.timelock,
        "cancel",
        [g.operation_id()],
        "AccessControlUnauthorizedAccount",
        [net.outsider.address, CANCELLER_ROLE],
    )


def test_the_delay_itself_changes_only_through_the_delay(net: Network, governed: Governed) -> None:
    g = governed
    expect_revert(
        net,
        g.lender,
        g.timelock,
        "updateDelay",
        [0],
        "TimelockUnauthorizedCaller",
        [g.lender.address],
    )


def test_the_former_admin_cannot_pause_the_quorum_directly(
    net: Network, governed: Governed
) -> None:
    expect_revert(
        net,
        governed.lender,
        governed.quorum,
        "pause",
        [],
        "AccessControlUnauthorizedAccount",
        [governed.lender.address, PAUSER_ROLE],
    )
