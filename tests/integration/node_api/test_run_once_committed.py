"""`run_once_committed` (the decision route's idempotency without a savepoint) keeps the
guarantees of `run_idempotent` plus a commit, on both databases: effects, claim and stored
response commit together; a replay answers the stored response and changes nothing; a
stored refusal (409) keeps no effect of the attempt; an input error keeps nothing, not
even the claim."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.http.idempotency import run_once_committed
from node_api.http.renderers import JsonRenderer
from node_api.idempotency import (
    IdempotencyConflictError,
    ResponseAlong,
    idempotency_response_table,
    idempotency_table,
    key_claim,
)
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.ledger.schema import business_date_table
from node_api.ledger.sql import bulk_insert

DAY = date(2025, 6, 30)


class Out(BaseModel):
    as_of: str


def _counts(database: Database) -> tuple[int, int, date | None]:
    with database.engine.connect() as conn:
        claims = conn.execute(select(func.count()).select_from(idempotency_table)).scalar_one()
        stored = conn.execute(
            select(func.count()).select_from(idempotency_response_table)
        ).scalar_one()
        return int(claims), int(stored), fetch_business_date(conn)


Operation = Callable[[Connection, object, ResponseAlong[Any] | None], Out]


def _writing(then: Callable[[], None] | None = None, *, along: bool = False) -> Operation:
    """An operation that sets the business date, then raises what `then` raises; with
    `along`, it writes its response's row itself when offered the chance."""

    def operation(conn: Connection, _value: object, response: ResponseAlong[Any] | None) -> Out:
        set_business_date(conn, DAY)
        out = Out(as_of=DAY.isoformat())
        if along and response is not None:
            bulk_insert(conn, idempotency_response_table, response.rows(out))
        if then is not None:
            then()
        return out

    return operation


def test_effects_claim_and_response_commit_together_and_replay(database: Database) -> None:
    claim = key_claim("caller", "k-1", "/v1/things", {"a": 1})
    phases: dict[str, float] = {}
    first = run_once_committed(database, claim, _writing(), JsonRenderer(201), phases)
    assert (first.status_code, first.body, first.replayed) == (201, {"as_of": "2025-06-30"}, False)
    assert set(phases) == {"commit"}
    assert _counts(database) == (1, 1, DAY)

    def must_not_run(_conn: Connection, _value: object, _along: object) -> Out:
        raise AssertionError("a replay must not run the operation")

    replay = run_once_committed(database, claim, must_not_run, JsonRenderer(201))
    assert (replay.status_code, replay.body, replay.replayed) == (201, first.body, True)
    other = key_claim("caller", "k-1", "/v1/things", {"a": 2})
    with pytest.raises(IdempotencyConflictError):
        run_once_committed(database, other, must_not_run, JsonRenderer(201))
    assert _counts(database) == (1, 1, DAY)


def test_a_stored_refusal_keeps_the_claim_and_response_but_no_effect(database: Database) -> None:
    attempts: list[int] = []

    def refuse() -> None:
        attempts.append(1)
        raise ConflictError("refused", field="thing", code="declined")

    claim = key_claim("caller", "k-2", "/v1/things", {"a": 1})
    refused = run_once_committed(database, claim, _writing(refuse), JsonRenderer(201))
    assert refused.status_code == 409 and refused.body["code"] == "declined"
    assert len(attempts) == 2  # once without a savepoint, once under run_idempotent's
    assert _counts(database) == (1, 1, None)
    replay = run_once_committed(database, claim, _writing(refuse), JsonRenderer(201))
    assert (replay.status_code, replay.body, replay.replayed) == (409, refused.body, True)
    assert len(attempts) == 2


def test_an_input_error_keeps_nothing_and_the_key_can_be_used_again(database: Database) -> None:
    def invalid() -> None:
        raise CreditNetValueError("bad", field="thing")

    claim = key_claim("caller", "k-3", "/v1/things", {"a": 1})
    with pytest.raises(CreditNetValueError):
        run_once_committed(database, claim, _writing(invalid), JsonRenderer(201))
    assert _counts(database) == (0, 0, None)
    fixed = run_once_committed(database, claim, _writing(), JsonRenderer(201))
    assert fixed.status_code == 201 and not fixed.replayed
    assert _counts(database) == (1, 1, DAY)


def test_an_unexpected_error_keeps_nothing(database: Database) -> None:
    def crash() -> None:
        raise RuntimeError("boom")

    claim = key_claim("caller", "k-4", "/v1/things", {"a": 1})
    with pytest.raises(RuntimeError):
        run_once_committed(database, claim, _writing(crash), JsonRenderer(201))
    assert _counts(database) == (0, 0, None)


_AS_OF = select(business_date_table.c.as_of).where(business_date_table.c.id == 1).scalar_subquery()


def test_the_operation_gets_the_value_read_along_with_the_claim(database: Database) -> None:
    with database.engine.begin() as conn:
        set_business_date(conn, DAY)
    seen: list[object] = []

    def operation(_conn: Connection, value: object, _along: object) -> Out:
        seen.append(value)
        if len(seen) == 1:
            raise ConflictError("refused", code="declined")  # then again, in a session
        return Out(as_of=str(value))

    claim = key_claim("caller", "k-5", "/v1/things", {"a": 1})
    answer = run_once_committed(database, claim, operation, JsonRenderer(201), read_along=_AS_OF)
    assert seen == [DAY, DAY]
    assert answer.status_code == 201 and answer.body == {"as_of": "2025-06-30"}
    replay = run_once_committed(database, claim, operation, JsonRenderer(201), read_along=_AS_OF)
    assert replay.replayed and len(seen) == 2


def test_a_response_stored_along_is_stored_once_and_replayed(database: Database) -> None:
    claim = key_claim("caller", "k-6", "/v1/things", {"a": 1})
    first = run_once_committed(database, claim, _writing(along=True), JsonRenderer(201))
    assert (first.status_code, first.body, first.replayed) == (201, {"as_of": "2025-06-30"}, False)
    assert _counts(database) == (1, 1, DAY)
    replay = run_once_committed(database, claim, _writing(along=True), JsonRenderer(201))
    assert (replay.status_code, replay.body, replay.replayed) == (201, first.body, True)


def test_a_refusal_after_the_response_was_written_along_keeps_only_the_refusal(
    database: Database,
) -> None:
    """The attempt's rows (its response's too) go with its transaction; the refusal is
    stored by the second attempt, which is offered no response to write along."""
    offered: list[bool] = []

    def operation(conn: Connection, value: object, along: ResponseAlong[Any] | None) -> Out:
        offered.append(along is not None)
        return _writing(refuse, along=True)(conn, value, along)

    def refuse() -> None:
        raise ConflictError("refused", field="thing", code="declined")

    claim = key_claim("caller", "k-7", "/v1/things", {"a": 1})
    refused = run_once_committed(database, claim, operation, JsonRenderer(201))
    assert refused.status_code == 409 and offered == [True, False]
    assert _counts(database) == (1, 1, None)
    with database.engine.connect() as conn:
        status = conn.execute(select(idempotency_response_table.c.status_code)).scalar_one()
    assert status == 409
