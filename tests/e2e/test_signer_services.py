"""A quorum of independent parties: three oracle signers that run as their own services
(`creditnet signer serve`, each with its own data folder, key and database), and a
lender's node (`creditnet up`) that holds one signer key of its own and needs three of the
four signatures.

The three are the funding bank's signer, the sales channel's (`app`) signer, and an
auditor's signer reading the lender's own partner view (the lender is a partner of its
cycles too; the auditor holds the lender partner's read-only key). Each is created with
`creditnet signer init` first, so the node's `CREDITNET_REMOTE_SIGNERS` and the deployed
OracleQuorum name their addresses.

1. Day 1 settles through them: the cycle lands on-chain proposed, with signatures the
   chain's quorum accepted from all three remote signers (recovered from the proposal
   transaction).
2. The attack: while the channel's and the auditor's signers are offline, day 2 closes
   and waits for a quorum (the node's own signer and the bank's are two of three), and
   the bank's signer records its entries. The lender then rewrites the frozen cycle in its
   database, consistently (1,000 fen of the bank's repayment move to the lender: entries,
   tree, root and positions). When the two come back they sign what they see first, the
   node's own signer refuses (its recomputation from the ledger differs), and the bank's
   signer refuses (its entries differ from its record): two signatures of three needed,
   so the bank's refusal decides, nothing is proposed, the cycle stays `closed` in the
   books and absent on-chain.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, select, update
from web3 import HTTPProvider, Web3

from node_api.kernel.chain import EntryKind
from node_api.kernel.config import DEV_LEAF_SALT_SECRET
from node_api.onboarding.identity import make_resident_id
from node_api.risk.fraud_facts import Gender
from oracles.chain import LocalAccounts
from oracles.eip712 import recover_signer
from oracles.signers import CycleReport, SigningDomain
from scripts.applicants import GOOD_PROFILE
from scripts.demo.day import product_data as demo_product_data
from settlement.entries import SettlementEntry
from settlement.netting import close_cycle
from settlement.partner_signer import create_signer_key
from settlement.salts import LeafSalts
from settlement.tables import cycle_table, entry_table, position_table, tree_table

CLI = [sys.executable, "-m", "node_api.cli"]
pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("node_up")]
KEYSTORE_PASSWORD = "partner signer keystore password"
LENDER_ACCOUNT, BANK_ACCOUNT, APP_ACCOUNT = 5, 6, 7
MOVED_FEN = 1_000
T = TypeVar("T")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}
    env.update(extra)
    return env


def wait_for(
    probe: Callable[[], T | None], timeout_s: float, what: str, log: Callable[[], str]
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not {what} within {timeout_s} s:\n{log()}")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now (held together while picked, so no two are
    the same; another process may still take one before it is bound)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class SignerService:
    """One party's `creditnet signer serve` process, its data folder, key and database."""

    def __init__(self, name: str, root: Path, port: int) -> None:
        self.name = name
        self.data_dir = root / f"signer-{name}"
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"signer-{name}.log"
        self.address = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.serve_args: list[str] = []
        self.serve_env: dict[str, str] = {}

    def init(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, "signer", "init", "--data-dir", str(self.data_dir)],
            env=_env(CREDITNET_KEYSTORE_PASSWORD=KEYSTORE_PASSWORD),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start(self, node_url: str, rpc: str, partner_id: int, api_key: str) -> None:
        self.serve_args = [
            *CLI, "signer", "serve", "--data-dir", str(self.data_dir), "--node-url", node_url,
            "--partner-id", str(partner_id), "--port", str(self.port), "--rpc", rpc,
            "--poll-interval", "0.5",
        ]  # fmt: skip
        self.serve_env = _env(
            CREDITNET_SIGNER_API_KEY=api_key, CREDITNET_KEYSTORE_PASSWORD=KEYSTORE_PASSWORD
        )
        self.restart()

    def restart(self) -> None:
        self.process = subprocess.Popen(
            self.serve_args,
            env=self.serve_env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )

    def healthy(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"signer {self.name} exited:\n{_tail(self.log)}"
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).json()["address"] == self.address
        except (httpx.HTTPError, ValueError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of the signer's own database (the party's file; the node never sees it)."""
        path = self.data_dir / "signer.db"
        if not path.exists():
            return []
        with sqlite3.connect(path, timeout=10) as conn:
            return list(conn.execute(sql, args))


class Node:
    """`creditnet up` with one own signer and the remote signers, threshold 3 of 4."""

    def __init__(self, root: Path, signers: list[SignerService], ports: list[int]) -> None:
        self.data_dir = root / "node"
        self.port, self.anvil_port = ports
        self.url = f"http://127.0.0.1:{self.port}"
        self.rpc = f"http://127.0.0.1:{self.anvil_port}"
        self.log = root / "node.log"
        remote = ",".join(f"{signer.address}={signer.url}" for signer in signers)
        self.env = _env(
            CREDITNET_ANVIL_PORT=str(self.anvil_port),
            CREDITNET_SETTLEMENT_INTERVAL_S="0.5",
            CREDITNET_SIGNER_COUNT="1",
            CREDITNET_SIGNER_THRESHOLD="3",
            CREDITNET_REMOTE_SIGNERS=remote,
        )
        self.process = subprocess.Popen(
            [*CLI, "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.admin_key = ""
        self._idempotency = count(1)

    def tail(self) -> str:
        return _tail(self.log)

    def wait(self, probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
        def alive() -> T | None:
            assert self.process.poll() is None, f"node exited:\n{self.tail()}"
            return probe()

        return wait_for(alive, timeout_s, what, self.tail)

    def healthy(self) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.http.get("/v1/health").json()
        except httpx.HTTPError:
            return None
        return body if body.get("status") == "ok" else None

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [*CLI, *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result.stdout

    def post(self, path: str, body: Any) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self.admin_key}",
            "Idempotency-Key": f"signers-e2e-{next(self._idempotency)}",
        }
        response = self.http.post(path, json=body, headers=headers)
        assert response.status_code < 300, f"POST {path}: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str) -> Any:
        response = self.http.get(path, headers={"Authorization": f"Bearer {self.admin_key}"})
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def cycle(self, cycle_id: int) -> dict[str, Any] | None:
        found = [c for c in self.get("/v1/settlement/cycles") if c["cycle_id"] == cycle_id]
        return found[0] if found else None

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Network:
    node: Node
    bank: SignerService
    app: SignerService
    auditor: SignerService
    partners: dict[str, int]
    line_id: int
    first: date
    w3: Web3
    contracts: dict[str, Any]

    @property
    def remote(self) -> list[SignerService]:
        return [self.bank, self.app, self.auditor]

    def contract(self, name: str) -> Any:
        item = next(c for c in self.contracts["contracts"] if c["name"] == name)
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(item["address"]), abi=item["abi"]
        )

    @property
    def domain(self) -> SigningDomain:
        return SigningDomain(
            int(self.contracts["chain_id"]),
            self.contract("ClearingHouse").address,
            self.contract("CreditRegistry").address,
        )


def _product() -> dict[str, Any]:
    """The demo's revolving product without installments and late fee: funded 30 % by the
    lender and 70 % by the bank at 6 %, sold by `app`."""
    data = demo_product_data()
    del data["installment"], data["fees"]
    return {
        **data,
        "product_code": "SIG1",
        "funding_split": [
            {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
            {"partner_id": "bank-sig", "share_ppm": 700_000, "funder_rate_bps": 600},
        ],
        "eligible_channels": ["app"],
    }


def _applicant() -> dict[str, Any]:
    return {
        "product_code": "SIG1",
        "name": "Signer Applicant",
        "id_number": make_resident_id("330106", date(1987, 5, 21), 321, Gender.MALE),
        "phone": "13700000077",
        "monthly_income_fen": 1_500_000,
        "device_id": "signer-e2e-device-1",
        "ip": "198.51.100.77",
        "channel_id": "app",
        "characteristics": dict(GOOD_PROFILE),
    }


def _cycle_id(day: date) -> int:
    return int(day.strftime("%Y%m%d"))


def _chain_status(network: Network, cycle_id: int) -> int:
    return int(network.contract("ClearingHouse").functions.getCycle(cycle_id).call()[1])


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """Signers initialised, the node up with them in its quorum, partners and keys made
    through the node's API, the signers serving, and day 1 settled through them."""
    started = time.monotonic()
    root = tmp_path_factory.mktemp("signers")
    ports = free_ports(5)
    bank, app, auditor = (
        SignerService(name, root, port)
        for name, port in zip(("bank", "app", "auditor"), ports, strict=False)
    )
    inits = [(signer, signer.init()) for signer in (bank, app, auditor)]
    for signer, process in inits:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        signer.address = out.strip().splitlines()[-1]
        assert Web3.is_checksum_address(signer.address)
    node = Node(root, [bank, app, auditor], ports[3:])
    try:
        node.wait(node.healthy, 120, "node healthy")
        node.admin_key = (
            node.cli("keys", "create", "--role", "lender_admin").strip().splitlines()[-1]
        )
        accounts = LocalAccounts()
        partners = {}
        for ref, role, account in (
            ("lender", "lender", LENDER_ACCOUNT),
            ("bank-sig", "funder", BANK_ACCOUNT),
            ("app", "channel", APP_ACCOUNT),
        ):
            body = {
                "ref": ref,
                "role": role,
                "payout_address": accounts.account(account).address,
                "display_name": f"{ref} (signers e2e)",
            }
            partners[ref] = int(node.post("/v1/partners", body)["partner_id"])
        for signer, ref in ((bank, "bank-sig"), (app, "app"), (auditor, "lender")):
            key = node.post("/v1/keys", {"role": "partner", "partner_id": partners[ref]})["key"]
            signer.start(node.url, node.rpc, partners[ref], key)
        node.post("/v1/products", _product())
        decision = node.post("/v1/applications", _applicant())
        assert decision["decision"] == "approved", decision
        line_id = int(decision["credit_line_id"])
        first = date.fromisoformat(node.get("/v1/ledger/business-date")["as_of"])
        purchase = {
            "merchant_id": "m-sig",
            "channel_id": "app",
            "amount_fen": 100_000,
            "currency": "CNY",
        }
        node.post(f"/v1/credit-lines/{line_id}/purchases", purchase)
        for signer in (bank, app, auditor):
            node.wait(lambda s=signer: s.healthy() or None, 90, f"signer {signer.name} serving")
        contracts = node.get("/v1/contracts")
        network = Network(
            node,
            bank,
            app,
            auditor,
            partners,
            line_id,
            first,
            Web3(HTTPProvider(node.rpc)),
            contracts,
        )
        node.cli("eod", "--as-of", first.isoformat())

        def proposed_on_chain() -> dict[str, Any] | None:
            cycle = node.cycle(_cycle_id(first))
            return cycle if cycle and cycle["chain"] is not None else None

        node.wait(proposed_on_chain, 60, f"cycle {_cycle_id(first)} on-chain")
        print(f"signer network up, day 1 on-chain: {time.monotonic() - started:.1f} s")
        yield network
    finally:
        for signer in (bank, app, auditor):
            signer.stop()
        node.stop()


