"""`GET /v1/audit/export`: the auditor role streams the books, PII-free, and an audit over
the API reconciles them with the chain."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from oracles.anvil import pick_free_port
from oracles.audit.export_format import AgreementRecord, parse_record
from oracles.audit.export_reader import read_export, read_export_api
from oracles.audit.runner import AuditConfig, run_audit
from tests.integration.audit.books_db import store_books
from tests.integration.audit.scenario import Scenario, check_of, failed_ids

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
SERVER_START_S = 10.0


def _key(database: Database, role: Role) -> str:
    with database.session() as session:
        return create_api_key(session, role, pepper=PEPPER)


def _app(database: Database, tmp_path: Path, scenario: Scenario) -> FastAPI:
    chain = ChainContext(
        rpc_url=scenario.anvil.rpc_url,
        chain_id=scenario.manifest.chain_id,
        manifest=json.loads(scenario.manifest.model_dump_json()),
    )
    return create_app(Settings(data_dir=tmp_path), database=database, chain=chain)


@pytest.fixture
def client(database: Database, tmp_path: Path, scenario: Scenario) -> Iterator[TestClient]:
    store_books(database, scenario.books)
    with TestClient(_app(database, tmp_path, scenario)) as test_client:
        yield test_client


@pytest.mark.chain
def test_export_streams_every_record_of_the_books_for_the_auditor(
    client: TestClient, database: Database, scenario: Scenario
) -> None:
    headers = {"Authorization": f"Bearer {_key(database, Role.AUDITOR)}"}
    with client.stream("GET", "/v1/audit/export", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [line.encode() for line in response.iter_lines()]
    export = read_export(lines, "api")
    assert export.problems == []
    assert export.manifest is not None and export.manifest["chain_id"] == scenario.manifest.chain_id
    assert sorted(export.agreements) == sorted(a.agreement_id for a in scenario.books.agreements)
    exported = export.agreements[scenario.books.agreements[0].agreement_id]
    assert exported == scenario.books.agreements[0]
    assert {t.terms_hash for t in export.terms.values()} == {
        t.terms_hash for t in scenario.books.terms
    }
    for cycle_id, close in scenario.books.cycles.items():
        rows = [
            (e.entry_id, e.partner_id, int(e.kind), e.amount_fen, "0x" + e.salt.hex())
            for e in close.entries
        ]
        assert export.cycles[cycle_id].entries == rows  # every salt, derived from the secret
        assert export.cycles[cycle_id].record.entries_root == "0x" + close.root.hex()  # type: ignore[union-attr]
    assert sorted(export.line_states) == sorted(scenario.books.line_states)
    for cycle_id, leaves in scenario.books.line_states.items():
        assert export.line_states[cycle_id].leaves == sorted(leaves)


@pytest.mark.chain
def test_agreements_in_the_export_carry_no_field_beyond_the_chain_opening(
    client: TestClient, database: Database
) -> None:
    headers = {"Authorization": f"Bearer {_key(database, Role.AUDITOR)}"}
    body = client.get("/v1/audit/export", headers=headers).content
    records = [json.loads(line) for line in body.splitlines()]
    agreements = [record for record in records if record["type"] == "agreement"]
    assert len(agreements) == 6
    assert {key for item in agreements for key in item} == set(AgreementRecord.model_fields)
    for line in body.splitlines():
        parse_record(line)


@pytest.mark.chain
@pytest.mark.parametrize("role", [Role.LENDER_ADMIN, Role.LENDER_APP, Role.PARTNER])
def test_RevertWhen_a_non_auditor_asks_for_the_export(
    client: TestClient, database: Database, role: Role
) -> None:
    with database.session() as session:
        key = create_api_key(
            session, role, pepper=PEPPER, partner_id=1 if role is Role.PARTNER else None
        )
    response = client.get("/v1/audit/export", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert client.get("/v1/audit/export").status_code == 401


@pytest.mark.chain
def test_reader_streams_the_export_through_the_api_client(
    client: TestClient, database: Database, scenario: Scenario
) -> None:
    export = read_export_api(str(client.base_url), _key(database, Role.AUDITOR), client=client)
    assert export.problems == [] and len(export.cycles) == len(scenario.books.cycles)


@pytest.mark.chain
def test_audit_over_the_api_reconciles_the_books_held_by_the_node(
    database: Database, scenario: Scenario, tmp_path: Path
) -> None:
    """The node's books, line states included, reconcile with everything on-chain."""
    store_books(database, scenario.books)
    port = pick_free_port()
    server = uvicorn.Server(
        uvicorn.Config(_app(database, tmp_path, scenario), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        config = AuditConfig(
            rpc_url=scenario.anvil.rpc_url,
            manifest_path=scenario.manifest_path,
            api_url=f"http://127.0.0.1:{port}",
            api_key=_key(database, Role.AUDITOR),
        )
        report = run_audit(config)
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_START_S)
    assert failed_ids(report) == set(), [c.message for c in report.failed_checks()]
    assert check_of(report, "reconcile.line_states").message.startswith(
        "2 line-state roots reproduced"
    )
    assert check_of(report, "reconcile.cycle_roots").message.startswith("3 cycles recomputed")


def test_RevertWhen_the_node_has_no_chain_to_export_for(database: Database, tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app) as test_client:
        headers = {"Authorization": f"Bearer {_key(database, Role.AUDITOR)}"}
        response = test_client.get("/v1/audit/export", headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
