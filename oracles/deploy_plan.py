"""The network's deployment plan: which contracts, in which order, with which roles.

Deploys SettlementToken, OracleQuorum, CreditRegistry, ClearingHouse and the
NetworkTimelock, then wires them: the relayer may write agreements and register partners,
both report-consuming contracts may consume quorum reports, and the timelock gets the
admin and pauser roles of the quorum, the registry and the clearing house. Last, the
deployer renounces its own admin roles there, so from then on a signer-set change, a role
grant, a dispute resolution or a pause is scheduled on the timelock, visible to every
partner for the configured delay, before it can run. (The dev SettlementToken keeps the
deployer as its admin and minter: it exists on local chains only.) Test mocks
(tests/fixtures/contracts/) are never part of a plan.
"""

from __future__ import annotations

from typing import Any, Final

from node_api.kernel.chain import AccessRole, ContractName
from oracles.deploy import (
    ArgsFn,
    DeployContext,
    DeployStep,
    ExistingContract,
    PlanItem,
    PostDeployCall,
)


def _token_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """SettlementToken(admin)."""
    return [context.admin]


def _quorum_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """OracleQuorum(admin, signers, threshold)."""
    return [context.admin, list(context.signers), context.threshold]


def _registry_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """CreditRegistry(admin, quorum)."""
    return [context.admin, addresses[ContractName.ORACLE_QUORUM]]


def _clearing_house_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """ClearingHouse(admin, quorum, token, disputeWindowSeconds, fundingWindowSeconds)."""
    return [
        context.admin,
        addresses[ContractName.ORACLE_QUORUM],
        addresses[ContractName.SETTLEMENT_TOKEN],
        context.dispute_window_s,
        context.funding_window_s,
    ]


def _timelock_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """NetworkTimelock(minDelay, proposers, executors, cancellers)."""
    return [
        context.governance_delay_s,
        list(context.proposers),
        list(context.executors),
        list(context.cancellers),
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


def _renounce_by_admin(role: bytes) -> ArgsFn:
    """renounceRole(role, admin): the deployer gives up `role`."""

    def args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
        return [role, context.admin]

    return args


def _grant_to_contract(role: bytes, contract: str) -> ArgsFn:
    """grantRole(role, <address of the deployed `contract`>)."""

    def args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
        return [role, addresses[contract]]

    return args


GOVERNED: Final = (
    ContractName.ORACLE_QUORUM,
    ContractName.CREDIT_REGISTRY,
    ContractName.CLEARING_HOUSE,
)
"""The contracts whose admin and pauser roles the NetworkTimelock holds."""


def _hand_over_to_timelock() -> tuple[PlanItem, ...]:
    """Grant the timelock admin and pauser on every governed contract, then renounce the
    deployer's admin role there (last, since granting needs it)."""
    grants = tuple(
        PostDeployCall(
            contract,
            "grantRole",
            _grant_to_contract(role.hash, ContractName.NETWORK_TIMELOCK),
        )
        for contract in GOVERNED
        for role in (AccessRole.DEFAULT_ADMIN_ROLE, AccessRole.PAUSER_ROLE)
    )
    renounces = tuple(
        PostDeployCall(
            contract, "renounceRole", _renounce_by_admin(AccessRole.DEFAULT_ADMIN_ROLE.hash)
        )
        for contract in GOVERNED
    )
    return grants + renounces


DEFAULT_PLAN: Final[tuple[PlanItem, ...]] = (
    DeployStep(ContractName.SETTLEMENT_TOKEN, _token_args),
    DeployStep(ContractName.ORACLE_QUORUM, _quorum_args),
    DeployStep(ContractName.CREDIT_REGISTRY, _registry_args),
    DeployStep(ContractName.CLEARING_HOUSE, _clearing_house_args),
    DeployStep(ContractName.NETWORK_TIMELOCK, _timelock_args),
    PostDeployCall(
        ContractName.CREDIT_REGISTRY, "grantRole", _grant_to_relayer(AccessRole.RELAYER_ROLE.hash)
    ),
    PostDeployCall(
        ContractName.CLEARING_HOUSE, "grantRole", _grant_to_relayer(AccessRole.RELAYER_ROLE.hash)
    ),
    PostDeployCall(
        ContractName.ORACLE_QUORUM,
        "grantRole",
        _grant_to_contract(AccessRole.CONSUMER_ROLE.hash, ContractName.CLEARING_HOUSE),
    ),
    PostDeployCall(
        ContractName.ORACLE_QUORUM,
        "grantRole",
        _grant_to_contract(AccessRole.CONSUMER_ROLE.hash, ContractName.CREDIT_REGISTRY),
    ),
    PostDeployCall(
        ContractName.SETTLEMENT_TOKEN, "grantRole", _grant_to_admin(AccessRole.PAUSER_ROLE.hash)
    ),
    *_hand_over_to_timelock(),
)


def _existing_token(context: DeployContext) -> str:
    assert context.settlement_token is not None
    return context.settlement_token


def network_plan(context: DeployContext) -> tuple[PlanItem, ...]:
    """`DEFAULT_PLAN`, or on a network with its own settlement asset
    (`context.settlement_token`) the same plan using that ERC-20 instead of deploying the
    dev SettlementToken (which has a mint role and so exists on local chains only)."""
    if context.settlement_token is None:
        return DEFAULT_PLAN
    plan: list[PlanItem] = []
    for item in DEFAULT_PLAN:
        if isinstance(item, DeployStep) and item.name == ContractName.SETTLEMENT_TOKEN:
            plan.append(ExistingContract(ContractName.SETTLEMENT_TOKEN, _existing_token))
        elif isinstance(item, PostDeployCall) and item.contract == ContractName.SETTLEMENT_TOKEN:
            continue
        else:
            plan.append(item)
    return tuple(plan)