def test_a_cycle_settles_through_three_independent_signer_services(network: Network) -> None:
    node, cycle_id = network.node, _cycle_id(network.first)
    cycle = node.cycle(cycle_id)
    assert cycle is not None and cycle["state"] == "proposed" and cycle["signatures"] >= 3
    assert _chain_status(network, cycle_id) != 0

    quorum = network.contract("OracleQuorum")
    on_chain_signers = set(quorum.functions.signers().call())
    remote = {signer.address for signer in network.remote}
    assert len(on_chain_signers) == 4 and remote <= on_chain_signers
    assert quorum.functions.threshold().call() == 3

    # The proposal the chain accepted carries the three parties' signatures.
    tx = network.w3.eth.get_transaction(cycle["chain"]["proposed_tx"])
    _function, args = network.contract("ClearingHouse").decode_function_input(tx["input"])
    report = CycleReport(
        args["cycleId"],
        bytes(args["entriesRoot"]),
        args["entryCount"],
        tuple(args["partnerIds"]),
        tuple(args["netPositions"]),
    )
    digest = network.domain.digest_cycle_report(report)
    signed_by = {recover_signer(digest, bytes(signature)) for signature in args["signatures"]}
    assert remote <= signed_by
    for signer in network.remote:
        rows = signer.query("SELECT digest FROM signed_report WHERE cycle_id = ?", cycle_id)
        assert rows == [("0x" + digest.hex(),)], signer.name
        assert signer.query("SELECT entry_count FROM recorded_cycle WHERE cycle_id = ?", cycle_id)


