"""DEFAULT_PLAN: the four network contracts, wired with the roles each part needs."""

from __future__ import annotations

import pytest

from oracles.deploy import DeployStep
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.manifest import Manifest
from tests.unit.contracts.helpers import (
    CONSUMER_ROLE,
    DEFAULT_ADMIN_ROLE,
    MINTER_ROLE,
    PAUSER_ROLE,
    RELAYER_ROLE,
    Network,
)

pytestmark = pytest.mark.chain

NETWORK_CONTRACTS = ["SettlementToken", "OracleQuorum", "CreditRegistry", "ClearingHouse"]


def test_plan_deploys_the_four_network_contracts_and_no_test_mock() -> None:
    names = [item.name for item in DEFAULT_PLAN if isinstance(item, DeployStep)]
    assert names == NETWORK_CONTRACTS


def test_manifest_records_every_planned_contract(deployed: Manifest) -> None:
    assert list(deployed.contracts) == NETWORK_CONTRACTS


def test_admin_administers_and_may_pause_every_contract(net: Network) -> None:
    for contract in (net.token, net.quorum, net.registry, net.clearing_house):
        assert contract.functions.hasRole(DEFAULT_ADMIN_ROLE, net.admin.address).call()
        assert contract.functions.hasRole(PAUSER_ROLE, net.admin.address).call()


def test_relayer_writes_agreements_and_partners_but_administers_nothing(net: Network) -> None:
    for contract in (net.registry, net.clearing_house):
        assert contract.functions.hasRole(RELAYER_ROLE, net.relayer.address).call()
        assert not contract.functions.hasRole(DEFAULT_ADMIN_ROLE, net.relayer.address).call()


def test_both_report_consumers_may_consume_quorum_reports(net: Network) -> None:
    consumer = net.quorum.functions.hasRole
    assert consumer(CONSUMER_ROLE, net.clearing_house.address).call()
    assert consumer(CONSUMER_ROLE, net.registry.address).call()
    assert not consumer(CONSUMER_ROLE, net.relayer.address).call()


def test_contracts_are_wired_to_each_other(net: Network) -> None:
    assert net.clearing_house.functions.oracleQuorum().call() == net.quorum.address
    assert net.clearing_house.functions.settlementToken().call() == net.token.address
    assert net.registry.functions.oracleQuorum().call() == net.quorum.address
    assert net.token.functions.hasRole(MINTER_ROLE, net.admin.address).call()
