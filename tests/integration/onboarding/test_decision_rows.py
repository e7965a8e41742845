"""The rows a decision writes (one statement on PostgreSQL, several on SQLite) are complete:
the application, its attributes and ring links, its live counts, its agreement terms, the
outbox row that anchors the agreement and the response stored for the idempotency key."""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import func, select

from node_api.idempotency import idempotency_response_table
from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.onboarding.provenance_tables import agreement_terms_table
from node_api.onboarding.tables import (
    application_attribute_table,
    application_table,
    ring_link_table,
)
from node_api.risk.live_monitoring import SCORE_BAND_SERIES, get_shard, live_count_table
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    GOOD_PROFILE,
    Api,
    application_body,
)

APPLICATIONS = 20
"""More applications than live-count shards: at least two share a shard (the upsert's
conflict path adds to an existing row)."""


def test_every_decision_writes_all_its_rows(api: Api, database: Database) -> None:
    profiles = [GOOD_PROFILE, BAD_PROFILE, BORDERLINE_PROFILE]
    answers = []
    for number in range(APPLICATIONS):
        body = application_body(profile=profiles[number % 3], device_id=f"shared-{number % 4}")
        response = api.apply(body)
        assert response.status_code == 201, response.text
        answers.append(response.json())
    ids = [answer["application_id"] for answer in answers]
    approved = {a["application_id"]: a for a in answers if a["decision"] == "approved"}
    assert approved and len(approved) < APPLICATIONS
    with database.engine.connect() as conn:
        stored = {
            row.id: row
            for row in conn.execute(
                select(application_table).where(application_table.c.id.in_(ids))
            )
        }
        assert set(stored) == set(ids)
        for answer in answers:
            row = stored[answer["application_id"]]
            assert (row.decision, row.score, row.credit_line_id, row.agreement_id) == (
                answer["decision"],
                answer["score"],
                answer["credit_line_id"],
                answer["agreement_id"],
            )
            assert row.limits == answer["limits"]
            assert row.reason_codes == answer["reason_codes"]
        attributes = Counter(
            conn.execute(select(application_attribute_table.c.application_id)).scalars()
        )
        assert attributes == dict.fromkeys(ids, 4)  # id number, phone, device, IP
        links = conn.execute(
            select(ring_link_table.c.application_id, ring_link_table.c.kind).order_by(
                ring_link_table.c.id
            )
        ).all()
        assert Counter(row.application_id for row in links) == dict.fromkeys(ids, 2)
        assert [row.kind for row in links[:2]] == ["device", "phone"]  # kind order, id order
        terms = {row.application_id: row for row in conn.execute(select(agreement_terms_table))}
        assert set(terms) == set(approved)
        anchored = {
            payload["agreement_id"]: payload["terms_hash"]
            for payload in conn.execute(select(OUTBOX_TABLE.c.payload)).scalars()
        }
        for application_id, row in terms.items():
            assert row.agreement_id == approved[application_id]["agreement_id"]
            assert anchored[row.agreement_id] == row.terms_hash
        bands = conn.execute(
            select(live_count_table.c.shard, func.sum(live_count_table.c.count))
            .where(live_count_table.c.characteristic == SCORE_BAND_SERIES)
            .group_by(live_count_table.c.shard)
        ).all()
        assert {int(shard): int(count) for shard, count in bands} == Counter(
            get_shard(application_id) for application_id in ids
        )
        stored_responses = [
            (row.status_code, json.loads(row.response_body))
            for row in conn.execute(select(idempotency_response_table))
        ]
        assert sorted(stored_responses, key=lambda r: r[1]["application_id"]) == sorted(
            ((201, answer) for answer in answers), key=lambda r: r[1]["application_id"]
        )
        cells = conn.execute(select(func.sum(live_count_table.c.count))).scalar_one()
        characteristics = len(stored[ids[0]].score_detail["bin_indices"])
        assert cells == APPLICATIONS * (characteristics + 1)


def test_the_largest_statement_stays_within_psycopgs_query_cache() -> None:
    """psycopg converts a statement's placeholders once and caches the result only for
    statements of at most 4096 characters and 50 parameters; beyond, it parses the text
    on every execution (measured: a tenth of the node's time in this statement)."""
    from sqlalchemy.dialects import postgresql

    from node_api.onboarding.decision_rows import _statement

    # 4 attribute kinds, 2 ring links, the terms, the agreement's outbox row, the response
    largest = _statement((1, 4, 2, 1, 1, 1))
    compiled = largest.compile(dialect=postgresql.dialect())
    assert len(str(compiled)) <= 4096
    assert len(compiled.binds) <= 50
