"""Settlement end to end on anvil: from the books to claimed tokens with three partners,
then the partner's verifier passes (exit 0) and fails on a tampered entries file naming
the entry; a cycle the lender alters after signing is disputed by the partner and never
finalizes. A cycle that fails on-chain is settled again and nobody's money stays locked:
the only debtor never funds, so after the funding deadline the node declares the cycle
defaulted and the books settle the date again under its next attempt's id; an upheld
dispute, resolved only through the NetworkTimelock after its delay, rejects the cycle
and the books re-propose the date from the ledger.

The node's real parts run in-process: the books (SQLite), cycle close with the signer
quorum recomputing from the books, the relayer (proposal, finalization, the lender's
claim) and the indexer (mirror), the partner API, and `creditnet verify`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner
from web3 import Web3
from web3.exceptions import ContractCustomError

from node_api.auth.keys import Role, create_api_key
from node_api.cli import app as cli_app
from node_api.http.app import create_app
from node_api.kernel.chain import ContractName, CycleStatus, EntryKind
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ChainError
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from node_api.runtime.settlement_scheduler import run_settlement_pass
from oracles.abi_codec import DeployedContracts
from oracles.anvil import AnvilProcess
from oracles.chain import LocalAccounts
from oracles.compiler import CompiledContracts
from oracles.governance import TimelockCall, execute, schedule
from oracles.indexer import Indexer, IndexerConfig
from oracles.manifest import Manifest
from oracles.relay_kinds import RelayAccount
from oracles.relayer import Relayer, RelayerConfig
from oracles.signers import LocalSigner, SignerSet, SigningDomain
from oracles.tables import CHAIN_CYCLE_TABLE
from oracles.tx_sender import JsonRpcClient, TxSender
from settlement.cycle_close import close_settlement_cycle, fetch_cycle, settlement_report_sources
from settlement.entries import SettlementEntry
from settlement.funding import SettlementWallet, settle_lender_positions, watch_defaults
from settlement.netting import (
    ClosedCycle,
    CycleState,
    close_cycle,
    get_cycle_attempt,
    get_cycle_date,
)
from settlement.salts import LeafSalts
from settlement.tables import cycle_table, entry_table, event_claim_table, tree_table
from tests.integration.settlement.books import (
    APP,
    BANK_A,
    LENDER,
    Books,
    three_partner_product_data,
)

pytestmark = pytest.mark.chain
sqlite_only = pytest.mark.parametrize("db_backend", ["sqlite"])

DISPUTE_WINDOW_S = 3_600
PAYOUT_INDEX = {"lender": 5, "bank-a": 6, "app": 7}
PEPPER = Settings().api_key_pepper.get_secret_value().encode()
SALTS = LeafSalts.from_settings(Settings())  # the leaf secret of the app under test


@dataclass
class Node:
    """The node's settlement machinery against the test chain."""

    database: Database
    w3: Web3
    relayer: Relayer
    treasury_relayer: Relayer
    indexer: Indexer
    signers: SignerSet
    clearing_house: str
    accounts: LocalAccounts

    def sync(self) -> None:
        """Relay everything due, then index everything mined."""
        self.relayer.run_until_idle(60)
        self.treasury_relayer.run_until_idle(60)
        self.indexer.run_until_caught_up(60)

    def pass_dispute_window(self) -> None:
        self.w3.provider.make_request("evm_increaseTime", [DISPUTE_WINDOW_S + 1])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        with self.database.engine.begin() as conn:  # the relayer's wait for the deadline is over
            conn.execute(
                update(OUTBOX_TABLE)
                .where(OUTBOX_TABLE.c.status == OutboxStatus.PENDING.value)
                .values(available_at=None)
            )

    def wallet(self, ref: str) -> SettlementWallet:
        account = self.accounts.account(PAYOUT_INDEX[ref])
        return SettlementWallet(self.w3, account, self.clearing_house)

    def chain_status(self, cycle_id: int) -> CycleStatus:
        return self.wallet("lender").get_cycle(cycle_id).status


