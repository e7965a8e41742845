"""What the node publishes about its contracts, for partners and auditors: the chain, the
deployed addresses and blocks, the ABIs, the leaf encodings and the on-chain codes.

`GET /v1/contracts` answers it and `creditnet contracts export --out DIR` writes it as
files any Ethereum tool reads (one plain ABI JSON per contract). It holds nothing secret:
no keys, no RPC credentials, no personal data.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from node_api.kernel.chain import (
    AgreementStatus,
    ContractName,
    CycleStatus,
    EntryKind,
    PartnerRole,
)
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from oracles.compiler import AbiEntry, CompiledContracts, compile_contracts
from oracles.manifest import Manifest
from settlement.entries import LEAF_ABI_TYPES
from settlement.salts import PARTNER_SECRET_DOMAIN


class _Documented(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


class CodeOut(_Documented):
    code: int
    name: str


class LeafEncodingOut(_Documented):
    """How one kind of Merkle leaf is built, so anyone can recompute and verify it."""

    name: str
    contract: str
    verify_function: str
    fields: list[str]
    """The leaf's values in order."""
    solidity_types: list[str]
    """The Solidity type of each value, as passed to `StandardMerkleTree.of`."""
    hashing: str
    tree: str
    salt: str | None = None
    """How the leaf's private `salt` value is derived and who is given it (null: the leaf
    has no salt)."""


class DeployedContractOut(_Documented):
    name: str
    address: str | None
    """Null while the node is attached to no chain."""
    deploy_block: int | None
    deploy_tx: str | None
    abi: list[AbiEntry]


class ContractsOut(_Documented):
    chain_id: int | None
    """Null while the node is attached to no chain."""
    deployment_block: int | None
    """The block from which the whole deployment is in place (its last transaction)."""
    compiler_version: str
    abi_matches_deployment: bool | None
    """Whether the ABIs come from the very sources the deployment was built from (null
    without a deployment)."""
    contracts: list[DeployedContractOut]
    leaves: list[LeafEncodingOut]
    entry_kinds: list[CodeOut] = Field(description="The `uint8 kind` of settlement leaves.")
    agreement_statuses: list[CodeOut]
    cycle_statuses: list[CodeOut]
    partner_roles: list[CodeOut]


DOUBLE_KECCAK: Final = "keccak256(bytes.concat(keccak256(abi.encode(values))))"
OPENZEPPELIN_TREE: Final = (
    "OpenZeppelin StandardMerkleTree (sorted pair hashing); verify with the contract's "
    "function or @openzeppelin/merkle-tree"
)
ENTRY_SALT: Final = (
    "salt = HMAC-SHA256(partnerSecret, uint64_be(cycleId) || uint64_be(entryId)), where "
    "partnerSecret = HMAC-SHA256(the node's root secret, "
    f"{PARTNER_SECRET_DOMAIN.decode()!r} || uint32_be(partnerId)). Private to the entry's "
    "partner: the partner API sends it with each of the partner's entries and gives each "
    "partner its own partnerSecret (GET /v1/partner/leaf-secret); the audit export carries "
    "every entry's salt; the root secret never leaves the node."
)
LEAVES: Final = (
    LeafEncodingOut(
        name="settlement_entry",
        contract=ContractName.CLEARING_HOUSE.value,
        verify_function="verifyEntry(uint64,uint64,uint32,uint8,int256,bytes32,bytes32[])",
        fields=["cycleId", "entryId", "partnerId", "kind", "amountFen", "salt"],
        solidity_types=list(LEAF_ABI_TYPES),
        hashing=DOUBLE_KECCAK,
        tree=OPENZEPPELIN_TREE,
        salt=ENTRY_SALT,
    ),
    LeafEncodingOut(
        name="line_state",
        contract=ContractName.CREDIT_REGISTRY.value,
        verify_function="verifyLineBalance(bytes32,uint64,uint256,bytes32[])",
        fields=["agreementId", "cycleId", "outstandingFen"],
        solidity_types=["bytes32", "uint64", "uint256"],
        hashing=DOUBLE_KECCAK,
        tree=OPENZEPPELIN_TREE,
    ),
)


def load_chain_context(settings: Settings) -> ChainContext | None:
    """The chain as the last `creditnet up` recorded it in the data folder, or None."""
    pointer = settings.data_dir / "chain.json"
    if not pointer.exists():
        return None
    info = json.loads(pointer.read_text())
    manifest_path = settings.deployments_dir / f"{info['chain_id']}.json"
    if not manifest_path.exists():
        return ChainContext(rpc_url=info["rpc_url"], chain_id=int(info["chain_id"]))
    return ChainContext.from_manifest_file(info["rpc_url"], manifest_path)


@functools.cache
def compiled_contracts() -> CompiledContracts:
    """The contracts of this node's sources (compiled once per process, cached on disk)."""
    return compile_contracts()


def _codes(values: list[tuple[int, str]]) -> list[CodeOut]:
    return [CodeOut(code=code, name=name) for code, name in values]


def build_contracts(chain: ChainContext | None) -> ContractsOut:
    """Everything published about the contracts of the chain the node is attached to."""
    compiled = compiled_contracts()
    manifest = Manifest.model_validate(chain.manifest) if chain and chain.manifest else None
    contracts = []
    for name in ContractName:
        deployed = manifest.contracts.get(name.value) if manifest else None
        contracts.append(
            DeployedContractOut(
                name=name.value,
                address=deployed.address if deployed else None,
                deploy_block=deployed.deploy_block if deployed else None,
                deploy_tx=deployed.deploy_tx if deployed else None,
                abi=compiled.artifact(name.value).abi,
            )
        )
    return ContractsOut(
        chain_id=chain.chain_id if chain else None,
        deployment_block=manifest.created_at_block if manifest else None,
        compiler_version=compiled.compiler_version,
        abi_matches_deployment=(
            manifest.source_hashes == compiled.source_hashes if manifest else None
        ),
        contracts=contracts,
        leaves=list(LEAVES),
        entry_kinds=_codes([(int(kind), kind.name) for kind in EntryKind]),
        agreement_statuses=_codes(
            [(int(s), s.label) for s in AgreementStatus if s is not AgreementStatus.NONE]
        ),
        cycle_statuses=_codes(
            [(int(s), s.label) for s in CycleStatus if s is not CycleStatus.NONE]
        ),
        partner_roles=_codes([(int(role), role.name.lower()) for role in PartnerRole]),
    )


def export_contracts(published: ContractsOut, out_dir: Path) -> list[Path]:
    """Write `published` as files: `contracts.json` (everything), `abi/<Name>.json` (plain
    ABI arrays), `deployment.json`, `entry-kinds.json` and `leaves.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "abi").mkdir(exist_ok=True)
    files: dict[Path, object] = {
        out_dir / "contracts.json": published.model_dump(mode="json"),
        out_dir / "deployment.json": {
            "chain_id": published.chain_id,
            "deployment_block": published.deployment_block,
            "contracts": {
                item.name: {
                    "address": item.address,
                    "deploy_block": item.deploy_block,
                    "deploy_tx": item.deploy_tx,
                }
                for item in published.contracts
            },
        },
        out_dir / "entry-kinds.json": {item.name: item.code for item in published.entry_kinds},
        out_dir / "leaves.json": [leaf.model_dump(mode="json") for leaf in published.leaves],
    }
    for item in published.contracts:
        files[out_dir / "abi" / f"{item.name}.json"] = item.abi
    for path, content in files.items():
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return sorted(files)
