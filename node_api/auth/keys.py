"""API keys: one per principal, with a role; only a hash of the secret is stored.

A key reads `cn_<key_id>_<secret>`. The secret has 256 bits of entropy, so one
keyed SHA-256 (peppered with the node secret) is enough; no slow KDF is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import Field, Session, SQLModel, select

from node_api.kernel.errors import AuthenticationError, CreditNetValueError

PRINCIPAL_CACHE_TTL_S = 30.0
PRINCIPAL_REFRESH_AHEAD_S = 5.0


class Role(StrEnum):
    LENDER_ADMIN = "lender_admin"
    LENDER_APP = "lender_app"
    PARTNER = "partner"
    AUDITOR = "auditor"


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    key_id: str = Field(primary_key=True, max_length=32)
    secret_hash: str = Field(max_length=64)
    role: str = Field(max_length=32)
    partner_id: int | None = Field(default=None)
    label: str = Field(default="", max_length=200)
    created_at: datetime
    revoked_at: datetime | None = None


class Principal(SQLModel):
    """Who is calling: the key id, role and (for partners) the partner they speak for."""

    key_id: str
    role: Role
    partner_id: int | None = None


class PrincipalCache:
    """Verified keys for a short while, so the hot path does not hit the key table each call.

    A revoked key stops working within `PRINCIPAL_CACHE_TTL_S` seconds. A key in use is
    verified again before its entry expires (`lookup`, in its last
    `PRINCIPAL_REFRESH_AHEAD_S` seconds; one refresh at a time per key), so under steady
    traffic the entry never lapses: otherwise every request in flight at the moment it
    expired would miss together and go to the key table at once.
    """

    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        self._refreshing: set[bytes] = set()

    def get(self, presented: str) -> Principal | None:
        return self.lookup(presented)[0]

    def lookup(self, presented: str) -> tuple[Principal | None, bool]:
        """The key's principal if its entry is valid, and whether the caller has just
        claimed its refresh (True once, until `put`, `evict` or `end_refresh`, while the
        entry is valid but in its last `PRINCIPAL_REFRESH_AHEAD_S` seconds): the caller
        then verifies the key again and calls `put` or `evict`."""
        digest = _digest(presented)
        entry = self._entries.get(digest)
        if entry is None:
            return None, False
        left_s = entry[0] - _monotonic()
        if left_s < 0:
            return None, False
        if left_s > PRINCIPAL_REFRESH_AHEAD_S or digest in self._refreshing:
            return entry[1], False
        self._refreshing.add(digest)
        return entry[1], True

    def put(self, presented: str, principal: Principal) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        digest = _digest(presented)
        self._entries[digest] = (_monotonic() + PRINCIPAL_CACHE_TTL_S, principal)
        self._refreshing.discard(digest)

    def evict(self, presented: str) -> None:
        """Forget one presented key (it no longer verifies)."""
        digest = _digest(presented)
        self._entries.pop(digest, None)
        self._refreshing.discard(digest)

    def is_refreshing(self, presented: str) -> bool:
        return _digest(presented) in self._refreshing

    def end_refresh(self, presented: str) -> None:
        """A refresh ended without an answer (e.g. the database was unreachable): the entry
        stays until it expires and the next request may try again."""
        self._refreshing.discard(_digest(presented))

    def evict_key(self, key_id: str) -> None:
        """Forget a key at once in this process (it was revoked here)."""
        for digest, (_expires, principal) in list(self._entries.items()):
            if principal.key_id == key_id:
                self._entries.pop(digest, None)


def _monotonic() -> float:
    """The cache's clock (a seam: tests move it without moving the event loop's)."""
    return time.monotonic()


def _digest(presented: str) -> bytes:
    return hashlib.sha256(presented.encode()).digest()


def _hash_secret(secret: str, pepper: bytes) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def create_api_key(
    session: Session,
    role: Role,
    *,
    pepper: bytes,
    partner_id: int | None = None,
    label: str = "",
    now: datetime | None = None,
) -> str:
    """Store a new key and return it in full; it is shown once and never stored."""
    if role is Role.PARTNER and partner_id is None:
        raise CreditNetValueError("a partner key needs a partner id", field="partner_id")
    if role is not Role.PARTNER and partner_id is not None:
        raise CreditNetValueError("only partner keys carry a partner id", field="partner_id")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            key_id=key_id,
            secret_hash=_hash_secret(secret, pepper),
            role=role.value,
            partner_id=partner_id,
            label=label,
            created_at=now or datetime.now(UTC),
        )
    )
    session.flush()
    return f"cn_{key_id}_{secret}"


def parse_api_key(presented: str) -> tuple[str, str]:
    """Split `cn_<key_id>_<secret>`; raise AuthenticationError on anything else."""
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != "cn" or not key_id or not secret:
        raise AuthenticationError("malformed API key")
    return key_id, secret


def verify_api_key(session: Session, presented: str, *, pepper: bytes) -> Principal:
    """The principal for a presented key, or AuthenticationError (never says why in detail)."""
    key_id, secret = parse_api_key(presented)
    row = session.get(ApiKey, key_id)
    if (
        row is None
        or row.revoked_at is not None
        or not hmac.compare_digest(row.secret_hash, _hash_secret(secret, pepper))
    ):
        raise AuthenticationError("invalid or revoked API key")
    return Principal(key_id=row.key_id, role=Role(row.role), partner_id=row.partner_id)


def revoke_api_key(session: Session, key_id: str, *, now: datetime | None = None) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now or datetime.now(UTC)
    session.add(row)
    return True


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(ApiKey.created_at)))  # type: ignore[arg-type]
