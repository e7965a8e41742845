"""`GET /v1/oracles/status` shows the outbox, the indexer position and the signers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.chain_context import ChainContext
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox import PartnerRegistration, enqueue
from node_api.kernel.outbox_table import OutboxStatus
from oracles.keystore import add_signer
from oracles.leases import LeaseStore
from oracles.tables import IndexerCheckpoint
from tests.unit.oracles.oracle_helpers import make_opening

PEPPER = Settings().api_key_pepper.get_secret_value().encode()


class _FixedHeadChain(ChainContext):
    def fetch_latest_block(self, timeout_s: float = 2.0) -> int | None:
        return 130


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, signer_count=2, signer_threshold=2)


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    chain = _FixedHeadChain(rpc_url="http://127.0.0.1:1", chain_id=31337)
    with TestClient(create_app(settings, database=database, chain=chain)) as test_client:
        yield test_client


def _bearer(database: Database, role: Role) -> dict[str, str]:
    with database.session() as session:
        key = create_api_key(session, role, pepper=PEPPER)
    return {"Authorization": f"Bearer {key}"}


def test_status_reports_outbox_depth_indexer_lag_and_signers(
    client: TestClient, database: Database, settings: Settings
) -> None:
    signer_addresses = [add_signer(settings.signer_keystore_dir, "pw").address for _ in range(2)]
    with database.session() as session:
        for number in range(3):
            enqueue(session, make_opening(number))
        parked = enqueue(session, PartnerRegistration(4, 1, "0x" + "ab" * 20))
        parked.status = OutboxStatus.PARKED.value
        session.add(parked)
        session.add(
            IndexerCheckpoint(
                name="main",
                block_number=100,
                block_hash="0x" + "11" * 32,
                updated_at=datetime(2025, 1, 1),
            )
        )
    for role in (Role.LENDER_ADMIN, Role.AUDITOR):
        response = client.get("/v1/oracles/status", headers=_bearer(database, role))
        assert response.status_code == 200
        body = response.json()
        assert body["outbox_by_kind"] == {
            "agreement_open": {"pending": 3},
            "partner_register": {"parked": 1},
        }
        assert body["outbox_totals"] == {"parked": 1, "pending": 3}
        assert body["indexer"]["last_block"] == 100
        assert (body["indexer"]["chain_head"], body["indexer"]["lag_blocks"]) == (130, 30)
        assert body["signers"] == {
            "addresses": signer_addresses,
            "threshold": 2,
            "remote_endpoints": [],
        }


def test_status_is_refused_to_lender_apps_and_partners(
    client: TestClient, database: Database
) -> None:
    response = client.get("/v1/oracles/status", headers=_bearer(database, Role.LENDER_APP))
    assert response.status_code == 403
    assert client.get("/v1/oracles/status").status_code == 401


def test_status_lists_remote_signers_without_credentials(
    database: Database, tmp_path: Path
) -> None:
    address = "0x" + "cd" * 20
    settings = Settings(
        data_dir=tmp_path,
        remote_signers=f"{address}=https://user:secret@signer.example:8443/s?token=x",
        signer_threshold=1,
    )
    with TestClient(create_app(settings, database=database)) as client:
        body = client.get("/v1/oracles/status", headers=_bearer(database, Role.AUDITOR)).json()
    assert body["signers"]["addresses"] == [address]
    assert body["signers"]["remote_endpoints"] == ["https://signer.example:8443/s"]
    assert body["indexer"] == {
        "last_block": None,
        "last_block_hash": None,
        "updated_at": None,
        "chain_head": None,
        "lag_blocks": None,
    }


def test_status_shows_which_node_holds_each_worker_lease(
    client: TestClient, database: Database
) -> None:
    clock = [datetime(2026, 12, 3, 8, 0, 0)]
    first = LeaseStore(database, "node-a:11", 10.0, clock=lambda: clock[0])
    second = LeaseStore(database, "node-b:22", 10.0, clock=lambda: clock[0])
    assert first.try_acquire("relayer") == 1
    assert second.try_acquire("indexer") == 1
    clock[0] += timedelta(seconds=11)  # node-a dies; its relayer lease lapses
    assert second.try_acquire("relayer") == 2
    body = client.get("/v1/oracles/status", headers=_bearer(database, Role.AUDITOR)).json()
    assert [(x["worker"], x["holder"], x["epoch"]) for x in body["leases"]] == [
        ("indexer", "node-b:22", 1),
        ("relayer", "node-b:22", 2),
    ]
    assert body["leases"][1]["expires_at"].startswith("2026-12-03T08:00:21")
