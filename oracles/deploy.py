"""Deploy the contracts by a plan, or reuse the deployment the manifest records.

A plan is an ordered list of `DeployStep` (deploy the contract of that name) and
`PostDeployCall` (call a function on a deployed contract, e.g. grant a role).
Arguments are callables of the addresses deployed so far and a `DeployContext`, so
a plan is data, not a script. On every start the node calls `ensure_deployed`:
it reuses the recorded deployment only if the build, the plan's arguments and the
code at every address all still match, and otherwise deploys afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils.abi import get_abi_input_types
from web3 import Web3

from node_api.kernel.chain import ContractName
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.money import FEN_ZERO, Fen
from oracles.chain import LocalAccounts, send_transaction
from oracles.compiler import CompiledContracts, ContractArtifact
from oracles.manifest import (
    DeployedContract,
    Manifest,
    PostDeployRecord,
    read_manifest,
    write_manifest,
)

logger = logging.getLogger(__name__)


ANYONE: Final = "0x0000000000000000000000000000000000000000"
"""As a timelock executor: anyone may execute an operation once its delay has passed."""


@dataclass(frozen=True)
class DeployContext:
    """Who runs the deployment and the parameters constructors need.

    `admin` deploys and wires the contracts, then hands their admin and pauser roles to the
    NetworkTimelock and renounces its own; afterwards it is only one of the timelock's
    `proposers` (with `extra_proposers`); `cancellers` (funding partners, auditors) may
    cancel any scheduled change during its delay but never schedule one.
    """

    admin: str
    relayer: str
    signers: tuple[str, ...]
    threshold: int
    dispute_window_s: int
    funding_window_s: int = 86_400
    governance_delay_s: int = 60
    extra_proposers: tuple[str, ...] = ()
    executors: tuple[str, ...] = (ANYONE,)
    cancellers: tuple[str, ...] = ()
    settlement_token: str | None = None
    """An existing ERC-20 settlement asset (1 unit = 1 fen); None deploys the dev token."""

    @property
    def proposers(self) -> tuple[str, ...]:
        """The timelock's proposers (and cancellers): the admin first, then the others."""
        return (self.admin, *(p for p in self.extra_proposers if p != self.admin))

    @classmethod
    def for_development(
        cls,
        accounts: LocalAccounts,
        *,
        signer_count: int = 3,
        threshold: int = 2,
        dispute_window_s: int = 3600,
        funding_window_s: int = 86_400,
        governance_delay_s: int = 60,
    ) -> DeployContext:
        """anvil's dev accounts: admin = account 0, relayer = 1, signers = 2, 3, ..."""
        return cls(
            admin=accounts.deployer.address,
            relayer=accounts.relayer.address,
            signers=tuple(account.address for account in accounts.signers(signer_count)),
            threshold=threshold,
            dispute_window_s=dispute_window_s,
            funding_window_s=funding_window_s,
            governance_delay_s=governance_delay_s,
        )


ArgsFn: TypeAlias = Callable[[dict[str, str], DeployContext], list[Any]]


def no_args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
    """Arguments of a constructor or function that takes none."""
    return []


@dataclass(frozen=True)
class DeployStep:
    """Deploy the compiled contract `name`; `args` gives its constructor arguments
    (ABI values: tuples for structs)."""

    name: str
    args: ArgsFn = no_args


@dataclass(frozen=True)
class PostDeployCall:
    """Call `function` on the deployed contract `contract` with `args`."""

    contract: str
    function: str
    args: ArgsFn = no_args


@dataclass(frozen=True)
class ExistingContract:
    """Use the contract already at the address `address` gives (e.g. a settlement asset)
    under `name`: recorded in the manifest as external, never deployed."""

    name: str
    address: Callable[[DeployContext], str]


PlanItem: TypeAlias = DeployStep | PostDeployCall | ExistingContract


@dataclass(frozen=True)
class Mismatch:
    """A way in which the chain differs from the manifest and the current build.

    `contract` is "*" when the whole deployment is concerned (wrong chain).
    """

    contract: str
    address: str
    reason: str


def _call_args(fn: ArgsFn, addresses: dict[str, str], context: DeployContext, what: str) -> Any:
    """Run a plan's args callable; a reference to a contract not yet deployed is a plan bug."""
    try:
        return fn(dict(addresses), context)
    except KeyError as error:
        raise ConfigurationError(
            f"deploy plan: {what} needs contract {error.args[0]}, which is not deployed before it"
        ) from None


def encode_constructor_args(artifact: ContractArtifact, args: Sequence[Any]) -> HexStr:
    """The ABI-encoded constructor arguments as 0x-hex ("0x" when there are none)."""
    constructor = next((item for item in artifact.abi if item["type"] == "constructor"), None)
    types = get_abi_input_types(constructor) if constructor is not None else []  # type: ignore[arg-type]
    if len(types) != len(args):
        raise ConfigurationError(
            f"deploy plan: {artifact.name} constructor takes {len(types)} arguments, "
            f"got {len(args)}"
        )
    return HexStr("0x" + abi_encode(types, list(args)).hex())


