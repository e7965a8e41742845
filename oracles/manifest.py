"""The deployment manifest: deployments/<chain-id>.json.

It records where each contract lives on one chain and exactly how it was built
(compiler version, settings, source hashes), so the node can tell on start whether
the deployed code is still the code it would build, and an auditor can match
bytecode to published source. A replaced manifest is kept as
deployments/<chain-id>.<created-at-block>.json.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from eth_typing import ChecksumAddress
from pydantic import BaseModel, ConfigDict
from web3 import Web3

from node_api.kernel.errors import ConfigurationError
from oracles.compiler import CompiledContracts, CompilerSettings


class DeployedContract(BaseModel):
    """One deployed contract. `constructor_args` is the ABI-encoded tail of the
    creation input (0x-prefixed hex, "0x" when there are none)."""

    model_config = ConfigDict(frozen=True)

    address: str
    deploy_block: int
    deploy_tx: str
    constructor_args: str
    external: bool = False
    """An existing contract the network uses (a production settlement asset), not deployed
    by the plan: only its address is recorded and checked to hold code."""


class PostDeployRecord(BaseModel):
    """One call the plan made after deploying (a role grant, a parameter), as sent."""

    model_config = ConfigDict(frozen=True)

    contract: str
    function: str
    calldata: str
    tx: str
    block: int


class Manifest(BaseModel):
    """Everything deployed on one chain by one run of a deploy plan.

    `created_at_block` is the block of the plan's last transaction: from there on
    the deployment is complete.
    """

    model_config = ConfigDict(frozen=True)

    chain_id: int
    contracts: dict[str, DeployedContract]
    post_deploy_calls: list[PostDeployRecord] = []
    compiler_version: str
    settings: CompilerSettings
    source_hashes: dict[str, str]
    deployer: str
    created_at_block: int

    def get_address(self, name: str) -> ChecksumAddress:
        """The address of contract `name` (KeyError when the plan did not deploy it)."""
        return Web3.to_checksum_address(self.contracts[name].address)

    def has_same_build(self, compiled: CompiledContracts) -> bool:
        """True when `compiled` comes from the same compiler, settings and sources."""
        return (
            self.compiler_version == compiled.compiler_version
            and self.settings == compiled.settings
            and self.source_hashes == compiled.source_hashes
        )


def get_manifest_path(manifest_dir: Path, chain_id: int) -> Path:
    return manifest_dir / f"{chain_id}.json"


def read_manifest(manifest_dir: Path, chain_id: int) -> Manifest | None:
    """The current manifest for `chain_id`, or None when there is none."""
    path = get_manifest_path(manifest_dir, chain_id)
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValueError:
        raise ConfigurationError(f"{path} is not a valid deployment manifest") from None


def write_manifest(manifest_dir: Path, manifest: Manifest) -> Path:
    """Make `manifest` current for its chain; an existing one moves to history first."""
    manifest_dir.mkdir(parents=True, exist_ok=True)
    path = get_manifest_path(manifest_dir, manifest.chain_id)
    previous = read_manifest(manifest_dir, manifest.chain_id)
    if previous is not None:
        os.replace(path, _get_history_path(manifest_dir, previous))
    with tempfile.NamedTemporaryFile(
        "w", dir=manifest_dir, delete=False, suffix=".tmp", encoding="utf-8"
    ) as file:
        file.write(manifest.model_dump_json(indent=2) + "\n")
    os.replace(file.name, path)
    return path


def _get_history_path(manifest_dir: Path, manifest: Manifest) -> Path:
    """deployments/<chain>.<block>.json; a numbered suffix if a reset chain reused the block."""
    stem = f"{manifest.chain_id}.{manifest.created_at_block}"
    path = manifest_dir / f"{stem}.json"
    counter = 2
    while path.exists():
        path = manifest_dir / f"{stem}.{counter}.json"
        counter += 1
    return path
