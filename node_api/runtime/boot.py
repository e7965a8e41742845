"""Bringing a node up: database, chain, contracts, API and background workers.

`creditnet up` is the composition root; this module does its steps so they can be
tested one by one and reused by `creditnet deploy`, the demo and the benchmarks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConfigurationError
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.runtime.settlement_wiring import top_up_dev_treasury
from oracles.anvil import AnvilProcess, is_port_busy
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts, compile_contracts
from oracles.deploy import ANYONE, DeployContext, ensure_deployed
from oracles.deploy_plan import network_plan
from oracles.keystore import load_keystore
from oracles.manifest import Manifest
from oracles.signers import load_node_signer_accounts, parse_remote_signers

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


def ensure_business_date(
    settings: Settings, database: Database, *, first: date | None, today: date
) -> date | None:
    """The node's business date, setting the first one when there is none: `first` if
    given (`creditnet up --business-date`), else on a dev node `today` (the day it was
    first started; the caller reads the wall clock). A prod node without one is refused
    with the way to set it; a test node is left without one."""
    with database.engine.connect() as conn:
        current = fetch_business_date(conn)
    if current is not None:
        return current
    if first is None and settings.env == "prod":
        raise ConfigurationError(
            "the node's business date is not set and a prod node never picks one itself; "
            "start it with creditnet up --business-date YYYY-MM-DD (the first open day), "
            f"or set it with creditnet business-date --set YYYY-MM-DD --data-dir "
            f"{settings.data_dir}",
            field="business_date",
        )
    if first is None and settings.env != "dev":
        return None
    as_of = first or today
    with database.engine.begin() as conn:
        set_business_date(conn, as_of)
    log.info("business date set", extra={"as_of": as_of.isoformat(), "reason": "first start"})
    return as_of


def check_api_port(settings: Settings) -> None:
    if is_port_busy(settings.host, settings.port):
        raise ConfigurationError(
            f"port {settings.port} is busy; choose another with --port or CREDITNET_PORT",
            field="port",
        )


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
        signers = load_node_signer_accounts(settings)
        context = DeployContext(
            admin=deployer.address,
            relayer=relayer.address,
            signers=tuple(sorted([*(s.address for s in signers), *_remote_signers(settings)])),
            threshold=settings.signer_threshold,
            dispute_window_s=settings.dispute_window_s,
            funding_window_s=settings.funding_window_s,
            governance_delay_s=settings.governance_delay_s,
            extra_proposers=_addresses(settings.governance_proposers, "governance_proposers"),
            executors=_addresses(settings.governance_executors, "governance_executors")
            or (ANYONE,),
            cancellers=_addresses(settings.governance_cancellers, "governance_cancellers"),
            settlement_token=_settlement_token(settings, chain_id),
        )
        manifest = ensure_deployed(
            w3, compiled, deployer, network_plan(context), settings.deployments_dir, context=context
        )
        # dev/test on the local anvil only: the lender's treasury gets settlement tokens
        top_up_dev_treasury(settings, w3, deployer, manifest, compiled)
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


def _settlement_token(settings: Settings, chain_id: int) -> str | None:
    """The configured settlement asset; None (deploy the dev token) only on a dev chain."""
    (token,) = _addresses(settings.settlement_token, "settlement_token") or (None,)
    if token is None and not (chain_id == ANVIL_CHAIN_ID and settings.env in ("dev", "test")):
        raise ConfigurationError(
            f"chain {chain_id} needs CREDITNET_SETTLEMENT_TOKEN, the address of the ERC-20 "
            "settlement asset (the dev token with a mint role exists on local chains only)",
            field="settlement_token",
        )
    return token


def _remote_signers(settings: Settings) -> list[str]:
    """The addresses of the configured remote signers (each must be named for the quorum)."""
    remote = parse_remote_signers(settings.remote_signers)
    if any(address is None for _url, address in remote):
        raise ConfigurationError(
            "CREDITNET_REMOTE_SIGNERS must name each signer's address for the deployment's "
            "quorum: 0xADDRESS=https://signer.example,...",
            field="remote_signers",
        )
    return [str(address) for _url, address in remote]


def _addresses(listed: str, name: str) -> tuple[str, ...]:
    """Checksummed addresses of a comma-separated setting (empty: none)."""
    items = [item.strip() for item in listed.split(",") if item.strip()]
    if not all(Web3.is_address(item) for item in items):
        raise ConfigurationError(f"CREDITNET_{name.upper()} must list 0x addresses", field=name)
    return tuple(Web3.to_checksum_address(item) for item in items)


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