def encode_call(w3: Web3, artifact: ContractArtifact, function: str, args: Sequence[Any]) -> HexStr:
    """The calldata of `function(args)` on a contract with `artifact`'s ABI."""
    contract = w3.eth.contract(abi=artifact.abi)
    return HexStr(contract.encode_abi(function, args=list(args)))


def _deploy_contract(
    w3: Web3,
    compiled: CompiledContracts,
    deployer: LocalAccount,
    step: DeployStep,
    addresses: dict[str, str],
    context: DeployContext,
) -> DeployedContract:
    """Deploy one contract of the plan and record where and how."""
    artifact = compiled.artifact(step.name)
    if artifact.bytecode == "0x":
        raise ConfigurationError(f"deploy plan: {step.name} is abstract or an interface")
    args = _call_args(step.args, addresses, context, f"deploying {step.name}")
    encoded_args = encode_constructor_args(artifact, args)
    receipt = send_transaction(w3, deployer, {"data": HexStr(artifact.bytecode + encoded_args[2:])})
    return DeployedContract(
        address=str(receipt["contractAddress"]),
        deploy_block=receipt["blockNumber"],
        deploy_tx=receipt["transactionHash"].to_0x_hex(),
        constructor_args=encoded_args,
    )


def _make_call(
    w3: Web3,
    compiled: CompiledContracts,
    deployer: LocalAccount,
    call: PostDeployCall,
    addresses: dict[str, str],
    context: DeployContext,
) -> PostDeployRecord:
    """Send one post-deploy call of the plan and record it."""
    what = f"{call.contract}.{call.function}"
    if call.contract not in addresses:
        raise ConfigurationError(f"deploy plan: {what} before {call.contract} is deployed")
    args = _call_args(call.args, addresses, context, what)
    calldata = encode_call(w3, compiled.artifact(call.contract), call.function, args)
    to = Web3.to_checksum_address(addresses[call.contract])
    receipt = send_transaction(w3, deployer, {"to": to, "data": calldata})
    return PostDeployRecord(
        contract=call.contract,
        function=call.function,
        calldata=calldata,
        tx=receipt["transactionHash"].to_0x_hex(),
        block=receipt["blockNumber"],
    )


def deploy_plan(
    w3: Web3,
    compiled: CompiledContracts,
    deployer: LocalAccount,
    plan: Sequence[PlanItem],
    context: DeployContext,
) -> Manifest:
    """Run every step of `plan` on the chain, in order, and describe the result."""
    contracts: dict[str, DeployedContract] = {}
    calls: list[PostDeployRecord] = []
    last_block = int(w3.eth.block_number)
    for item in plan:
        addresses = {name: deployed.address for name, deployed in contracts.items()}
        if isinstance(item, ExistingContract):
            contracts[item.name] = DeployedContract(
                address=Web3.to_checksum_address(item.address(context)),
                deploy_block=0,
                deploy_tx="",
                constructor_args="0x",
                external=True,
            )
        elif isinstance(item, DeployStep):
            contracts[item.name] = _deploy_contract(
                w3, compiled, deployer, item, addresses, context
            )
            last_block = contracts[item.name].deploy_block
        else:
            calls.append(_make_call(w3, compiled, deployer, item, addresses, context))
            last_block = calls[-1].block
    return Manifest(
        chain_id=w3.eth.chain_id,
        contracts=contracts,
        post_deploy_calls=calls,
        compiler_version=compiled.compiler_version,
        settings=compiled.settings,
        source_hashes=compiled.source_hashes,
        deployer=deployer.address,
        created_at_block=last_block,
    )


def plan_matches(
    w3: Web3,
    compiled: CompiledContracts,
    manifest: Manifest,
    plan: Sequence[PlanItem],
    context: DeployContext,
) -> bool:
    """True when running `plan` now would deploy the same contracts with the same
    constructor arguments and make the same calls as `manifest` records."""
    steps = [item for item in plan if isinstance(item, DeployStep | ExistingContract)]
    if [step.name for step in steps] != list(manifest.contracts):
        return False
    calls: list[tuple[str, str, str]] = []
    addresses: dict[str, str] = {}
    for item in plan:
        if isinstance(item, ExistingContract):
            existing = manifest.contracts[item.name]
            if not existing.external or existing.address.lower() != item.address(context).lower():
                return False
            addresses[item.name] = existing.address
        elif isinstance(item, DeployStep):
            args = _call_args(item.args, addresses, context, f"deploying {item.name}")
            encoded_args = encode_constructor_args(compiled.artifact(item.name), args)
            if encoded_args != manifest.contracts[item.name].constructor_args:
                return False
            addresses[item.name] = manifest.contracts[item.name].address
        else:
            args = _call_args(item.args, addresses, context, f"{item.contract}.{item.function}")
            artifact = compiled.artifact(item.contract)
            calls.append(
                (item.contract, item.function, encode_call(w3, artifact, item.function, args))
            )
    recorded = [
        (call.contract, call.function, call.calldata) for call in manifest.post_deploy_calls
    ]
    return calls == recorded


