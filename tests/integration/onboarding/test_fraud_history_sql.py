"""The SQL fraud history answers exactly as the in-memory reference does."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from node_api.kernel.db import Database
from node_api.onboarding.fraud_history_sql import (
    SqlFraudHistory,
    add_to_blacklist,
    record_application,
)
from node_api.onboarding.ring_links import RingLinkFollower
from node_api.onboarding.tables import ring_link_table
from node_api.risk.fraud_config import AttributeKind, FraudRuleConfig
from node_api.risk.fraud_facts import ApplicationFacts, Gender, gather_signals
from node_api.risk.fraud_memory import InMemoryFraudHistory

START = datetime(2025, 6, 1, tzinfo=UTC)
CONFIG = FraudRuleConfig()


def _h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _random_facts(rng: random.Random, at: datetime) -> ApplicationFacts:
    """Small pools, so identities share phones, devices and IPs often."""
    hashes = {
        AttributeKind.ID: _h(f"id-{rng.randrange(12)}"),
        AttributeKind.PHONE: _h(f"phone-{rng.randrange(10)}"),
        AttributeKind.DEVICE: _h(f"device-{rng.randrange(8)}"),
    }
    if rng.random() < 0.8:
        hashes[AttributeKind.IP] = _h(f"ip-{rng.randrange(4)}")
    return ApplicationFacts(at, hashes, date(1990, 1, 1), Gender.MALE)


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_history_gives_the_in_memory_signals_with_and_without_preload(
    database: Database, seed: int
) -> None:
    rng = random.Random(seed)
    memory = InMemoryFraudHistory(CONFIG)
    rings = RingLinkFollower()
    memory.add_to_blacklist(AttributeKind.DEVICE, [_h("device-3")])
    with database.engine.begin() as conn:
        add_to_blacklist(
            conn, AttributeKind.DEVICE, [_h("device-3")], reason_code="TEST", now=START
        )
    at = START
    for number in range(60):
        at += timedelta(minutes=rng.choice([1, 5, 30, 60, 600, 6_000]))
        facts = _random_facts(rng, at)
        with database.engine.begin() as conn:
            bulk = SqlFraudHistory(conn, rings)
            bulk.preload(facts, CONFIG)
            one_by_one = SqlFraudHistory(conn, rings)
            expected = gather_signals(facts, memory, CONFIG)
            assert gather_signals(facts, bulk, CONFIG) == expected
            assert gather_signals(facts, one_by_one, CONFIG) == expected
            record_application(conn, f"app-{number}", f"cust-{number}", facts, CONFIG)
        memory.record(facts)
    assert any(count > 0 for count in expected.prior_applications.values())


def test_a_new_process_rebuilds_the_ring_index_from_the_link_log(database: Database) -> None:
    first = RingLinkFollower()
    with database.engine.connect() as conn:
        first.sync(conn)  # loads an empty log; later syncs catch up
    chain = [
        ApplicationFacts(START, {AttributeKind.ID: _h(f"p{n}"), AttributeKind.DEVICE: _h(f"d{d}")},
                         date(1990, 1, 1), Gender.MALE)
        for n in range(4) for d in (n, n + 1)
    ]  # fmt: skip
    with database.engine.begin() as conn:
        for number, facts in enumerate(chain):
            record_application(conn, f"a{number}", f"c{number}", facts, CONFIG)
    with database.engine.connect() as conn:
        first.sync(conn)
        late = RingLinkFollower()
        late.sync(conn)
    for follower in (first, late):
        assert follower.peek_component_size(_h("p9"), (_h("d4"),)) == 5


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_a_link_committed_after_a_higher_id_is_still_followed(database: Database) -> None:
    """PostgreSQL hands out ids at insert, not at commit: the follower asks again for gaps."""
    follower = RingLinkFollower()
    row = {"application_id": "x", "kind": "device"}
    slow = database.engine.connect()
    slow_tx = slow.begin()
    slow.execute(
        ring_link_table.insert(),
        [{**row, "identity_hash": _h("slow"), "attribute_hash": _h("shared")}],
    )
    with database.engine.begin() as conn:
        conn.execute(
            ring_link_table.insert(),
            [{**row, "identity_hash": _h("fast"), "attribute_hash": _h("other")}],
        )
    with database.engine.connect() as conn:
        follower.sync(conn)
    assert follower.peek_component_size(_h("new"), (_h("shared"),)) == 1
    slow_tx.commit()
    slow.close()
    with database.engine.connect() as conn:
        follower.sync(conn)
    assert follower.peek_component_size(_h("new"), (_h("shared"),)) == 2
