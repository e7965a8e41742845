"""Anchoring you can see: an agreement's on-chain status next to the books', the published
contracts (addresses, ABIs, leaf encodings, codes) over HTTP and as exported files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from fastapi.testclient import TestClient
from sha3 import keccak_256
from sqlalchemy import insert, update
from typer.testing import CliRunner
from web3 import Web3

from node_api.auth.keys import Role, create_api_key
from node_api.cli import app as cli_app
from node_api.http.app import create_app
from node_api.http.published_contracts import compiled_contracts
from node_api.kernel.chain import ContractName, EntryKind
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OUTBOX_TABLE
from oracles.anchoring import agreement_business_key
from oracles.audit.leaves import compute_entry_leaf
from oracles.tables import CHAIN_AGREEMENT_TABLE, SUBMISSION_TABLE
from tests.integration.onboarding.onboarding_helpers import application_body, setup_books

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
CHAIN_ID = 31337
HEAD = 110


@dataclass
class FixedHeadChain(ChainContext):
    """A chain whose head is block 110 (no RPC call)."""

    def fetch_latest_block(self, timeout_s: float = 2.0) -> int | None:
        return HEAD


def _manifest() -> dict[str, Any]:
    compiled = compiled_contracts()
    return {
        "chain_id": CHAIN_ID,
        "contracts": {
            name.value: {
                "address": "0x" + f"{index + 1:040x}",
                "deploy_block": index + 1,
                "deploy_tx": "0x" + f"{index + 1:064x}",
                "constructor_args": "0x",
            }
            for index, name in enumerate(ContractName)
        },
        "compiler_version": compiled.compiler_version,
        "settings": compiled.settings,
        "source_hashes": compiled.source_hashes,
        "deployer": "0x" + "ab" * 20,
        "created_at_block": 9,
    }


@pytest.fixture
def keys(database: Database) -> dict[str, str]:
    with database.session() as session:
        return {
            "admin": create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER),
            "app": create_api_key(session, Role.LENDER_APP, pepper=PEPPER),
            "auditor": create_api_key(session, Role.AUDITOR, pepper=PEPPER),
            "partner": create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=2),
        }


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    setup_books(database)
    chain = FixedHeadChain(rpc_url="http://127.0.0.1:9", chain_id=CHAIN_ID, manifest=_manifest())
    app = create_app(Settings(data_dir=tmp_path), database=database, chain=chain)
    with TestClient(app) as test_client:
        yield test_client


def _headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def test_an_agreement_shows_queued_then_on_chain_with_its_block_and_confirmations(
    client: TestClient, database: Database, keys: dict[str, str]
) -> None:
    decided = client.post(
        "/v1/applications", json=application_body(), headers=_headers(keys["app"], "apply-1")
    ).json()
    assert decided["decision"] == "approved", decided
    agreement_id = decided["agreement_id"]
    queued = client.get(f"/v1/agreements/{agreement_id}", headers=_headers(keys["app"])).json()
    assert queued["anchoring"] == "queued"
    assert queued["chain"] is None and queued["tx_hash"] is None
    assert queued["confirmations"] is None and queued["terms_match"] is None
    assert queued["books"]["credit_line_id"] == decided["credit_line_id"]
    assert queued["books"]["outbox_status"] == "pending"
    terms_hash = queued["books"]["terms_hash"]
    assert queued["terms_hash"] == terms_hash

    tx = "0x" + "cd" * 32
    now = datetime(2025, 6, 30, 12, 0)
    with database.engine.begin() as conn:
        conn.execute(
            update(OUTBOX_TABLE)
            .where(OUTBOX_TABLE.c.business_key == agreement_business_key(agreement_id))
            .values(status="confirmed", tx_hash=tx, block_number=101)
        )
        conn.execute(
            insert(SUBMISSION_TABLE).values(
                kind="agreement_open", sender="0x" + "11" * 20, nonce=0, tx_hash=tx,
                raw_tx="0x00", item_count=1, status="confirmed", block_number=101,
                block_hash="0x" + "ef" * 32, created_at=now, updated_at=now,
            )
        )  # fmt: skip
        conn.execute(
            insert(CHAIN_AGREEMENT_TABLE).values(
                agreement_id=agreement_id, borrower_ref=queued["books"]["borrower_ref"],
                terms_hash=terms_hash, commitment="0x" + "01" * 32,
                product_code=queued["books"]["product_code"],
                limit_fen=queued["books"]["limit_fen"], apr_bps=queued["books"]["apr_bps"],
                opened_at=queued["books"]["opened_at"], status=1, last_reason_code=0,
                change_count=0, opened_block=101, opened_tx=tx, updated_block=101,
            )
        )  # fmt: skip
    anchored = client.get(
        f"/v1/agreements/{agreement_id.upper().replace('0X', '0x')}",
        headers=_headers(keys["auditor"]),
    ).json()
    assert anchored["anchoring"] == "on_chain"
    assert anchored["tx_hash"] == tx and anchored["block_number"] == 101
    assert anchored["confirmations"] == HEAD - 101 + 1 and anchored["chain_head"] == HEAD
    assert anchored["terms_match"] is True and anchored["terms_hash"] == terms_hash
    assert anchored["chain"]["status_name"] == "active"
    assert anchored["books"]["outbox_status"] == "confirmed"


def test_agreement_ids_are_checked_and_partners_are_refused(
    client: TestClient, keys: dict[str, str]
) -> None:
    unknown = client.get("/v1/agreements/0x" + "00" * 32, headers=_headers(keys["admin"]))
    assert unknown.status_code == 404 and unknown.json()["field"] == "agreement_id"
    malformed = client.get("/v1/agreements/0x12", headers=_headers(keys["admin"]))
    assert malformed.status_code == 422
    partner = client.get("/v1/agreements/0x" + "00" * 32, headers=_headers(keys["partner"]))
    assert partner.status_code == 403


@pytest.mark.parametrize("role", ["admin", "app", "auditor", "partner"])
def test_contracts_are_published_to_every_role(
    client: TestClient, keys: dict[str, str], role: str
) -> None:
    response = client.get("/v1/contracts", headers=_headers(keys[role]))
    assert response.status_code == 200
    body = response.json()
    assert body["chain_id"] == CHAIN_ID and body["deployment_block"] == 9
    assert body["abi_matches_deployment"] is True
    by_name = {item["name"]: item for item in body["contracts"]}
    assert set(by_name) == {name.value for name in ContractName}
    clearing = by_name["ClearingHouse"]
    assert clearing["address"] == _manifest()["contracts"]["ClearingHouse"]["address"]
    assert "verifyEntry" in [entry.get("name") for entry in clearing["abi"]]
    assert {k["name"]: k["code"] for k in body["entry_kinds"]} == {
        k.name: int(k) for k in EntryKind
    }
    text = response.text.lower()
    assert "rpc" not in text and "password" not in text and "127.0.0.1" not in text


def test_contracts_need_a_key(client: TestClient) -> None:
    assert client.get("/v1/contracts").status_code == 401


def test_the_exported_files_let_a_partner_recompute_a_leaf(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    (data_dir / "deployments").mkdir(parents=True)
    (data_dir / "chain.json").write_text(
        json.dumps({"chain_id": CHAIN_ID, "rpc_url": "http://127.0.0.1:9"})
    )
    (data_dir / "deployments" / f"{CHAIN_ID}.json").write_text(json.dumps(_manifest()))
    out = tmp_path / "published"
    result = CliRunner().invoke(
        cli_app, ["contracts", "export", "--out", str(out), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    deployment = json.loads((out / "deployment.json").read_text())
    assert deployment["chain_id"] == CHAIN_ID
    abi = json.loads((out / "abi" / "ClearingHouse.json").read_text())
    contract = Web3().eth.contract(
        address=Web3.to_checksum_address(deployment["contracts"]["ClearingHouse"]["address"]),
        abi=abi,
    )
    assert contract.get_function_by_name("verifyEntry")
    kinds = json.loads((out / "entry-kinds.json").read_text())
    leaf = next(item for item in json.loads((out / "leaves.json").read_text())
                if item["name"] == "settlement_entry")  # fmt: skip
    assert leaf["fields"][-1] == "salt" and "HMAC-SHA256" in leaf["salt"]
    values = [20250630, 17, 2, kinds["INTEREST_SHARE"], -1830, bytes(range(32))]
    encoded = encode(leaf["solidity_types"], values)
    recomputed = keccak_256(keccak_256(encoded).digest()).digest()
    assert recomputed == compute_entry_leaf(*values)
    published = json.loads((out / "contracts.json").read_text())
    assert published["chain_id"] == CHAIN_ID and len(published["contracts"]) == 5
