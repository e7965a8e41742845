"""Idempotency for every mutating endpoint: key + request hash + the first response.

A client sends `Idempotency-Key: <key>` with every mutating request. The first request
with a key claims it inside the same transaction that does the work, and stores its
response there; so the key, the effects and the stored response commit together or not
at all. A replay (same key, same request) returns the stored response and changes
nothing; the same key with a different request is refused with 409.

What is stored is the response as the HTTP layer rendered it (status and JSON body):
the domain hands its typed outcome, or its `CreditNetError`, to a `Renderer` that the
HTTP layer injects, so this module knows nothing of HTTP beyond that pair. Stored are
successes and state-dependent refusals (409, e.g. a declined purchase), which a retry
must see again. Input errors (400/404/422) change nothing and store nothing, so the
client may fix the request and retry with the same key.

Keys are scoped by caller (`scope`, the API key id): two clients cannot collide. On
PostgreSQL a concurrent duplicate waits on the first claim's row until it commits and
then replays it. Claims are taken in (scope, key) order, first of every lock (see
`node_api.ledger.sql`).

Two ways in: `run_idempotent` wraps one operation in a SQLModel session (cool paths);
`claim_keys` / `store_or_release` work on many keys in one transaction (the
group-committed hot path, through `AsyncConnection.run_sync`). Every claim is built by
`key_claim`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

import orjson
from pydantic import JsonValue
from sqlalchemy import (
    Column,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    select,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel

from node_api.kernel.errors import ConflictError, CreditNetError, CreditNetValueError
from node_api.ledger.sql import Row, begin_write, bulk_insert, claim_rows

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_CHARS = 255
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
_STORED_STATUSES = frozenset({409})
"""Error statuses whose response is stored and replayed (besides every 2xx)."""

idempotency_table = Table(
    "idempotency_record",
    SQLModel.metadata,
    Column("scope", String(64), primary_key=True),
    Column("idempotency_key", String(KEY_MAX_CHARS), primary_key=True),
    Column("request_hash", String(64), nullable=False),
)
"""The claims. Inserted once, never updated: a claim updated with its response left a
dead row version per request, and on the hot path PostgreSQL's cost per request
doubled within a minute until vacuum."""

idempotency_response_table = Table(
    "idempotency_response",
    SQLModel.metadata,
    Column("scope", String(64), primary_key=True),
    Column("idempotency_key", String(KEY_MAX_CHARS), primary_key=True),
    Column("status_code", SmallInteger, nullable=False),
    Column("response_body", Text, nullable=False),
)
"""The stored response of each claim, written in the claim's transaction."""


class IdempotencyKeyError(CreditNetValueError):
    """The header is missing or malformed."""

    code = "idempotency_key_invalid"


