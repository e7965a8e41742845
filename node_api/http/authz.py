"""Who may call what: one authentication path and every role set, declared once.

Every route authenticates through `authenticate`: the bearer key from the in-process
principal cache (no thread hop), or on a miss the key table, checked in the threadpool.
Routes declare who may call them with one of the `...Dep` annotations below; the
purchase fast lane, which runs without FastAPI's dependencies, uses `cached_principal`
and `admit` with `OPERATOR_ROLES`, the same functions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from node_api.auth.keys import Principal, Role, verify_api_key
from node_api.http.services import Services, services_of
from node_api.kernel.errors import AuthenticationError, ForbiddenError

ADMIN_ROLES: Final = frozenset({Role.LENDER_ADMIN})
"""The lender's administrators: configuration, products, lines, partners."""
OPERATOR_ROLES: Final = frozenset({Role.LENDER_ADMIN, Role.LENDER_APP})
"""Who acts for customers: applications, uses, repayments, installments, bills."""
READER_ROLES: Final = frozenset({Role.LENDER_ADMIN, Role.LENDER_APP, Role.AUDITOR})
"""Everyone of the lender's side who may read lines, uses, products, the business date."""
EXAMINER_ROLES: Final = frozenset({Role.LENDER_ADMIN, Role.AUDITOR})
"""Who examines the books, decisions, risk and settlement: admins and auditors."""
AUDITOR_ROLES: Final = frozenset({Role.AUDITOR})
PARTNER_ROLES: Final = frozenset({Role.PARTNER})

log = logging.getLogger("creditnet.api")

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer cn_...`")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def cached_principal(services: Services, token: str | None) -> Principal | None:
    """The principal of a recently verified key, without touching the database. Called on
    the event loop: a key whose entry is about to expire is verified again in a worker
    thread meanwhile (see `PrincipalCache`), so busy keys never miss all at once."""
    if token is None:
        return None
    principal, refresh = services.principals.lookup(token)
    if refresh:
        asyncio.get_running_loop().run_in_executor(None, _refresh, services, token)
    return principal


def _refresh(services: Services, token: str) -> None:
    """Verify a cached key again: `put` it back with a new expiry, or evict it if it no
    longer verifies (revoked); on any other error leave it to expire."""
    try:
        verify_token(services, token)
    except AuthenticationError:
        services.principals.evict(token)
    except Exception:
        services.principals.end_refresh(token)
        log.warning("refreshing a cached API key failed", exc_info=True)


def verify_token(services: Services, token: str | None) -> Principal:
    """The principal of a key from the key table (sync: a database read); cached."""
    if not token:
        raise AuthenticationError("an API key is required (Authorization: Bearer cn_...)")
    settings = services.settings
    with services.database.session() as session:
        principal = verify_api_key(
            session, token, pepper=settings.api_key_pepper.get_secret_value().encode()
        )
    services.principals.put(token, principal)
    return principal


async def authenticate(services: Services, token: str | None) -> Principal:
    """The caller: from the principal cache, else verified in the threadpool. 401 if none."""
    principal = cached_principal(services, token)
    if principal is None:
        principal = await run_in_threadpool(verify_token, services, token)
    return principal


def admit(principal: Principal, roles: frozenset[Role]) -> Principal:
    """`principal` if its role is one of `roles`, else 403."""
    if principal.role not in roles:
        raise ForbiddenError(
            f"role {principal.role.value} may not call this; allowed: "
            + ", ".join(sorted(r.value for r in roles))
        )
    return principal


def requires(roles: frozenset[Role]) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only `roles` (async: no threadpool hop on a cache hit)."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        token = None if credentials is None else credentials.credentials
        return admit(await authenticate(services_of(request.app), token), roles)

    return dependency


AdminDep = Annotated[Principal, Depends(requires(ADMIN_ROLES))]
OperatorDep = Annotated[Principal, Depends(requires(OPERATOR_ROLES))]
ReaderDep = Annotated[Principal, Depends(requires(READER_ROLES))]
ExaminerDep = Annotated[Principal, Depends(requires(EXAMINER_ROLES))]
AuditorDep = Annotated[Principal, Depends(requires(AUDITOR_ROLES))]
PartnerDep = Annotated[Principal, Depends(requires(PARTNER_ROLES))]
