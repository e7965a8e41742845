"""Settlement completes on the embedded default: `creditnet up` exactly as `make run` starts
it (fresh data dir, its own anvil, free ports), driven over HTTP and the CLI only.

A funding partner is registered, a customer applies and buys (day 1: the bank funds 70 %,
so the bank owes), repays part on day 2 (principal goes back to the bank, so the lender
owes), `creditnet eod` closes both dates, the node's settlement scheduler closes, proposes
and finalizes the cycles, queues the lender's debt of day 2 in the outbox and its
treasury (minted at boot on the dev chain) funds it through the treasury's relayer; then
`creditnet claim` with the bank's own payout keystore raises the bank's token balance by
exactly its position.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from node_api.onboarding.identity import make_resident_id
from node_api.risk.fraud_facts import Gender
from oracles.anvil import pick_free_port
from oracles.chain import LocalAccounts
from scripts.applicants import GOOD_PROFILE
from scripts.demo.day import product_data as demo_product_data

CLI = [sys.executable, "-m", "node_api.cli"]
pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("node_up")]
PAYOUT_PASSWORD = "bank payout key"
BANK_ACCOUNT, APP_ACCOUNT, TREASURY_ACCOUNT = 6, 7, 5
T = TypeVar("T")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}
    env.update(extra)
    return env


class RunningNode:
    """`creditnet up --port P --data-dir D` in a subprocess, and what the test needs of it."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"
        self.port = pick_free_port()
        self.anvil_port = pick_free_port()
        self.log = tmp_path / "node.log"
        self.env = _env(
            CREDITNET_ANVIL_PORT=str(self.anvil_port), CREDITNET_SETTLEMENT_INTERVAL_S="0.5"
        )
        self.process = subprocess.Popen(
            [*CLI, "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.admin_key = ""
        self._idempotency = count(1)

    def wait_healthy(self, timeout_s: float = 120.0) -> dict[str, Any]:
        def healthy() -> dict[str, Any] | None:
            try:
                body: dict[str, Any] = self.http.get("/v1/health").json()
            except httpx.HTTPError:
                return None
            return body if body.get("status") == "ok" else None

        return self.wait_for(healthy, timeout_s, "node healthy")

    def wait_for(self, probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"node exited:\n{self.log_tail()}"
            value = probe()
            if value is not None:
                return value
            time.sleep(0.3)
        raise AssertionError(f"not {what} within {timeout_s} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*CLI, *args, "--data-dir", str(self.data_dir)],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def create_key(self, *args: str) -> str:
        lines = self.cli("keys", "create", *args).stdout.strip().splitlines()
        return lines[-1].strip()

    def post(self, path: str, body: Any, key: str | None = None) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {key or self.admin_key}",
            "Idempotency-Key": f"e2e-{next(self._idempotency)}",
        }
        response = self.http.post(path, json=body, headers=headers)
        assert response.status_code < 300, f"POST {path}: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str, key: str | None = None) -> Any:
        response = self.http.get(path, headers={"Authorization": f"Bearer {key or self.admin_key}"})
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT, as Ctrl-C after `make run`
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningNode]:
    running = RunningNode(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _product(code: str) -> dict[str, Any]:
    """The demo's revolving product without its installments and late fee: funded 30 % by
    the lender and 70 % by the bank at 6 %, sold by `app`."""
    data = demo_product_data()
    del data["installment"], data["fees"]
    return {
        **data,
        "product_code": code,
        "funding_split": [
            {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
            {"partner_id": "bank-e2e", "share_ppm": 700_000, "funder_rate_bps": 600},
        ],
        "eligible_channels": ["app"],
    }


def _applicant(code: str) -> dict[str, Any]:
    return {
        "product_code": code,
        "name": "Settlement Applicant",
        "id_number": make_resident_id("330106", date(1988, 3, 14), 123, Gender.MALE),
        "phone": "13700000042",
        "monthly_income_fen": 1_500_000,
        "device_id": "e2e-device-1",
        "ip": "198.51.100.42",
        "channel_id": "app",
        "characteristics": dict(GOOD_PROFILE),
    }


def _cycle_id(day: date) -> int:
    return int(day.strftime("%Y%m%d"))


def _token_balance(w3: Web3, token: str, holder: str) -> int:
    abi = [
        {
            "type": "function",
            "name": "balanceOf",
            "stateMutability": "view",
            "inputs": [{"name": "owner", "type": "address"}],
            "outputs": [{"name": "", "type": "uint256"}],
        }
    ]
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=abi)
    return int(contract.functions.balanceOf(Web3.to_checksum_address(holder)).call())


def test_a_purchase_settles_funded_through_the_outbox_and_the_partner_claims(
    node: RunningNode, tmp_path: Path
) -> None:
    started = time.monotonic()
    health = node.wait_healthy()
    token = health["chain"]["contracts"]["SettlementToken"]
    w3 = Web3(HTTPProvider(f"http://127.0.0.1:{node.anvil_port}"))
    accounts = LocalAccounts()
    bank_payout = accounts.account(BANK_ACCOUNT)

    # The dev treasury was funded at boot, and `creditnet treasury` shows and tops it up.
    shown = node.cli("treasury").stdout
    assert accounts.account(TREASURY_ACCOUNT).address in shown
    balance_at_boot = int(shown.split("balance_fen ")[1].split()[0])
    assert balance_at_boot > 0
    topped = node.cli("treasury", "--top-up", "12345").stdout
    assert f"balance_fen {balance_at_boot + 12_345}" in topped

    node.admin_key = node.create_key("--role", "lender_admin")
    day_one = node.get("/v1/ledger/business-date")["as_of"]
    if day_one is None:
        day_one = "2025-06-02"
        node.post("/v1/ledger/business-date", {"as_of": day_one})
    first = date.fromisoformat(day_one)
    second = first + timedelta(days=1)

    partners = {}
    for ref, role, account in (
        ("lender", "lender", TREASURY_ACCOUNT),
        ("bank-e2e", "funder", BANK_ACCOUNT),
        ("app", "channel", APP_ACCOUNT),
    ):
        body = {
            "ref": ref,
            "role": role,
            "payout_address": accounts.account(account).address,
            "display_name": f"{ref} (e2e)",
        }
        partners[ref] = int(node.post("/v1/partners", body)["partner_id"])
    bank_id = partners["bank-e2e"]
    node.post("/v1/products", _product("E2E1"))

    decision = node.post("/v1/applications", _applicant("E2E1"))
    assert decision["decision"] == "approved", decision
    line_id = int(decision["credit_line_id"])
    purchase = {
        "merchant_id": "m-e2e",
        "channel_id": "app",
        "amount_fen": 100_000,
        "currency": "CNY",
    }
    node.post(f"/v1/credit-lines/{line_id}/purchases", purchase)
    node.cli("eod", "--as-of", first.isoformat())

    repayment = {"amount_fen": 60_000, "currency": "CNY", "payment_ref": "bank-tx-e2e"}
    node.post(f"/v1/credit-lines/{line_id}/repayments", repayment)
    node.cli("eod", "--as-of", second.isoformat())

    # The scheduler closes day 2; the lender owes the bank; the treasury funds via the outbox.
    cycle_id = _cycle_id(second)
    bank_key = node.create_key("--role", "partner", "--partner-id", str(bank_id))

    def funded_cycle() -> dict[str, Any] | None:
        response = node.http.get(
            f"/v1/partner/cycles/{cycle_id}", headers={"Authorization": f"Bearer {bank_key}"}
        )
        if response.status_code != 200:
            return None
        view: dict[str, Any] = response.json()
        chain = view.get("chain")
        return view if chain is not None and chain["status_name"] == "funded" else None

    view = node.wait_for(funded_cycle, 120, f"cycle {cycle_id} funded")
    position_fen = int(view["net_position_fen"])
    assert position_fen > 0

    # The indexer may mirror the Funded event before the relayer has read the funding
    # transaction's receipt (its row still "sent"): wait for the relayer too.
    def relayed() -> dict[str, Any] | None:
        status: dict[str, Any] = node.get("/v1/oracles/status")
        return status if "sent" not in status["outbox_by_kind"]["cycle_fund"] else None

    status = node.wait_for(relayed, 60, "the funding transaction's receipt recorded")
    assert status["outbox_by_kind"]["cycle_fund_approve"] == {"confirmed": 1}
    assert status["outbox_by_kind"]["cycle_fund"] == {"confirmed": 1}
    assert "cycle_fund" not in status["last_errors"]

    keystore = tmp_path / "bank-payout.json"
    keystore.write_text(json.dumps(Account.encrypt(bank_payout.key, PAYOUT_PASSWORD)))
    before_fen = _token_balance(w3, token, bank_payout.address)
    claimed = node.cli(
        "claim",
        "--cycle",
        str(cycle_id),
        "--partner",
        str(bank_id),
        "--keystore",
        str(keystore),
        CREDITNET_PAYOUT_KEYSTORE_PASSWORD=PAYOUT_PASSWORD,
    )
    assert f"claimed {position_fen} fen" in claimed.stdout
    assert _token_balance(w3, token, bank_payout.address) == before_fen + position_fen

    again = node.cli(
        "claim",
        "--cycle",
        str(cycle_id),
        "--partner",
        str(bank_id),
        "--keystore",
        str(keystore),
        CREDITNET_PAYOUT_KEYSTORE_PASSWORD=PAYOUT_PASSWORD,
    )
    assert "already claimed" in again.stdout
    assert _token_balance(w3, token, bank_payout.address) == before_fen + position_fen
    print(f"settlement on the node: {time.monotonic() - started:.1f} s")
