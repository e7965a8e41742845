"""What a running node needs to settle: its signer set, the chain domain, the lender's
treasury wallet.

The in-process signers are the keystores `creditnet up` registered on the OracleQuorum
(`<data>/keystore/signers`), each recomputing reports from this node's books; with
`CREDITNET_REMOTE_SIGNERS` the remote endpoints sign instead (they keep their own books).
The lender's treasury pays the lender's net debts: on a local anvil development chain it
is dev account 5, elsewhere the keystore `<data>/keystore/treasury.json` (without it the
lender's debts wait for an operator). On the development chain (env dev or test) every
start tops the treasury up to `DEV_TREASURY_FLOAT_FEN` settlement tokens, minted by the
deployer (the token's MINTER_ROLE exists for exactly this); `creditnet treasury --top-up`
mints more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from node_api.kernel.chain import ContractName
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConfigurationError
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts
from oracles.deploy import top_up_tokens
from oracles.keystore import load_keystore
from oracles.manifest import Manifest, read_manifest
from oracles.signers import SignerSet, SigningDomain, build_signer_set
from settlement.cycle_close import settlement_report_sources
from settlement.funding import SettlementWallet
from settlement.line_state import line_state_sources
from settlement.salts import LeafSalts

ANVIL_CHAIN_ID = 31337
LENDER_TREASURY_DEV_INDEX = 5
TREASURY_KEYSTORE = "treasury.json"
DEV_TREASURY_FLOAT_FEN = 1_000_000_000
"""10 million CNY: what a development treasury holds after every start."""


@dataclass(frozen=True)
class ChainTarget:
    """The chain the node settles on: RPC, chain id and the deployment manifest."""

    rpc_url: str
    chain_id: int
    manifest: Manifest

    @property
    def clearing_house(self) -> str:
        return str(self.manifest.get_address(ContractName.CLEARING_HOUSE))

    @property
    def domain(self) -> SigningDomain:
        return SigningDomain(
            self.chain_id,
            self.manifest.get_address(ContractName.CLEARING_HOUSE),
            self.manifest.get_address(ContractName.CREDIT_REGISTRY),
        )


def read_chain_target(settings: Settings) -> ChainTarget:
    """The chain the last `creditnet up` attached to (`<data>/chain.json` and its manifest)."""
    pointer = settings.data_dir / "chain.json"
    if not pointer.exists():
        raise ConfigurationError(
            f"no chain recorded in {settings.data_dir}: run `creditnet up` first", field="data_dir"
        )
    info = json.loads(pointer.read_text())
    rpc_url = settings.rpc_url or str(info["rpc_url"])
    chain_id = int(info["chain_id"])
    manifest = read_manifest(settings.deployments_dir, chain_id)
    if manifest is None:
        raise ConfigurationError(f"no deployment manifest for chain {chain_id}", field="data_dir")
    return ChainTarget(rpc_url, chain_id, manifest)


def build_settlement_signers(
    settings: Settings,
    database: Database,
    domain: SigningDomain,
    accounts: list[LocalAccount] | None = None,
) -> SignerSet:
    """The node's signer set over this database's books (see module doc)."""
    sources = line_state_sources(
        settlement_report_sources(database, LeafSalts.from_settings(settings)), database
    )
    return build_signer_set(settings, sources, domain, accounts)


def is_dev_chain(settings: Settings, chain_id: int) -> bool:
    """A local anvil in dev or test: dev accounts act, settlement tokens may be minted."""
    return chain_id == ANVIL_CHAIN_ID and settings.env in ("dev", "test")


def top_up_dev_treasury(
    settings: Settings,
    w3: Web3,
    minter: LocalAccount,
    manifest: Manifest,
    compiled: CompiledContracts,
) -> int:
    """On the development chain, mint the treasury up to `DEV_TREASURY_FLOAT_FEN`
    (returns the fen minted; 0 elsewhere or when it holds enough)."""
    if not is_dev_chain(settings, manifest.chain_id):
        return 0
    treasury = load_lender_treasury(settings, manifest.chain_id)
    if treasury is None:
        return 0
    token = str(manifest.get_address(ContractName.SETTLEMENT_TOKEN))
    return top_up_tokens(w3, compiled, minter, token, treasury.address, DEV_TREASURY_FLOAT_FEN)


def load_lender_treasury(settings: Settings, chain_id: int) -> LocalAccount | None:
    """The lender treasury's account, or None when none is configured (module doc)."""
    if is_dev_chain(settings, chain_id):
        return LocalAccounts().account(LENDER_TREASURY_DEV_INDEX)
    path: Path = settings.keystore_dir / TREASURY_KEYSTORE
    if not path.exists():
        return None
    return load_keystore(path, settings.keystore_password.get_secret_value())


def build_treasury_wallet(
    settings: Settings, target: ChainTarget, w3: Web3 | None = None
) -> SettlementWallet | None:
    """The lender treasury as a wallet on the ClearingHouse, if configured."""
    account = load_lender_treasury(settings, target.chain_id)
    if account is None:
        return None
    return SettlementWallet(w3 or connect(target.rpc_url), account, target.clearing_house)
