"""The idempotency store on both databases: claims, replays, conflicts, and what a
failed operation leaves behind (nothing)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from node_api.http.problems import problem_status
from node_api.http.renderers import JsonRenderer
from node_api.idempotency import (
    ClaimStatus,
    IdempotencyConflictError,
    KeyClaim,
    check_idempotency_key,
    claim_keys,
    compute_request_hash,
    idempotency_table,
    release_keys,
    run_idempotent,
    store_responses,
)
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.ledger.business_date import fetch_business_date, set_business_date


def _records(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(idempotency_table)).scalar_one())


def test_request_hash_ignores_key_order_but_not_values() -> None:
    assert compute_request_hash("post", "/a", {"x": 1, "y": 2}) == compute_request_hash(
        "POST", "/a", {"y": 2, "x": 1}
    )
    assert compute_request_hash("POST", "/a", {"x": 1}) != compute_request_hash(
        "POST", "/a", {"x": 2}
    )
    assert compute_request_hash("POST", "/a", {"x": 1}) != compute_request_hash(
        "POST", "/b", {"x": 1}
    )


@pytest.mark.parametrize("key", [None, "", "with space", "é", "x" * 256])
def test_RevertWhen_key_is_missing_or_malformed(key: str | None) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        check_idempotency_key(key)
    assert (problem_status(caught.value), caught.value.field) == (400, "Idempotency-Key")


def test_claims_then_replay_and_conflict_in_one_batch_of_keys(database: Database) -> None:
    first = KeyClaim("s", "a", "h1")
    other = KeyClaim("s", "b", "h2")
    with database.engine.begin() as conn:
        statuses = [c.status for c in claim_keys(conn, [first, other])]
        assert statuses == [ClaimStatus.CLAIMED, ClaimStatus.CLAIMED]
        store_responses(conn, [(first, 201, {"id": 1}), (other, 409, {"code": "over_limit"})])
    with database.engine.begin() as conn:
        results = claim_keys(conn, [first, KeyClaim("s", "b", "changed"), KeyClaim("t", "a", "h1")])
    assert results[0].status is ClaimStatus.REPLAY and results[0].stored is not None
    assert (results[0].stored.status_code, results[0].stored.body) == (201, {"id": 1})
    assert results[0].stored.replayed
    assert results[1].status is ClaimStatus.CONFLICT
    assert results[2].status is ClaimStatus.CLAIMED  # another caller's scope


def test_released_claims_leave_no_record(database: Database) -> None:
    claim = KeyClaim("s", "gone", "h")
    with database.engine.begin() as conn:
        claim_keys(conn, [claim])
        release_keys(conn, [claim])
    assert _records(database) == 0


OK = JsonRenderer(200)


class _DateOut(BaseModel):
    as_of: date


def _set_date(session: Any, as_of: date) -> _DateOut:
    set_business_date(session.connection(), as_of)
    return _DateOut(as_of=as_of)


def test_run_idempotent_runs_once_and_replays(database: Database) -> None:
    claim = KeyClaim("s", "k", "h")
    with database.session() as session:
        first = run_idempotent(session, claim, lambda: _set_date(session, date(2025, 3, 1)), OK)
    with database.session() as session:
        again = run_idempotent(session, claim, lambda: _set_date(session, date(2025, 3, 9)), OK)
        assert fetch_business_date(session.connection()) == date(2025, 3, 1)
    assert (again.body, again.replayed, first.replayed) == (first.body, True, False)
    with database.session() as session, pytest.raises(IdempotencyConflictError):
        run_idempotent(session, KeyClaim("s", "k", "other"), dict, OK)


def test_run_idempotent_stores_a_409_and_undoes_its_effects(database: Database) -> None:
    def declined(session: Any) -> dict[str, Any]:
        set_business_date(session.connection(), date(2025, 3, 5))
        raise ConflictError("refused", field="x", code="refused")

    claim = KeyClaim("s", "decline", "h")
    with database.session() as session:
        result = run_idempotent(session, claim, lambda: declined(session), OK)
    assert (result.status_code, result.body["code"]) == (409, "refused")
    with database.session() as session:
        assert fetch_business_date(session.connection()) is None
        assert run_idempotent(session, claim, dict, OK).body["code"] == "refused"


def test_run_idempotent_releases_the_key_on_an_input_error(database: Database) -> None:
    def invalid() -> dict[str, Any]:
        raise CreditNetValueError("bad", field="amount_fen")

    claim = KeyClaim("s", "fixable", "h")
    with pytest.raises(CreditNetValueError), database.session() as session:
        run_idempotent(session, claim, invalid, OK)
    assert _records(database) == 0
