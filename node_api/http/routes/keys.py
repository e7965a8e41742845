"""`/v1/keys`: the lender's administrators create, list and revoke API keys.

The same keys as `creditnet keys ...`: one per principal, only a hash stored. The full
key is in the first response to `POST /v1/keys` only: the response kept for replays of
the same `Idempotency-Key` has `key: null` (a stored response must not be a working
credential), so a client that lost it revokes that key id and creates another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from node_api.auth.keys import ApiKey, Role, list_api_keys, revoke_api_key
from node_api.http.authz import AdminDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.renderers import to_response
from node_api.http.schemas import PROBLEMS, StrictBody
from node_api.http.services import Services
from node_api.idempotency import IDEMPOTENCY_HEADER, StoredResponse
from node_api.kernel.errors import NotFoundError
from node_api.runtime.keys import create_operator_key

router = APIRouter(tags=["keys"])

KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="key id (cn_<key id>_...)")]


class KeyIn(StrictBody):
    role: Role
    partner_id: int | None = Field(
        default=None, strict=True, ge=1, le=2**32 - 1, description="required for role partner"
    )
    label: str = Field(default="", max_length=200, description="who holds it; no personal data")


class KeyOut(BaseModel):
    key_id: str
    role: Role
    partner_id: int | None
    label: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreatedOut(KeyOut):
    key: str | None
    """The full key `cn_<key id>_<secret>` for `Authorization: Bearer`, in the first
    response only (null in replays)."""


def _key_view(row: ApiKey) -> KeyOut:
    return KeyOut(
        key_id=row.key_id,
        role=Role(row.role),
        partner_id=row.partner_id,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _pepper(services: Services) -> bytes:
    return services.settings.api_key_pepper.get_secret_value().encode()


def _fetch_key(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"no key {key_id}; GET /v1/keys lists them", field="key_id")
    return row


@router.post(
    "/v1/keys",
    status_code=201,
    response_model=KeyCreatedOut,
    responses=PROBLEMS,
    summary=f"Create an API key (requires {IDEMPOTENCY_HEADER})",
)
def post_key(body: KeyIn, who: AdminDep, once: OnceDep) -> Response:
    """Create a key for a role; a partner key needs a registered partner (`partner_id`
    from `POST /v1/partners`). The full key is answered once (module docstring)."""
    secret: list[str] = []

    def operation() -> KeyCreatedOut:
        full = create_operator_key(
            once.session,
            body.role,
            pepper=_pepper(once.services),
            partner_id=body.partner_id,
            label=body.label,
        )
        secret.append(full)
        key_id = full.split("_")[1]
        view = _key_view(_fetch_key(once.session, key_id))
        return KeyCreatedOut(**view.model_dump(), key=None)

    stored = once.stored(who, body, 201, operation)
    if secret and not stored.replayed and stored.status_code == 201:
        stored = StoredResponse(stored.status_code, {**stored.body, "key": secret[0]})
    return to_response(stored)


@router.get("/v1/keys", response_model=list[KeyOut], responses=PROBLEMS)
def get_keys(session: SessionDep, who: AdminDep) -> list[KeyOut]:
    """Every key, oldest first: id, role, partner, label, state; never a secret."""
    return [_key_view(row) for row in list_api_keys(session)]


@router.post(
    "/v1/keys/{key_id}/revoke",
    response_model=KeyOut,
    responses=PROBLEMS,
    summary=f"Revoke an API key (requires {IDEMPOTENCY_HEADER})",
)
def post_key_revoke(key_id: KeyId, who: AdminDep, once: OnceDep) -> Response:
    """Revoke a key: at once on this node process, within 30 s on every other one."""

    def operation() -> KeyOut:
        row = _fetch_key(once.session, key_id)
        revoke_api_key(once.session, key_id)
        once.session.flush()
        return _key_view(row)

    stored = once.stored(who, None, 200, operation)
    once.services.principals.evict_key(key_id)
    return to_response(stored)
