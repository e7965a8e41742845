"""The demo's node: the embedded default (anvil + SQLite), the HTTP API on a local port,
API keys for each role, and the oracles stepped in the foreground.

It is the same node `creditnet up` runs (database migrated, contracts compiled and
deployed by the default plan, signer keystores, relayer and indexer), started in a
fresh data folder (on free ports unless told which) with the dev dispute window; the demo
moves anvil's clock past it (`pass_dispute_window`) instead of settling with no window,
so it walks a cycle from the books to claimed tokens in seconds and shows each step.
The folder is a node data folder like any other: `creditnet up --data-dir` serves it
afterwards, with the chain state anvil dumped on the way out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update
from web3.types import RPCEndpoint

from node_api.auth.keys import Role, create_api_key
from node_api.cli.serve import ThreadServer
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from node_api.runtime.boot import ChainRuntime, check_api_port, start_chain
from node_api.runtime.node_database import prepare_database
from node_api.runtime.settlement_wiring import LENDER_TREASURY_DEV_INDEX, ChainTarget
from oracles.anvil import pick_free_ports
from oracles.chain import LocalAccounts
from oracles.indexer import Indexer
from oracles.relay_kinds import RelayAccount
from oracles.relayer import Relayer
from oracles.workers import OracleContext, build_indexer, build_relayer
from settlement.funding import SettlementWallet

Answer = dict[str, Any]
"""A JSON object the node answered (parsed, not validated: the demo trusts its own node)."""


@dataclass
class Client:
    """An HTTP client of the node API with one key per role and fresh idempotency keys."""

    base_url: str
    keys: dict[str, str]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def post(self, path: str, body: Any, *, role: str = "app", declines: bool = False) -> Answer:
        """POST and return the JSON answer; with `declines`, a 409 (a business refusal such
        as a limit exceeded) is returned as its problem body instead of raised."""
        headers = {
            "Authorization": f"Bearer {self.keys[role]}",
            "Idempotency-Key": f"demo-{next(self._sequence)}",
        }
        response = self.http.post(self.base_url + path, json=body, headers=headers)
        if response.status_code == 409 and declines:
            problem: Answer = response.json()
            return problem
        if response.status_code >= 400:
            raise ConfigurationError(
                f"POST {path} answered {response.status_code}: {response.text}"
            )
        answer: Answer = response.json()
        return answer

    def get(self, path: str, *, role: str = "admin") -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        response = self.http.get(self.base_url + path, headers=headers)
        if response.status_code >= 400:
            raise ConfigurationError(f"GET {path} answered {response.status_code}: {response.text}")
        return response.json()


@dataclass
class DemoNode:
    """Everything the demo drives."""

    settings: Settings
    database: Database
    chain: ChainRuntime
    server: ThreadServer
    client: Client
    relayer: Relayer
    treasury_relayer: Relayer
    indexer: Indexer
    accounts: LocalAccounts = field(default_factory=LocalAccounts)

    @property
    def target(self) -> ChainTarget:
        return ChainTarget(self.chain.rpc_url, self.chain.chain_id, self.chain.manifest)

    def sync_chain(self) -> None:
        """Relay everything due (partners, proposal, finalization, claims), then index."""
        self.relayer.run_until_idle(120)
        self.treasury_relayer.run_until_idle(120)  # the lender's fundings
        self.indexer.run_until_caught_up(120)

    def pass_dispute_window(self) -> None:
        """Move anvil's clock past the dispute window (a local chain only), and let the
        relayer retry what waited for the deadline now rather than at wall-clock time."""
        w3 = self.chain.w3
        w3.provider.make_request(
            RPCEndpoint("evm_increaseTime"), [self.settings.dispute_window_s + 1]
        )
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        with self.database.engine.begin() as conn:
            conn.execute(
                update(OUTBOX_TABLE)
                .where(OUTBOX_TABLE.c.status == OutboxStatus.PENDING.value)
                .values(available_at=None)
            )

    def wallet(self, account_index: int) -> SettlementWallet:
        account = self.accounts.account(account_index)
        return SettlementWallet(self.chain.w3, account, self.target.clearing_house)

    def minter(self) -> SettlementWallet:
        """The settlement token's admin, who mints deposit tokens on the local network."""
        return SettlementWallet(self.chain.w3, self.accounts.deployer, self.target.clearing_house)

    def add_partner_key(self, name: str, partner_id: int) -> str:
        with self.database.session() as session:
            key = create_api_key(
                session, Role.PARTNER, pepper=_pepper(self.settings), partner_id=partner_id
            )
        self.client.keys[name] = key
        return key

    def stop(self) -> None:
        self.server.stop()
        self.client.http.close()
        self.chain.stop()
        self.database.dispose()


def _pepper(settings: Settings) -> bytes:
    return settings.api_key_pepper.get_secret_value().encode()


def _role_keys(database: Database, settings: Settings) -> dict[str, str]:
    roles = {"admin": Role.LENDER_ADMIN, "app": Role.LENDER_APP, "auditor": Role.AUDITOR}
    with database.session() as session:
        return {
            name: create_api_key(session, role, pepper=_pepper(settings), label=f"demo {name}")
            for name, role in roles.items()
        }


def start_demo_node(
    data_dir: Path, *, port: int | None = None, anvil_port: int | None = None
) -> DemoNode:
    """Migrate, start anvil and deploy, serve the API, build the oracles (module doc).
    Ports not given are picked free."""
    free = iter(pick_free_ports(2))
    settings = Settings(
        env="dev",
        data_dir=data_dir,
        port=port or next(free),
        anvil_port=anvil_port or next(free),
        run_workers=False,
    )
    check_api_port(settings)
    database = prepare_database(settings)
    chain = start_chain(settings)
    try:
        app = create_app(settings, database=database, chain=chain.context)
        server = ThreadServer(app, settings.port, name="demo-api")
        server.start()
        context = OracleContext.from_settings(
            settings, database, chain.rpc_url, chain.manifest, chain.compiled
        )
        client = Client(server.url, _role_keys(database, settings))
        return DemoNode(
            settings=settings,
            database=database,
            chain=chain,
            server=server,
            client=client,
            relayer=build_relayer(context, chain.relayer),
            treasury_relayer=build_relayer(
                context,
                LocalAccounts().account(LENDER_TREASURY_DEV_INDEX),
                role=RelayAccount.TREASURY,
            ),
            indexer=build_indexer(context),
        )
    except BaseException:
        chain.stop()
        raise