class IdempotencyConflictError(ConflictError):
    """The key was used before with a different request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """One request's claim on a key: who asks, the key, and what the request was."""

    scope: str
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A rendered response: what is stored for a key and answered to its replays."""

    status_code: int
    body: dict[str, JsonValue]
    """The JSON object answered (a response model's dump or an RFC 9457 problem)."""
    replayed: bool = False


Outcome = TypeVar("Outcome", contravariant=True)
Result = TypeVar("Result")


class Renderer(Protocol[Outcome]):
    """Renders a domain outcome, or the `CreditNetError` that refused it, as the response
    to store and answer. The HTTP layer provides it."""

    def __call__(self, outcome: Outcome | CreditNetError, /) -> StoredResponse: ...


class ClaimStatus(Enum):
    CLAIMED = "claimed"
    """This transaction owns the key: do the work and store the response."""
    REPLAY = "replay"
    """Answered before: return `stored`."""
    CONFLICT = "conflict"
    """Used before for a different request."""


@dataclass(frozen=True, slots=True)
class ClaimResult:
    status: ClaimStatus
    stored: StoredResponse | None = None


def compute_request_hash(method: str, path: str, body: Any) -> str:
    """SHA-256 of the method, path and canonical JSON body (sorted keys).

    orjson refuses integers beyond 64 bits, which a free-form JSON body (an uploaded
    scorecard) may hold; such a body is hashed from the standard library's canonical form
    instead, so the claim never fails and the route answers the body with its own 4xx."""
    document = [method.upper(), path, body]
    try:
        payload = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        payload = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    return hashlib.sha256(payload).hexdigest()


def key_claim(scope: str, key: str, path: str, payload: Any) -> KeyClaim:
    """The claim of caller `scope` on `key` for a POST to `path` with JSON `payload`."""
    return KeyClaim(scope, key, compute_request_hash("POST", path, payload))


def conflict_error() -> IdempotencyConflictError:
    """The refusal of a key used before for a different request."""
    return IdempotencyConflictError(
        f"this {IDEMPOTENCY_HEADER} was used for a different request", field=IDEMPOTENCY_HEADER
    )


def is_idempotency_key(key: str) -> bool:
    """Whether `key` is well-formed (1 to 255 visible ASCII characters)."""
    return _KEY_PATTERN.fullmatch(key) is not None


def check_idempotency_key(key: str | None) -> str:
    """The key if well-formed (1 to 255 visible ASCII characters), else IdempotencyKeyError."""
    if key is None:
        raise IdempotencyKeyError(
            f"the {IDEMPOTENCY_HEADER} header is required on this request", field=IDEMPOTENCY_HEADER
        )
    if _KEY_PATTERN.fullmatch(key) is None:
        raise IdempotencyKeyError(
            f"the {IDEMPOTENCY_HEADER} header must be 1 to {KEY_MAX_CHARS} visible ASCII "
            "characters",
            field=IDEMPOTENCY_HEADER,
        )
    return key


def is_stored_status(status_code: int) -> bool:
    """Whether a response with this status is stored for replay."""
    return 200 <= status_code < 300 or status_code in _STORED_STATUSES


def claim_keys(conn: Connection, claims: Sequence[KeyClaim]) -> list[ClaimResult]:
    """Claim every key for this transaction, in (scope, key) order; one result per claim.

    Claims must be distinct keys. The caller's transaction must end by storing a
    response for (or releasing) every CLAIMED key before it commits.
    """
    if len({(claim.scope, claim.key) for claim in claims}) != len(claims):
        raise ValueError("claims must name distinct keys")
    if not claims:
        return []
    begin_write(conn)
    rows = [
        {"scope": c.scope, "idempotency_key": c.key, "request_hash": c.request_hash} for c in claims
    ]
    inserted = claim_rows(conn, idempotency_table, rows, ("scope", "idempotency_key"))
    claimed = {(str(row[0]), str(row[1])) for row in inserted}
    earlier = _fetch_records(conn, [c for c in claims if (c.scope, c.key) not in claimed])
    return classify_claims(claims, claimed, earlier)


EarlierClaim = tuple[str, int | None, str | None]
"""A key's earlier claim: its request hash, and its stored status and body (None while
the claiming transaction has stored nothing)."""


def classify_claims(
    claims: Sequence[KeyClaim],
    claimed: set[tuple[str, str]],
    earlier: dict[tuple[str, str], EarlierClaim],
) -> list[ClaimResult]:
    """Each claim's result, given the (scope, key) pairs this transaction inserted and
    the earlier claims of the others (the one rule for `claim_keys` and the hot path of
    PostgreSQL, which claims in a database function)."""
    results = []
    for claim in claims:
        if (claim.scope, claim.key) in claimed:
            results.append(ClaimResult(ClaimStatus.CLAIMED))
            continue
        record = earlier.get((claim.scope, claim.key))
        if record is None or record[0] != claim.request_hash or record[1] is None:
            results.append(ClaimResult(ClaimStatus.CONFLICT))
        else:
            body = orjson.loads(record[2]) if record[2] else {}
            results.append(ClaimResult(ClaimStatus.REPLAY, StoredResponse(record[1], body, True)))
    return results


def _fetch_records(
    conn: Connection, claims: Sequence[KeyClaim]
) -> dict[tuple[str, str], EarlierClaim]:
    if not claims:
        return {}
    claimed, stored = idempotency_table, idempotency_response_table
    statement = (
        select(
            claimed.c.scope,
            claimed.c.idempotency_key,
            claimed.c.request_hash,
            stored.c.status_code,
            stored.c.response_body,
        )
        .select_from(
            claimed.outerjoin(
                stored,
                (stored.c.scope == claimed.c.scope)
                & (stored.c.idempotency_key == claimed.c.idempotency_key),
            )
        )
        .where(
            tuple_(claimed.c.scope, claimed.c.idempotency_key).in_(
                [(c.scope, c.key) for c in claims]
            )
        )
    )
    return {
        (str(scope), str(key)): (str(request_hash), status, body)
        for scope, key, request_hash, status, body in conn.execute(statement)
    }


def encode_body(body: dict[str, JsonValue]) -> str:
    """The stored text of a response body."""
    return orjson.dumps(body).decode()


def compute_response_rows(
    responses: Sequence[tuple[KeyClaim, int, dict[str, JsonValue]]],
) -> list[Row]:
    """The `idempotency_response` rows of each claimed key's response (status, JSON body)."""
    return [
        {
            "scope": claim.scope,
            "idempotency_key": claim.key,
            "status_code": status,
            "response_body": encode_body(body),
        }
        for claim, status, body in responses
    ]


def store_responses(
    conn: Connection, responses: Sequence[tuple[KeyClaim, int, dict[str, JsonValue]]]
) -> None:
    """Store the response of each key this transaction claimed (status, JSON body)."""
    bulk_insert(conn, idempotency_response_table, compute_response_rows(responses))


@dataclass(slots=True)
class ResponseAlong(Generic[Result]):
    """A claimed key's response that the operation renders itself, before its last write,
    to store it with its own rows (in one statement); then the caller
    (`http.idempotency.run_once_committed`) stores nothing more. `rows` is called at most
    once, with the operation's result; nothing is stored along if it is never called."""

    claim: KeyClaim
    render: Renderer[Result]
    response: StoredResponse | None = None

    def rows(self, result: Result) -> list[Row]:
        """Render `result` (kept as `response`) and return its row to write."""
        if self.response is not None:
            raise RuntimeError("a response is stored along once")
        self.response = self.render(result)
        return compute_response_rows([(self.claim, self.response.status_code, self.response.body)])


def store_or_release(conn: Connection, done: Sequence[tuple[KeyClaim, StoredResponse]]) -> None:
    """Store each claimed key's response if it is kept for replay, else give the key back."""
    store_responses(
        conn,
        [(claim, r.status_code, r.body) for claim, r in done if is_stored_status(r.status_code)],
    )
    release_keys(conn, [claim for claim, r in done if not is_stored_status(r.status_code)])


def release_keys(conn: Connection, claims: Sequence[KeyClaim]) -> None:
    """Give back claimed keys whose request changed nothing (input errors)."""
    if not claims:
        return
    table = idempotency_table
    conn.execute(
        delete(table).where(
            and_(
                table.c.scope == bindparam("b_scope"),
                table.c.idempotency_key == bindparam("b_key"),
            )
        ),
        [{"b_scope": claim.scope, "b_key": claim.key} for claim in claims],
    )


def run_idempotent(
    session: Session,
    claim: KeyClaim,
    operation: Callable[[], Result],
    render: Renderer[Result],
) -> StoredResponse:
    """Run `operation` once per key inside the session's transaction.

    `render` turns its outcome into the response to store. A replay returns the stored
    response without running it; a different request under the same key raises
    IdempotencyConflictError. A CreditNetError from `operation` whose rendering is kept
    for replay (a 409) is stored and returned (its effects rolled back to a savepoint);
    any other error releases the key and propagates. The caller commits the session
    afterwards.
    """
    conn = session.connection()
    result = claim_keys(conn, [claim])[0]
    if result.status is ClaimStatus.REPLAY and result.stored is not None:
        return result.stored
    if result.status is ClaimStatus.CONFLICT:
        raise conflict_error()
    try:
        with session.begin_nested():
            outcome = operation()
    except CreditNetError as error:
        response = render(error)
        if not is_stored_status(response.status_code):
            release_keys(conn, [claim])
            raise
    else:
        response = render(outcome)
    store_responses(conn, [(claim, response.status_code, response.body)])
    return response