def compute_masked_code(code: bytes, artifact: ContractArtifact) -> bytes:
    """`code` with the artifact's immutable-reference regions zeroed.

    Deployed code differs from the compiler's deployed bytecode exactly in those
    regions (the constructor fills them), so masked codes compare equal iff the
    rest of the code, metadata hash included, is the build's.
    """
    masked = bytearray(code)
    for references in artifact.immutable_references.values():
        for reference in references:
            end = reference.start + reference.length
            if end <= len(masked):
                masked[reference.start : end] = bytes(reference.length)
    return bytes(masked)


def verify_deployment(w3: Web3, compiled: CompiledContracts, manifest: Manifest) -> list[Mismatch]:
    """Every way the chain's code differs from the current build at the recorded addresses."""
    chain_id = w3.eth.chain_id
    if chain_id != manifest.chain_id:
        reason = f"manifest is for chain {manifest.chain_id}, the RPC serves chain {chain_id}"
        return [Mismatch(contract="*", address="", reason=reason)]
    mismatches: list[Mismatch] = []
    for name, deployed in manifest.contracts.items():
        artifact = compiled.artifacts.get(name)
        if artifact is None:
            mismatches.append(Mismatch(name, deployed.address, "not in the current build"))
            continue
        code = bytes(w3.eth.get_code(Web3.to_checksum_address(deployed.address)))
        expected = bytes.fromhex(artifact.deployed_bytecode[2:])
        if not code:
            mismatches.append(Mismatch(name, deployed.address, "no code at the address"))
        elif deployed.external:
            continue  # another party's contract: it must exist, its code is not ours
        elif compute_masked_code(code, artifact) != compute_masked_code(expected, artifact):
            mismatches.append(Mismatch(name, deployed.address, "code differs from the build"))
    return mismatches


def ensure_deployed(
    w3: Web3,
    compiled: CompiledContracts,
    deployer: LocalAccount,
    plan: Sequence[PlanItem],
    manifest_dir: Path,
    *,
    context: DeployContext,
) -> Manifest:
    """The current deployment: the recorded one if still valid, else a fresh one."""
    current = read_manifest(manifest_dir, w3.eth.chain_id)
    if current is not None:
        reasons = _get_reasons_to_redeploy(w3, compiled, current, plan, context)
        if not reasons:
            logger.info("deployment reused", extra={"chain_id": current.chain_id})
            return current
        logger.info("redeploying", extra={"chain_id": current.chain_id, "reasons": reasons})
    manifest = deploy_plan(w3, compiled, deployer, plan, context)
    write_manifest(manifest_dir, manifest)
    logger.info(
        "contracts deployed",
        extra={"chain_id": manifest.chain_id, "block": manifest.created_at_block},
    )
    return manifest


def fetch_token_balance(w3: Web3, compiled: CompiledContracts, token: str, holder: str) -> Fen:
    """`balanceOf(holder)` of the SettlementToken at `token` (fen)."""
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(token),
        abi=compiled.artifact(ContractName.SETTLEMENT_TOKEN).abi,
    )
    return Fen(int(contract.functions.balanceOf(Web3.to_checksum_address(holder)).call()))


def mint_settlement_tokens(
    w3: Web3,
    compiled: CompiledContracts,
    minter: LocalAccount,
    token: str,
    to: str,
    amount_fen: Fen,
) -> str:
    """Mint `amount_fen` SettlementTokens to `to` as `minter` (MINTER_ROLE: the deployer of
    a development deployment). Returns the transaction hash."""
    calldata = encode_call(
        w3,
        compiled.artifact(ContractName.SETTLEMENT_TOKEN),
        "mint",
        [Web3.to_checksum_address(to), amount_fen],
    )
    receipt = send_transaction(
        w3, minter, {"to": Web3.to_checksum_address(token), "data": calldata}
    )
    return str(receipt["transactionHash"].to_0x_hex())


def top_up_tokens(
    w3: Web3,
    compiled: CompiledContracts,
    minter: LocalAccount,
    token: str,
    holder: str,
    floor_fen: int,
) -> Fen:
    """Mint what `holder` lacks of `floor_fen` SettlementTokens (development deployments
    only: production tokens are never minted by the node). Returns the fen minted."""
    missing_fen = Fen(floor_fen - fetch_token_balance(w3, compiled, token, holder))
    if missing_fen <= 0:
        return FEN_ZERO
    mint_settlement_tokens(w3, compiled, minter, token, holder, missing_fen)
    logger.info("development tokens minted", extra={"amount_fen": missing_fen})
    return missing_fen


def _get_reasons_to_redeploy(
    w3: Web3,
    compiled: CompiledContracts,
    manifest: Manifest,
    plan: Sequence[PlanItem],
    context: DeployContext,
) -> list[str]:
    if not manifest.has_same_build(compiled):
        return ["compiler, settings or sources changed"]
    if not plan_matches(w3, compiled, manifest, plan, context):
        return ["deploy plan or its arguments changed"]
    return [f"{m.contract}: {m.reason}" for m in verify_deployment(w3, compiled, manifest)]
