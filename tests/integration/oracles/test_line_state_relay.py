"""Credit-line states through the quorum only: a settled date's line state, signed by the
node's signers over its books, lands on the CreditRegistry through the relayer, the
balance proof the API serves verifies on-chain with `verifyLineBalance`, and the audit
verifies its quorum from the transaction and reproduces its root from the books' export.
A report signed by fewer signers than the threshold is refused by the contract and
parked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web3 import Web3

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox import LineStateCommitment
from node_api.kernel.outbox_table import OutboxStatus
from oracles.audit.books_export import stream_export
from oracles.audit.runner import AuditConfig, run_audit
from oracles.manifest import get_manifest_path
from oracles.signers import QuorumNotReachedError, SigningDomain
from settlement.line_state import commit_line_states, compute_line_state, fetch_line_state
from settlement.salts import LeafSalts
from tests.integration.oracles.conftest import OwnChain
from tests.integration.settlement.books import FIRST_DAY, Books
from tests.integration.settlement.line_state_books import (
    anchor_lines,
    line_state_signers,
    mark_proposed,
)
from tests.unit.oracles.oracle_helpers import enqueue_all, fetch_outbox, make_relayer

pytestmark = pytest.mark.chain

PEPPER = Settings().api_key_pepper.get_secret_value().encode()


def _domain(chain: OwnChain) -> SigningDomain:
    manifest = chain.manifest
    return SigningDomain(
        manifest.chain_id,
        manifest.get_address("ClearingHouse"),
        manifest.get_address("CreditRegistry"),
    )


def _registry(chain: OwnChain) -> Any:
    return chain.connect().eth.contract(
        address=Web3.to_checksum_address(chain.manifest.get_address("CreditRegistry")),
        abi=chain.compiled.artifact("CreditRegistry").abi,
    )


def _relay(database: Database, chain: OwnChain) -> None:
    make_relayer(
        database, chain.anvil.rpc_url, chain.manifest, chain.compiled, chain.relayer
    ).run_until_idle(30)


def _settled_books(database: Database) -> tuple[Books, dict[int, bytes], int]:
    books = Books(database)
    books.setup(line_count=3)
    agreements = anchor_lines(database, dict.fromkeys(books.line_ids, FIRST_DAY))
    for line_id, amount_fen in zip(books.line_ids, (80_000, 2_500, 61_000), strict=True):
        books.purchase(line_id, amount_fen)
    books.repay(books.line_ids[1], 2_500)  # paid off: a zero balance, still a leaf
    assert books.end_day() == FIRST_DAY
    return books, agreements, mark_proposed(database, FIRST_DAY)


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(data_dir=tmp_path), database=database)) as test_client:
        yield test_client


def test_a_line_state_lands_through_the_relayer_and_its_proofs_verify_on_chain(
    database: Database, own_chain: OwnChain, client: TestClient
) -> None:
    _books, agreements, cycle_id = _settled_books(database)
    done = commit_line_states(database, line_state_signers(database, _domain(own_chain)))
    assert done.queued == [cycle_id]
    _relay(database, own_chain)
    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}

    registry = _registry(own_chain)
    with database.engine.connect() as conn:
        stored = fetch_line_state(conn, cycle_id)
    assert stored is not None and stored.root is not None
    root, count, total_fen = registry.functions.getLineState(cycle_id).call()
    assert (bytes(root), count, total_fen) == (
        stored.root,
        3,
        stored.total_outstanding_fen,
    )

    with database.session() as session:
        key = create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=2)
    headers = {"Authorization": f"Bearer {key}"}
    balances = []
    for agreement_id in agreements.values():
        response = client.get(
            f"/v1/agreements/0x{agreement_id.hex()}/line-state",
            params={"cycle_id": cycle_id},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["commitment_status"] == "confirmed" and body["tx_hash"]
        assert body["root"] == "0x" + stored.root.hex() and body["leaf_count"] == 3
        proof = [bytes.fromhex(node[2:]) for node in body["proof"]]
        verify = registry.functions.verifyLineBalance
        assert verify(agreement_id, cycle_id, body["outstanding_fen"], proof).call()
        assert not verify(agreement_id, cycle_id, body["outstanding_fen"] + 1, proof).call()
        balances.append(body["outstanding_fen"])
    assert sum(balances) == total_fen and 0 in balances
    newest = client.get(
        f"/v1/agreements/0x{next(iter(agreements.values())).hex()}/line-state", headers=headers
    )
    assert newest.status_code == 200 and newest.json()["cycle_id"] == cycle_id
    unknown = client.get(f"/v1/agreements/0x{'00' * 32}/line-state", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["field"] == "agreement_id"
    assert client.get(f"/v1/agreements/0x{'00' * 32}/line-state").status_code == 401


def test_the_audit_verifies_the_landed_line_state_and_reconciles_it_with_the_books(
    database: Database, own_chain: OwnChain, tmp_path: Path
) -> None:
    _settled_books(database)
    commit_line_states(database, line_state_signers(database, _domain(own_chain)))
    _relay(database, own_chain)
    manifest = json.loads(own_chain.manifest.model_dump_json())
    export = tmp_path / "books.ndjson"
    salts = LeafSalts(b"line-state-test")
    export.write_bytes(
        b"".join(stream_export(database, own_chain.manifest.chain_id, manifest, salts))
    )
    report = run_audit(
        AuditConfig(
            rpc_url=own_chain.anvil.rpc_url,
            manifest_path=get_manifest_path(own_chain.manifest_dir, own_chain.manifest.chain_id),
            export_path=export,
        )
    )
    checks = {check.id: check for check in report.checks}
    quorum, reconciled = checks["invariant.cycle_quorum"], checks["reconcile.line_states"]
    assert quorum.message.startswith("1 quorum reports verified"), quorum.message
    assert reconciled.message.startswith("1 line-state roots reproduced"), reconciled.message
    assert "invariant.cycle_quorum" not in {c.id for c in report.failed_checks()}
    assert "reconcile.line_states" not in {c.id for c in report.failed_checks()}


def test_a_line_state_signed_by_fewer_than_the_threshold_is_refused_by_the_registry(
    database: Database, own_chain: OwnChain
) -> None:
    _settled_books(database)
    signers = line_state_signers(database, _domain(own_chain), tampered=2)
    with database.engine.connect() as conn:
        state = compute_line_state(conn, FIRST_DAY)
    assert state is not None
    with pytest.raises(QuorumNotReachedError):
        signers.gather_line_state_signatures(state.report)
    gathering = signers.gather_line_state_signatures(state.report, require_quorum=False)
    assert len(gathering.signatures) == 1
    commitment = LineStateCommitment(
        state.cycle_id,
        state.root,
        state.leaf_count,
        state.total_outstanding_fen,
        gathering.signatures,
    )
    enqueue_all(database, [commitment])
    _relay(database, own_chain)

    rows = {row.business_key: row for row in fetch_outbox(database)}
    parked = rows.pop(commitment.business_key)
    assert parked.status == OutboxStatus.PARKED
    assert parked.last_error is not None and "QuorumNotReached" in parked.last_error
    assert {row.status for row in rows.values()} == {OutboxStatus.CONFIRMED}
    root, _count, _total = _registry(own_chain).functions.getLineState(state.cycle_id).call()
    assert bytes(root) == b"\x00" * 32
