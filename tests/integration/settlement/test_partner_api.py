"""The partner API on both databases: each partner sees only its own cycles and entries,
every served proof verifies against the cycle's root, pages and the NDJSON stream
agree, each partner gets its own leaf secret and re-derives its entries' salts from it,
and admins register partners (queuing their on-chain registration)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OUTBOX_TABLE
from settlement.cycle_close import close_settlement_cycle
from settlement.merkle import verify
from settlement.netting import ClosedCycle
from settlement.proofs import from_json
from settlement.salts import LeafSalts, PartnerSalts
from settlement.verifier import parse_entries
from tests.integration.settlement.books import APP, BANK_A, BANK_B, Books, random_day

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
SALTS = LeafSalts.from_settings(Settings())  # the secret of the app under test
_keys = itertools.count()


class Api:
    def __init__(self, client: TestClient, database: Database) -> None:
        self.client = client
        with database.session() as session:
            self.tokens: dict[Any, str] = {
                role: create_api_key(session, role, pepper=PEPPER)
                for role in (Role.LENDER_ADMIN, Role.AUDITOR)
            }
            for partner_id in (BANK_A, BANK_B, APP):
                self.tokens[partner_id] = create_api_key(
                    session, Role.PARTNER, pepper=PEPPER, partner_id=partner_id
                )

    def get(self, path: str, who: Any, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.get(path, headers=headers, **kwargs)

    def post(self, path: str, body: Any, who: Any = Role.LENDER_ADMIN) -> Any:
        headers = {
            "Authorization": f"Bearer {self.tokens[who]}",
            "Idempotency-Key": f"k-{next(_keys)}",
        }
        return self.client.post(path, json=body, headers=headers)


@pytest.fixture
def api(database: Database, tmp_path: Any) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path)
    with TestClient(create_app(settings, database=database)) as client:
        yield Api(client, database)


@pytest.fixture
def cycle(database: Database) -> ClosedCycle:
    books = Books(database)
    books.setup()
    day = random_day(books, random.Random(3), operations=14)
    return close_settlement_cycle(database, day, salts=SALTS)


def _proves(cycle: ClosedCycle, item: dict[str, Any]) -> bool:
    proven = from_json(item)
    assert cycle.entries_root is not None
    return verify(cycle.entries_root, proven.entry.leaf_hash(), proven.proof)


def test_a_partner_pages_through_its_own_entries_and_every_proof_verifies(
    api: Api, cycle: ClosedCycle
) -> None:
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.get(
            f"/v1/partner/cycles/{cycle.cycle_id}/entries",
            BANK_A,
            params={"after": after, "limit": 3},
        ).json()
        seen += page["entries"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen and all(item["partner_id"] == BANK_A for item in seen)
    assert all(_proves(cycle, item) for item in seen)
    position = api.get(f"/v1/partner/cycles/{cycle.cycle_id}", BANK_A).json()
    assert position["net_position_fen"] == sum(item["amount_fen"] for item in seen)
    assert position["net_position_fen"] == cycle.net_positions_fen[cycle.partner_ids.index(BANK_A)]
    assert position["chain"] is None  # nothing indexed from the chain yet
    # The books' state and the chain's are told apart.
    assert position["books_state"] == position["state"] == cycle.state.value
    assert position["chain_state"] is None


def test_the_ndjson_stream_carries_the_same_entries_as_the_pages(
    api: Api, cycle: ClosedCycle
) -> None:
    response = api.get(f"/v1/partner/cycles/{cycle.cycle_id}/entries.ndjson", APP)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    source = parse_entries(response.text.splitlines())
    assert source.unreadable == []
    assert source.stated["entries_root"] == "0x" + (cycle.entries_root or b"").hex()
    page = api.get(
        f"/v1/partner/cycles/{cycle.cycle_id}/entries", APP, params={"limit": 5000}
    ).json()
    assert [from_json(item) for item in page["entries"]] == source.entries
    assert (
        sum(item.entry.amount_fen for item in source.entries) == source.stated["net_position_fen"]
    )


def test_a_partner_re_derives_every_salt_served_from_its_own_leaf_secret(
    api: Api, cycle: ClosedCycle
) -> None:
    secrets = {}
    for partner_id in (BANK_A, BANK_B, APP):
        response = api.get("/v1/partner/leaf-secret", partner_id)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["partner_id"] == partner_id and "HMAC-SHA256" in body["salt_derivation"]
        secrets[partner_id] = bytes.fromhex(body["leaf_secret"][2:])
    assert len(set(secrets.values())) == 3
    root_secret = Settings().leaf_salt_secret.get_secret_value()
    assert root_secret.encode().hex() not in json.dumps(body)
    own = PartnerSalts(secrets[BANK_A])
    page = api.get(f"/v1/partner/cycles/{cycle.cycle_id}/entries", BANK_A).json()
    assert page["entries"]
    for item in page["entries"]:
        assert item["salt"] == "0x" + own.salt(cycle.cycle_id, item["entry_id"]).hex()
    for who in (Role.LENDER_ADMIN, Role.AUDITOR):
        assert api.get("/v1/partner/leaf-secret", who).status_code == 403


def test_a_partner_sees_only_its_own_cycles_and_data(api: Api, cycle: ClosedCycle) -> None:
    listed = api.get("/v1/partner/cycles", BANK_B).json()
    assert [item["cycle_id"] for item in listed] == [cycle.cycle_id]
    assert {item["partner_id"] for item in listed} == {BANK_B}
    for path in ("", "/entries", "/entries.ndjson"):
        other = api.get(f"/v1/partner/cycles/{cycle.cycle_id + 1}{path}", BANK_B)
        assert other.status_code == 404
    assert api.get("/v1/settlement/cycles", BANK_B).status_code == 403
    assert api.get("/v1/partners", APP).status_code == 403


def test_admins_list_cycles_and_auditors_may_read_them(api: Api, cycle: ClosedCycle) -> None:
    for who in (Role.LENDER_ADMIN, Role.AUDITOR):
        cycles = api.get("/v1/settlement/cycles", who).json()
        assert [item["cycle_id"] for item in cycles] == [cycle.cycle_id]
        assert cycles[0]["entry_count"] == cycle.entry_count


def test_registering_a_partner_queues_its_on_chain_registration(
    api: Api, database: Database
) -> None:
    body = {
        "ref": "bank-c",
        "role": "funder",
        "payout_address": "0x" + "ab" * 20,
        "display_name": "Bank C",
    }
    created = api.post("/v1/partners", body)
    assert created.status_code == 201
    partner = created.json()
    assert partner["partner_id"] == 1 and partner["registered_on_chain"] is False
    with database.engine.connect() as conn:
        rows = conn.execute(select(OUTBOX_TABLE.c.business_key, OUTBOX_TABLE.c.payload)).all()
    assert [(key, payload["role"]) for key, payload in rows] == [("partner:1", 1)]
    conflict = api.post("/v1/partners", dict(body, role="channel"))
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "partner_conflict"
    listed = api.get("/v1/partners", Role.AUDITOR).json()
    assert [item["ref"] for item in listed] == ["bank-c"]


def test_RevertWhen_the_stored_entries_no_longer_match_the_tree_nothing_is_served(
    api: Api, cycle: ClosedCycle, database: Database
) -> None:
    from sqlalchemy import update

    from settlement.tables import entry_table

    with database.engine.begin() as conn:
        conn.execute(
            update(entry_table)
            .where(entry_table.c.partner_id == BANK_A)
            .values(amount_fen=entry_table.c.amount_fen + 1)
        )
    response = api.get(f"/v1/partner/cycles/{cycle.cycle_id}/entries", BANK_A)
    assert response.status_code == 409
    assert json.loads(response.text)["code"] == "entry_tree_mismatch"