def test_a_signer_outside_the_chains_quorum_refuses_to_start(
    network: Network, tmp_path: Path
) -> None:
    outsider = tmp_path / "signer-outsider"
    address = create_signer_key(outsider, KEYSTORE_PASSWORD).address
    bank = network.bank
    result = subprocess.run(
        [*bank.serve_args[: bank.serve_args.index("--data-dir") + 1], str(outsider),
         *bank.serve_args[bank.serve_args.index("--data-dir") + 2 :]],
        env=bank.serve_env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: this signer {address} is not one of the OracleQuorum's 4 signers at "
        f"{network.contract('OracleQuorum').address}"
    )
    assert bank.serve_env["CREDITNET_SIGNER_API_KEY"] not in result.stdout + result.stderr


def _rewrite_cycle(database: Path, cycle_id: int, victim: int, beneficiary: int) -> int:
    """The lender rewrites a frozen cycle in its own database, consistently: `MOVED_FEN`
    move from the victim's first entry to the beneficiary's, and the tree, root, positions
    and total follow. Returns the victim's entry id."""
    salts = LeafSalts(DEV_LEAF_SALT_SECRET.encode())
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                select(entry_table)
                .where(entry_table.c.cycle_id == cycle_id)
                .order_by(entry_table.c.entry_id)
            ).mappings()
            entries = [
                SettlementEntry(
                    cycle_id,
                    int(r["entry_id"]),
                    int(r["partner_id"]),
                    EntryKind(r["kind"]),
                    int(r["amount_fen"]),
                    salts.salt(cycle_id, int(r["entry_id"]), int(r["partner_id"])),
                )
                for r in rows
            ]
            taken = next(e for e in entries if e.partner_id == victim)
            given = next(e for e in entries if e.partner_id == beneficiary)
            altered = {
                taken.entry_id: replace(taken, amount_fen=taken.amount_fen - MOVED_FEN),
                given.entry_id: replace(given, amount_fen=given.amount_fen + MOVED_FEN),
            }
            close = close_cycle(cycle_id, [altered.get(e.entry_id, e) for e in entries])
            for entry in altered.values():
                conn.execute(
                    update(entry_table)
                    .where(
                        (entry_table.c.cycle_id == cycle_id)
                        & (entry_table.c.entry_id == entry.entry_id)
                    )
                    .values(amount_fen=entry.amount_fen)
                )
            for partner_id, net in zip(close.partner_ids, close.net_positions_fen, strict=True):
                conn.execute(
                    update(position_table)
                    .where(
                        (position_table.c.cycle_id == cycle_id)
                        & (position_table.c.partner_id == partner_id)
                    )
                    .values(net_position_fen=net)
                )
            conn.execute(
                update(tree_table)
                .where(tree_table.c.cycle_id == cycle_id)
                .values(tree_blob=close.tree.to_bytes())
            )
            conn.execute(
                update(cycle_table)
                .where(cycle_table.c.cycle_id == cycle_id)
                .values(entries_root="0x" + close.root.hex(), total_due_fen=close.total_due_fen)
            )
    finally:
        engine.dispose()
    return taken.entry_id


