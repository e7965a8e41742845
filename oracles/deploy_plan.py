"""The network's deployment plan: which contracts, in which order, with which roles.

Deploys SettlementToken, OracleQuorum, CreditRegistry and ClearingHouse, then wires
them: the relayer may write agreements and register partners, both report-consuming
contracts may consume quorum reports, and the admin may pause every contract. Test
mocks (tests/fixtures/contracts/) are never part of a plan.
"""

from __future__ import annotations

from typing import Any, Final

from web3 import Web3

from oracles.deploy import ArgsFn, DeployContext, DeployStep, PlanItem, PostDeployCall

SETTLEMENT_TOKEN: Final = "SettlementToken"
ORACLE_QUORUM: Final = "OracleQuorum"
CREDIT_REGISTRY: Final = "CreditRegistry"
CLEARING_HOUSE: Final = "ClearingHouse"

RELAYER_ROLE: Final = bytes(Web3.keccak(text="RELAYER_ROLE"))
PAUSER_ROLE: Final = bytes(Web3.keccak(text="PAUSER_ROLE"))
CONSUMER_ROLE: Final = bytes(Web3.keccak(text="CONSUMER_ROLE"))
MINTER_ROLE: Final = bytes(Web3.keccak(text="MINTER_ROLE"))
DEFAULT_ADMIN_ROLE: Final = bytes(32)


def _token_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """SettlementToken(admin)."""
    return [context.admin]


def _quorum_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """OracleQuorum(admin, signers, threshold)."""
    return [context.admin, list(context.signers), context.threshold]


def _registry_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """CreditRegistry(admin, quorum)."""
    return [context.admin, addresses[ORACLE_QUORUM]]


def _clearing_house_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """ClearingHouse(admin, quorum, token, disputeWindowSeconds)."""
    return [
        context.admin,
        addresses[ORACLE_QUORUM],
        addresses[SETTLEMENT_TOKEN],
        context.dispute_window_s,
    ]


def _grant_to_relayer(role: bytes) -> ArgsFn:
    """grantRole(role, relayer)."""

    def args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
        return [role, context.relayer]

    return args


def _grant_to_admin(role: bytes) -> ArgsFn:
    """grantRole(role, admin)."""

    def args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
        return [role, context.admin]

    return args


def _grant_to_contract(role: bytes, contract: str) -> ArgsFn:
    """grantRole(role, <address of the deployed `contract`>)."""

    def args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
        return [role, addresses[contract]]

    return args


DEFAULT_PLAN: Final[tuple[PlanItem, ...]] = (
    DeployStep(SETTLEMENT_TOKEN, _token_args),
    DeployStep(ORACLE_QUORUM, _quorum_args),
    DeployStep(CREDIT_REGISTRY, _registry_args),
    DeployStep(CLEARING_HOUSE, _clearing_house_args),
    PostDeployCall(CREDIT_REGISTRY, "grantRole", _grant_to_relayer(RELAYER_ROLE)),
    PostDeployCall(CLEARING_HOUSE, "grantRole", _grant_to_relayer(RELAYER_ROLE)),
    PostDeployCall(ORACLE_QUORUM, "grantRole", _grant_to_contract(CONSUMER_ROLE, CLEARING_HOUSE)),
    PostDeployCall(ORACLE_QUORUM, "grantRole", _grant_to_contract(CONSUMER_ROLE, CREDIT_REGISTRY)),
    PostDeployCall(SETTLEMENT_TOKEN, "grantRole", _grant_to_admin(PAUSER_ROLE)),
    PostDeployCall(ORACLE_QUORUM, "grantRole", _grant_to_admin(PAUSER_ROLE)),
    PostDeployCall(CREDIT_REGISTRY, "grantRole", _grant_to_admin(PAUSER_ROLE)),
    PostDeployCall(CLEARING_HOUSE, "grantRole", _grant_to_admin(PAUSER_ROLE)),
)
