"""DEFAULT_PLAN: the network contracts and their timelock, wired with the roles each part
needs, the admin and pauser roles of the governed contracts held by the timelock alone.

Unlike the other contract tests (which deploy with their own helper), these test the
node's plan itself, so they use the plan's deployment (`deployed_contracts`, deployed with
the `deploy_context` fixture).
"""

from __future__ import annotations

import pytest
from web3 import Web3
from web3.contract import Contract

from oracles.chain import LocalAccounts
from oracles.deploy import DeployContext, DeployStep
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.manifest import Manifest
from tests.unit.contracts.helpers import (
    CONSUMER_ROLE,
    DEFAULT_ADMIN_ROLE,
    MINTER_ROLE,
    PAUSER_ROLE,
    RELAYER_ROLE,
)

pytestmark = pytest.mark.chain

NETWORK_CONTRACTS = [
    "SettlementToken",
    "OracleQuorum",
    "CreditRegistry",
    "ClearingHouse",
    "NetworkTimelock",
]
PROPOSER_ROLE = bytes(Web3.keccak(text="PROPOSER_ROLE"))
EXECUTOR_ROLE = bytes(Web3.keccak(text="EXECUTOR_ROLE"))
CANCELLER_ROLE = bytes(Web3.keccak(text="CANCELLER_ROLE"))
ANYONE = "0x" + "00" * 20


class PlanNet:
    """The plan's deployment, with the same attribute names as the tests' Network."""

    def __init__(
        self, contracts: dict[str, Contract], accounts: LocalAccounts, context: DeployContext
    ) -> None:
        self.token = contracts["SettlementToken"]
        self.quorum = contracts["OracleQuorum"]
        self.registry = contracts["CreditRegistry"]
        self.clearing_house = contracts["ClearingHouse"]
        self.timelock = contracts["NetworkTimelock"]
        self.governed = (self.quorum, self.registry, self.clearing_house)
        self.admin = accounts.deployer
        self.relayer = accounts.relayer
        self.context = context


@pytest.fixture
def net(
    chain: Web3,
    deployed_contracts: dict[str, Contract],
    dev_accounts: LocalAccounts,
    deploy_context: DeployContext,
) -> PlanNet:
    return PlanNet(deployed_contracts, dev_accounts, deploy_context)


def test_plan_deploys_the_network_contracts_and_the_timelock_and_no_test_mock() -> None:
    names = [item.name for item in DEFAULT_PLAN if isinstance(item, DeployStep)]
    assert names == NETWORK_CONTRACTS


def test_manifest_records_every_planned_contract(deployed: Manifest) -> None:
    assert list(deployed.contracts) == NETWORK_CONTRACTS


def test_the_timelock_alone_administers_and_may_pause_the_governed_contracts(
    net: PlanNet,
) -> None:
    for contract in net.governed:
        has_role = contract.functions.hasRole
        assert has_role(DEFAULT_ADMIN_ROLE, net.timelock.address).call()
        assert has_role(PAUSER_ROLE, net.timelock.address).call()
        assert not has_role(DEFAULT_ADMIN_ROLE, net.admin.address).call()
        assert not has_role(PAUSER_ROLE, net.admin.address).call()


def test_the_deployer_keeps_the_dev_token_admin_minter_and_pauser(net: PlanNet) -> None:
    for role in (DEFAULT_ADMIN_ROLE, MINTER_ROLE, PAUSER_ROLE):
        assert net.token.functions.hasRole(role, net.admin.address).call()


def test_the_timelock_has_the_configured_delay_proposers_and_executors(net: PlanNet) -> None:
    has_role = net.timelock.functions.hasRole
    assert net.timelock.functions.getMinDelay().call() == net.context.governance_delay_s
    for proposer in net.context.proposers:
        assert has_role(PROPOSER_ROLE, proposer).call()
        assert has_role(CANCELLER_ROLE, proposer).call()
    for executor in net.context.executors:
        assert has_role(EXECUTOR_ROLE, executor).call()
    assert not has_role(PROPOSER_ROLE, net.relayer.address).call()


def test_the_timelock_administers_itself_and_nobody_else_does(net: PlanNet) -> None:
    has_role = net.timelock.functions.hasRole
    assert has_role(DEFAULT_ADMIN_ROLE, net.timelock.address).call()
    assert not has_role(DEFAULT_ADMIN_ROLE, net.admin.address).call()
    assert not has_role(DEFAULT_ADMIN_ROLE, ANYONE).call()


def test_relayer_writes_agreements_and_partners_but_administers_nothing(net: PlanNet) -> None:
    for contract in (net.registry, net.clearing_house):
        assert contract.functions.hasRole(RELAYER_ROLE, net.relayer.address).call()
        assert not contract.functions.hasRole(DEFAULT_ADMIN_ROLE, net.relayer.address).call()


def test_both_report_consumers_may_consume_quorum_reports(net: PlanNet) -> None:
    consumer = net.quorum.functions.hasRole
    assert consumer(CONSUMER_ROLE, net.clearing_house.address).call()
    assert consumer(CONSUMER_ROLE, net.registry.address).call()
    assert not consumer(CONSUMER_ROLE, net.relayer.address).call()


def test_contracts_are_wired_to_each_other(net: PlanNet) -> None:
    house = net.clearing_house.functions
    assert house.oracleQuorum().call() == net.quorum.address
    assert house.settlementToken().call() == net.token.address
    assert house.disputeWindowDurationSeconds().call() == net.context.dispute_window_s
    assert house.fundingWindowDurationSeconds().call() == net.context.funding_window_s
    assert net.registry.functions.oracleQuorum().call() == net.quorum.address
