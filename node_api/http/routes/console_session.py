"""`GET /v1/console/session`: who the presented key is, and where the chain answers.

The console signs in with an API key and shows the views of the key's role; this route
tells it the role (and, for a partner key, the partner), and the chain's id and a JSON-RPC
URL the browser may read the chain from. The node's own RPC URL is suggested only when it
is a loopback address with no credentials (the embedded anvil of `creditnet up`): a
production RPC URL may carry an access token, and the console lets the user enter their
own RPC URL anyway (a partner should read the chain through a node it trusts).
"""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from node_api.auth.keys import Principal, Role
from node_api.http.authz import requires
from node_api.http.schemas import PROBLEMS
from node_api.http.services import ServicesDep

router = APIRouter(tags=["console"])

AnyRoleDep = Annotated[Principal, Depends(requires(frozenset(Role)))]
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class ConsoleSessionOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    key_id: str
    role: str
    """lender_admin, lender_app, partner or auditor: which views the console shows."""
    partner_id: int | None
    """The partner a partner key speaks for (null for other roles)."""
    chain_id: int | None
    """The chain the node is attached to (null when it is attached to none)."""
    rpc_url_suggested: str | None
    """A JSON-RPC URL for the browser: the node's own only when it is a loopback address
    without credentials (the embedded anvil); otherwise null and the user enters one."""


def suggest_rpc_url(rpc_url: str | None) -> str | None:
    """`rpc_url` when it is safe to show: http(s), a loopback host, no user or password,
    no query (module doc); else None."""
    if not rpc_url:
        return None
    parts = urlsplit(rpc_url)
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return None
    if parts.query or parts.hostname not in LOOPBACK_HOSTS:
        return None
    return rpc_url


@router.get(
    "/v1/console/session",
    name="console_session_get",
    response_model=ConsoleSessionOut,
    responses=PROBLEMS,
)
async def get_console_session(services: ServicesDep, who: AnyRoleDep) -> ConsoleSessionOut:
    """The presented key's role and partner, the chain id and a browser RPC URL."""
    chain = services.chain
    return ConsoleSessionOut(
        key_id=who.key_id,
        role=who.role.value,
        partner_id=who.partner_id,
        chain_id=None if chain is None else chain.chain_id,
        rpc_url_suggested=None if chain is None else suggest_rpc_url(chain.rpc_url),
    )
