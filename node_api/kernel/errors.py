"""One error root for the whole project.

Expected failures are `CreditNetError` subclasses with a stable `code`, a message
(`detail`), optionally the request `field` that was wrong and `extra` facts. They know
nothing of HTTP: the HTTP layer maps codes to statuses and titles in one table
(`node_api.http.problems`) and renders RFC 9457 problem+json; nothing below `routes/`
raises HTTPException. Messages must never carry personal data: name the field, not its
value.
"""

from __future__ import annotations

from typing import Any


class CreditNetError(Exception):
    """Root of every expected failure. `code` is stable and machine-readable."""

    code: str = "creditnet_error"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code
        self.extra = extra


class CreditNetValueError(CreditNetError, ValueError):
    """Input that is well-formed but invalid."""

    code = "invalid_value"


class NotFoundError(CreditNetError, LookupError):
    code = "not_found"


class ConflictError(CreditNetError):
    """The request is valid but the current state refuses it."""

    code = "conflict"


class AuthenticationError(CreditNetError):
    code = "unauthenticated"


class ForbiddenError(CreditNetError):
    code = "forbidden"


class ConfigurationError(CreditNetError):
    """The node cannot start as configured (bad setting, missing tool, busy port)."""

    code = "configuration"


class ChainError(CreditNetError):
    """The chain is unreachable or answered something the node cannot accept."""

    code = "chain_unavailable"


class ContractBuildError(CreditNetError):
    """The Solidity compiler rejected the sources; `detail` carries file and line."""

    code = "contract_build"