@pytest.fixture
def node(
    database: Database,
    chain: Web3,
    anvil: AnvilProcess,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> Iterator[Node]:
    contracts = DeployedContracts.from_manifest(deployed, compiled)
    sender = TxSender(JsonRpcClient(anvil.rpc_url), dev_accounts.relayer, deployed.chain_id)
    domain = SigningDomain(
        deployed.chain_id,
        deployed.get_address("ClearingHouse"),
        deployed.get_address("CreditRegistry"),
    )
    sources = settlement_report_sources(database, SALTS)
    signers = SignerSet(
        [LocalSigner(account, sources, domain) for account in dev_accounts.signers(3)], 2
    )
    yield Node(
        database=database,
        w3=chain,
        relayer=Relayer(database, sender, contracts, RelayerConfig()),
        treasury_relayer=Relayer(
            database,
            TxSender(
                JsonRpcClient(anvil.rpc_url),
                dev_accounts.account(PAYOUT_INDEX["lender"]),
                deployed.chain_id,
            ),
            contracts,
            RelayerConfig(),
            account=RelayAccount.TREASURY,
        ),
        indexer=Indexer(database, JsonRpcClient(anvil.rpc_url), contracts, IndexerConfig()),
        signers=signers,
        clearing_house=str(deployed.get_address("ClearingHouse")),
        accounts=dev_accounts,
    )


def _books_day(node: Node) -> ClosedCycle:
    """One business day with three partners: purchases through `app` co-funded by bank-a,
    a repayment, end of day; then the cycle is closed and signed."""
    books = Books(node.database)
    payouts = {ref: node.accounts.account(index).address for ref, index in PAYOUT_INDEX.items()}
    books.setup(
        partner_refs=("lender", "bank-a", "app"),
        product=three_partner_product_data(),
        payouts=payouts,
    )
    for line_id, amount_fen in zip(books.line_ids, (120_000, 80_000, 33_333), strict=True):
        books.purchase(line_id, amount_fen)
    books.repay(books.line_ids[0], 50_000)
    cycle = close_settlement_cycle(node.database, books.end_day(), node.signers, salts=SALTS)
    assert cycle.partner_ids == (LENDER, BANK_A, APP)
    return cycle


def _position(cycle: ClosedCycle, partner_id: int) -> int:
    return cycle.net_positions_fen[cycle.partner_ids.index(partner_id)]


def _download_entries(database: Database, tmp_path: Path, partner_id: int, cycle_id: int) -> Path:
    """The partner's NDJSON download from the partner API, saved as a file."""
    with database.session() as session:
        key = create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=partner_id)
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app) as client:
        response = client.get(
            f"/v1/partner/cycles/{cycle_id}/entries.ndjson",
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200
    path = tmp_path / f"entries-{partner_id}-{cycle_id}.ndjson"
    path.write_text(response.text)
    return path


def _verify(node: Node, path: Path, partner_id: int, cycle_id: int, *extra: str, **env: str) -> Any:
    args = [
        "verify",
        "--partner",
        str(partner_id),
        "--cycle",
        str(cycle_id),
        "--file",
        str(path),
        "--rpc",
        node.relayer.sender.rpc.url,
        "--clearing-house",
        node.clearing_house,
        *extra,
    ]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(cli_app, args, env=env)
    finally:  # the command logs to the runner's stream, which closes when it returns
        root.handlers[:] = handlers
        root.setLevel(level)


@sqlite_only
def test_a_cycle_with_three_partners_goes_from_books_to_claimed_tokens_and_verifies(
    node: Node, tmp_path: Path
) -> None:
    cycle = _books_day(node)
    bank_due_fen = -_position(cycle, BANK_A)
    assert bank_due_fen > 0 and _position(cycle, LENDER) > 0 and _position(cycle, APP) > 0

    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.PROPOSED
    node.pass_dispute_window()
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.FINALIZED

    minter = SettlementWallet(node.w3, node.accounts.deployer, node.clearing_house)
    bank = node.wallet("bank-a")
    minter.mint(bank.address, bank_due_fen)
    bank.fund(cycle.cycle_id, BANK_A)
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.FUNDED
    actions = settle_lender_positions(node.database, node.wallet("lender"))
    assert actions.claims_queued == [cycle.cycle_id]
    node.wallet("app").claim(cycle.cycle_id, APP)
    node.sync()

    for ref, partner_id in (("lender", LENDER), ("app", APP)):
        assert bank.fetch_balance_fen(node.wallet(ref).address) == _position(cycle, partner_id)
    assert bank.fetch_balance_fen() == 0
    assert bank.fetch_balance_fen(node.clearing_house) == 0
    on_chain = bank.get_cycle(cycle.cycle_id)
    assert on_chain.claimed_fen == on_chain.funded_fen == on_chain.total_due_fen == bank_due_fen
    with node.database.engine.connect() as conn:
        mirrored = conn.execute(select(CHAIN_CYCLE_TABLE)).mappings().one()
    assert (mirrored["status"], mirrored["claimed_fen"]) == (4, bank_due_fen)

    entries_file = _download_entries(node.database, tmp_path, BANK_A, cycle.cycle_id)
    passed = _verify(node, entries_file, BANK_A, cycle.cycle_id)
    assert passed.exit_code == 0, passed.output
    assert "OK: every entry proves" in passed.output

    lines = entries_file.read_text().splitlines()
    tampered_entry = json.loads(lines[2])
    lines[2] = json.dumps(dict(tampered_entry, amount_fen=tampered_entry["amount_fen"] - 1))
    entries_file.write_text("\n".join(lines))
    failed = _verify(node, entries_file, BANK_A, cycle.cycle_id)
    assert failed.exit_code == 1
    assert f"FAIL entry {tampered_entry['entry_id']} (" in failed.output
    assert "does not prove against the on-chain root" in failed.output


@sqlite_only
def test_when_the_lender_is_a_net_debtor_its_treasury_funds_the_cycle(node: Node) -> None:
    books = Books(node.database)
    payouts = {ref: node.accounts.account(index).address for ref, index in PAYOUT_INDEX.items()}
    books.setup(
        partner_refs=("lender", "bank-a", "app"),
        product=three_partner_product_data(),
        payouts=payouts,
    )
    books.purchase(books.line_ids[0], 100_000)
    close_settlement_cycle(node.database, books.end_day(), node.signers, salts=SALTS)
    books.repay(books.line_ids[0], 60_000)  # day two: principal goes back to bank-a
    cycle = close_settlement_cycle(node.database, books.end_day(), node.signers, salts=SALTS)
    lender_due_fen = -_position(cycle, LENDER)
    assert lender_due_fen > 0 and _position(cycle, BANK_A) > 0

    node.sync()
    node.pass_dispute_window()
    node.sync()
    treasury = node.wallet("lender")
    minter = SettlementWallet(node.w3, node.accounts.deployer, node.clearing_house)
    minter.mint(treasury.address, lender_due_fen)
    actions = settle_lender_positions(node.database, treasury)
    assert actions.fundings_queued == [cycle.cycle_id]
    node.sync()  # the treasury's relayer approves exactly the debt, then funds
    assert node.chain_status(cycle.cycle_id) is CycleStatus.FUNDED
    assert treasury.fetch_balance_fen() == 0
    again = settle_lender_positions(node.database, treasury)
    assert again.fundings_queued == [] and again.claims_queued == []
    node.wallet("bank-a").claim(cycle.cycle_id, BANK_A)
    assert treasury.fetch_balance_fen(node.wallet("bank-a").address) == _position(cycle, BANK_A)


def _alter_after_signing(database: Database, cycle_id: int, partner_id: int) -> int:
    """The lender rewrites a frozen cycle: one of the partner's entries moves 1,000 fen to
    the lender, and the stored tree and root are rebuilt to match. Returns the entry id."""
    with database.engine.begin() as conn:
        rows = conn.execute(
            select(entry_table)
            .where(entry_table.c.cycle_id == cycle_id)
            .order_by(entry_table.c.entry_id)
        ).mappings()
        entries = [
            SettlementEntry(
                cycle_id,
                r["entry_id"],
                r["partner_id"],
                EntryKind(r["kind"]),
                r["amount_fen"],
                SALTS.salt(cycle_id, r["entry_id"], r["partner_id"]),
            )
            for r in rows
        ]
        victim = next(e for e in entries if e.partner_id == partner_id)
        partner_of_lender = next(e for e in entries if e.partner_id == LENDER)
        altered = [
            replace(e, amount_fen=e.amount_fen - 1_000)
            if e is victim
            else replace(e, amount_fen=e.amount_fen + 1_000)
            if e is partner_of_lender
            else e
            for e in entries
        ]
        close = close_cycle(cycle_id, altered)
        for entry in (victim, partner_of_lender):
            new = altered[entry.entry_id - 1]
            conn.execute(
                update(entry_table)
                .where(
                    (entry_table.c.cycle_id == cycle_id)
                    & (entry_table.c.entry_id == entry.entry_id)
                )
                .values(amount_fen=new.amount_fen)
            )
        conn.execute(
            update(tree_table)
            .where(tree_table.c.cycle_id == cycle_id)
            .values(tree_blob=close.tree.to_bytes())
        )
        conn.execute(
            update(cycle_table)
            .where(cycle_table.c.cycle_id == cycle_id)
            .values(entries_root="0x" + close.root.hex())
        )
    return victim.entry_id


@sqlite_only
def test_a_cycle_the_lender_alters_after_signing_is_disputed_and_does_not_finalize(
    node: Node, tmp_path: Path
) -> None:
    cycle = _books_day(node)
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.PROPOSED
    altered_id = _alter_after_signing(node.database, cycle.cycle_id, BANK_A)

    entries_file = _download_entries(node.database, tmp_path, BANK_A, cycle.cycle_id)
    key = node.accounts.account(PAYOUT_INDEX["bank-a"]).key.hex()
    checked = _verify(
        node,
        entries_file,
        BANK_A,
        cycle.cycle_id,
        "--dispute",
        CREDITNET_PARTNER_PRIVATE_KEY=key,
    )
    assert checked.exit_code == 1
    assert f"FAIL entry {altered_id} (" in checked.output
    assert f"disputed cycle {cycle.cycle_id}" in checked.output
    assert node.chain_status(cycle.cycle_id) is CycleStatus.DISPUTED

    node.pass_dispute_window()
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.DISPUTED
    with node.database.engine.connect() as conn:
        mirrored = conn.execute(select(CHAIN_CYCLE_TABLE.c.status)).scalar_one()
        finalization = conn.execute(
            select(OUTBOX_TABLE.c.status, OUTBOX_TABLE.c.last_error).where(
                OUTBOX_TABLE.c.kind == "cycle_finalize"
            )
        ).one()
    assert mirrored == CycleStatus.DISPUTED
    assert finalization.status != OutboxStatus.CONFIRMED
    assert "UnexpectedCycleStatus" in (finalization.last_error or "")


def test_the_scheduler_inside_the_node_closes_and_proposes_finished_dates(tmp_path: Path) -> None:
    import threading
    import time

    from node_api.runtime.settlement_scheduler import run_settlement_scheduler
    from scripts.demo.node import start_demo_node
    from settlement.cycle_close import fetch_cycle
    from settlement.netting import CycleState, get_cycle_id

    node = start_demo_node(tmp_path / "node")
    stop = threading.Event()
    thread = threading.Thread(
        target=run_settlement_scheduler,
        args=(stop, node.settings, node.database, node.chain),
        kwargs={"interval_s": 0.2},
    )
    try:
        books = Books(node.database)
        books.setup()
        books.purchase(books.line_ids[0], 40_000)
        cycle_id = get_cycle_id(books.end_day())
        thread.start()
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline and state is not CycleState.PROPOSED:
            with node.database.engine.connect() as conn:
                cycle = fetch_cycle(conn, cycle_id)
            state = None if cycle is None else cycle.state
            time.sleep(0.2)
        assert state is CycleState.PROPOSED
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(10)
        node.stop()


FUNDING_WINDOW_S = 86_400
GOVERNANCE_DELAY_S = 60


def _advance(node: Node, seconds: int) -> None:
    node.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    node.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _watcher(node: Node) -> SettlementWallet:
    return SettlementWallet(node.w3, node.accounts.relayer, node.clearing_house)


@sqlite_only
def test_an_unfunded_cycle_defaults_at_its_deadline_and_the_books_settle_it_again(
    node: Node,
) -> None:
    cycle = _books_day(node)
    bank_due_fen = -_position(cycle, BANK_A)
    node.sync()
    node.pass_dispute_window()
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.FINALIZED

    assert watch_defaults(node.database, _watcher(node)).defaults_queued == []  # not yet due
    _advance(node, FUNDING_WINDOW_S + 1)
    assert watch_defaults(node.database, _watcher(node)).defaults_queued == [cycle.cycle_id]
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.DEFAULTED
    assert node.wallet("bank-a").fetch_balance_fen(node.clearing_house) == 0

    done = run_settlement_pass(node.database, node.signers, None, _watcher(node), salts=SALTS)
    assert done.voided == [cycle.cycle_id]
    retry_id = cycle.cycle_id + 10**8
    assert (get_cycle_attempt(retry_id), get_cycle_date(retry_id)) == (1, cycle.cycle_date)
    assert done.closed == [retry_id] and retry_id in done.proposed
    with node.database.engine.connect() as conn:
        void = fetch_cycle(conn, cycle.cycle_id)
        retry = fetch_cycle(conn, retry_id)
        claimed_by_void = conn.execute(
            select(event_claim_table).where(event_claim_table.c.cycle_id == cycle.cycle_id)
        ).all()
    assert void is not None and void.state is CycleState.DEFAULTED and claimed_by_void == []
    assert retry is not None and retry.state is CycleState.PROPOSED
    assert retry.partner_ids == cycle.partner_ids
    assert retry.net_positions_fen == cycle.net_positions_fen  # the same obligations
    again = run_settlement_pass(node.database, node.signers, None, _watcher(node), salts=SALTS)
    assert again.voided == [] and again.closed == []

    node.sync()
    node.pass_dispute_window()
    node.sync()
    bank = node.wallet("bank-a")
    SettlementWallet(node.w3, node.accounts.deployer, node.clearing_house).mint(
        bank.address, bank_due_fen
    )
    bank.fund(retry_id, BANK_A)
    node.sync()
    assert node.chain_status(retry_id) is CycleStatus.FUNDED
    with node.database.engine.connect() as conn:
        rows = conn.execute(select(CHAIN_CYCLE_TABLE.c.cycle_id, CHAIN_CYCLE_TABLE.c.status))
        statuses = {int(cycle_id): int(status) for cycle_id, status in rows}
    assert statuses == {cycle.cycle_id: CycleStatus.DEFAULTED, retry_id: CycleStatus.FUNDED}


@sqlite_only
def test_an_upheld_dispute_goes_through_the_timelock_and_the_date_is_proposed_again(
    node: Node, tmp_path: Path, deployed: Manifest, compiled: CompiledContracts
) -> None:
    cycle = _books_day(node)
    node.sync()
    _alter_after_signing(node.database, cycle.cycle_id, BANK_A)
    entries_file = _download_entries(node.database, tmp_path, BANK_A, cycle.cycle_id)
    key = node.accounts.account(PAYOUT_INDEX["bank-a"]).key.hex()
    disputed = _verify(
        node, entries_file, BANK_A, cycle.cycle_id, "--dispute", CREDITNET_PARTNER_PRIVATE_KEY=key
    )
    assert disputed.exit_code == 1
    assert node.chain_status(cycle.cycle_id) is CycleStatus.DISPUTED

    contracts = DeployedContracts.from_manifest(deployed, compiled)
    upheld = TimelockCall(ContractName.CLEARING_HOUSE, "resolveDispute", [cycle.cycle_id, True])
    admin = node.accounts.deployer
    house = node.w3.eth.contract(
        address=contracts.get(ContractName.CLEARING_HOUSE).address,
        abi=compiled.artifact(ContractName.CLEARING_HOUSE).abi,
    )
    with pytest.raises(ContractCustomError) as direct:  # the former admin acting alone
        house.functions.resolveDispute(cycle.cycle_id, True).transact({"from": admin.address})
    revert = contracts.decode_error(bytes.fromhex(str(direct.value.data)[2:]))
    assert revert is not None and revert[0] == "AccessControlUnauthorizedAccount"
    schedule(node.w3, contracts, admin, upheld, GOVERNANCE_DELAY_S)
    with pytest.raises(ChainError):  # TimelockUnexpectedOperationState: the delay runs
        execute(node.w3, contracts, admin, upheld)
    assert node.chain_status(cycle.cycle_id) is CycleStatus.DISPUTED
    _advance(node, GOVERNANCE_DELAY_S + 1)
    execute(node.w3, contracts, admin, upheld)
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.REJECTED

    done = run_settlement_pass(node.database, node.signers, None, _watcher(node), salts=SALTS)
    retry_id = cycle.cycle_id + 10**8
    assert done.voided == [cycle.cycle_id] and retry_id in done.proposed
    with node.database.engine.connect() as conn:
        retry = fetch_cycle(conn, retry_id)
    assert retry is not None
    assert retry.net_positions_fen == cycle.net_positions_fen  # from the ledger, not the edit
    node.sync()
    assert node.chain_status(retry_id) is CycleStatus.PROPOSED