def test_a_partner_signer_refuses_a_cycle_the_lender_rewrote_after_it_recorded_it(
    network: Network,
) -> None:
    started = time.monotonic()
    node, bank = network.node, network.bank
    second = network.first + timedelta(days=1)
    cycle_id = _cycle_id(second)
    bank_id, lender_id = network.partners["bank-sig"], network.partners["lender"]

    # The channel's and the auditor's signers go offline; day 2 closes and waits.
    for signer in (network.app, network.auditor):
        signer.stop()
    repayment = {"amount_fen": 60_000, "currency": "CNY", "payment_ref": "bank-tx-signers"}
    node.post(f"/v1/credit-lines/{network.line_id}/repayments", repayment)
    node.cli("eod", "--as-of", second.isoformat())

    def recorded_by_bank() -> list[tuple[Any, ...]] | None:
        return (
            bank.query(
                "SELECT entry_id, amount_fen FROM recorded_entry WHERE cycle_id = ?", cycle_id
            )
            or None
        )

    recorded = node.wait(recorded_by_bank, 60, f"the bank's signer recording cycle {cycle_id}")
    assert (node.cycle(cycle_id) or {}).get("state") == "closed"  # 2 of 4 signed; 3 needed

    # The lender keeps 1,000 fen of the bank's repayment, rewriting the frozen cycle. The
    # bank's signer is paused meanwhile so that no pass of it reads half before and half
    # after the rewrite (a torn read fails the proof check first, not the record check).
    bank.stop()
    victim = _rewrite_cycle(node.data_dir / "creditnet.db", cycle_id, bank_id, lender_id)
    assert victim in {entry_id for entry_id, _ in recorded}

    node_log_mark = node.log.stat().st_size
    for signer in (bank, network.app, network.auditor):
        signer.restart()

    def refused_by_bank() -> list[tuple[Any, ...]] | None:
        return bank.query("SELECT reason FROM refused_report WHERE cycle_id = ?", cycle_id) or None

    def signed_by_the_others() -> bool | None:
        signed = [
            signer.query("SELECT digest FROM signed_report WHERE cycle_id = ?", cycle_id)
            for signer in (network.app, network.auditor)
        ]
        return all(signed) or None

    ((reason,),) = node.wait(refused_by_bank, 60, "the bank's signer refusing")
    assert reason == (
        f"entry {victim} of cycle {cycle_id} differs from the entry recorded when this signer "
        "first saw the cycle"
    )
    node.wait(signed_by_the_others, 60, "the channel's and the auditor's signers signing")
    # Every party was asked after the rewrite; let the node try once more, then check.
    time.sleep(1.5)
    with node.log.open("rb") as log:
        log.seek(node_log_mark)
        since_rewrite = log.read().decode(errors="replace")
    assert "2 of 4 signers signed; 3 needed" in since_rewrite
    assert "does not match the books (entries_root)" in since_rewrite  # the node's own signer
    assert f"entry {victim} of cycle {cycle_id} differs" in bank.log.read_text()
    cycle = node.cycle(cycle_id)
    assert cycle is not None and cycle["state"] == "closed" and cycle["signatures"] == 0
    assert cycle["chain"] is None
    assert _chain_status(network, cycle_id) == 0
    print(f"rewrite refused by the bank's signer: {time.monotonic() - started:.1f} s")
