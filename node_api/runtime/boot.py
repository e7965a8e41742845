"""Bringing a node up: database, chain, contracts, API and background workers.

`creditnet up` is the composition root; this module does its steps so they can be
tested one by one and reused by `creditnet deploy`, the demo and the benchmarks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConfigurationError
from node_api.schema.migrate import migrate
from oracles.anvil import AnvilProcess, is_port_busy
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts, compile_contracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.keystore import load_keystore, load_or_create_signers
from oracles.manifest import Manifest

log = logging.getLogger("creditnet.node")

ANVIL_CHAIN_ID = 31337
STATE_INTERVAL_S = 2
"""anvil writes its state file this often, so even a SIGKILL loses at most ~2 s of chain."""


@dataclass
class ChainRuntime:
    """The chain the node runs against, the accounts it acts with and its deployment."""

    w3: Web3
    rpc_url: str
    chain_id: int
    deployer: LocalAccount
    relayer: LocalAccount
    signers: list[LocalAccount]
    compiled: CompiledContracts
    manifest: Manifest
    anvil: AnvilProcess | None = None
    context: ChainContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = ChainContext(
            rpc_url=self.rpc_url,
            chain_id=self.chain_id,
            manifest=self.manifest.model_dump(mode="json"),
        )

    def stop(self) -> None:
        if self.anvil is not None:
            self.anvil.stop()


def prepare_database(settings: Settings) -> Database:
    """Reach the database (one clear line if not) and migrate it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    database.check_reachable()
    migrate(settings.resolved_database_url)
    return database


def check_api_port(settings: Settings) -> None:
    if is_port_busy(settings.host, settings.port):
        raise ConfigurationError(f"port {settings.port} is busy", field="port")


def start_chain(settings: Settings) -> ChainRuntime:
    """Start the embedded anvil or attach to `CREDITNET_RPC_URL`; deploy or verify contracts."""
    compiled = compile_contracts()
    anvil: AnvilProcess | None = None
    if settings.rpc_url:
        rpc_url = settings.rpc_url
    else:
        anvil = AnvilProcess(
            port=settings.anvil_port,
            state_path=(settings.data_dir / "chain" / "state.json").resolve(),
            chain_id=ANVIL_CHAIN_ID,
            state_interval_s=STATE_INTERVAL_S,
        )
        anvil.start()
        rpc_url = anvil.rpc_url
    try:
        w3 = connect(rpc_url)
        chain_id = w3.eth.chain_id
        if settings.chain_id is not None and chain_id != settings.chain_id:
            raise ConfigurationError(
                f"chain at {rpc_url} has id {chain_id}, expected {settings.chain_id}",
                field="chain_id",
            )
        deployer, relayer = _operator_accounts(settings, chain_id)
        signers = load_or_create_signers(
            settings.keystore_dir,
            settings.signer_count,
            settings.keystore_password.get_secret_value(),
        )
        context = DeployContext(
            admin=deployer.address,
            relayer=relayer.address,
            signers=tuple(sorted(s.address for s in signers)),
            threshold=settings.signer_threshold,
            dispute_window_s=settings.dispute_window_s,
        )
        manifest = ensure_deployed(
            w3, compiled, deployer, DEFAULT_PLAN, settings.deployments_dir, context=context
        )
    except BaseException:
        if anvil is not None:
            anvil.stop()
        raise
    _write_chain_pointer(settings.data_dir, rpc_url, chain_id)
    return ChainRuntime(
        w3=w3,
        rpc_url=rpc_url,
        chain_id=chain_id,
        deployer=deployer,
        relayer=relayer,
        signers=signers,
        compiled=compiled,
        manifest=manifest,
        anvil=anvil,
    )


def _operator_accounts(settings: Settings, chain_id: int) -> tuple[LocalAccount, LocalAccount]:
    """Deployer and relayer: anvil's dev accounts on a local dev chain, keystores elsewhere."""
    if chain_id == ANVIL_CHAIN_ID and settings.env in ("dev", "test"):
        accounts = LocalAccounts()
        return accounts.deployer, accounts.relayer
    password = settings.keystore_password.get_secret_value()
    paths = [settings.keystore_dir / "deployer.json", settings.keystore_dir / "relayer.json"]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise ConfigurationError(
            f"chain {chain_id} needs operator keystores in {settings.keystore_dir}: "
            + ", ".join(missing)
        )
    return load_keystore(paths[0], password), load_keystore(paths[1], password)


def _write_chain_pointer(data_dir: Path, rpc_url: str, chain_id: int) -> None:
    """Tell API worker processes which chain and manifest to report."""
    (data_dir / "chain.json").write_text(json.dumps({"rpc_url": rpc_url, "chain_id": chain_id}))
