"""One error root for the whole project.

Expected failures are `CreditNetError` subclasses with a stable `code`, an HTTP
status and optional `fields` (which request field was wrong). The API maps them to
RFC 9457 problem+json in one handler; nothing below `routes/` raises HTTPException.
Messages must never carry personal data: name the field, not its value.
"""

from __future__ import annotations

from typing import Any


class CreditNetError(Exception):
    """Root of every expected failure. `code` is stable and machine-readable."""

    code: str = "creditnet_error"
    status: int = 500
    title: str = "CreditNet error"

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

    def to_problem(self) -> dict[str, Any]:
        """The RFC 9457 body (without `instance`, which the API adds)."""
        body: dict[str, Any] = {
            "type": f"https://creditnet.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


class CreditNetValueError(CreditNetError, ValueError):
    """Input that is well-formed but invalid (422)."""

    code = "invalid_value"
    status = 422
    title = "Invalid value"


class NotFoundError(CreditNetError, LookupError):
    code = "not_found"
    status = 404
    title = "Not found"


class ConflictError(CreditNetError):
    """The request is valid but the current state refuses it (409)."""

    code = "conflict"
    status = 409
    title = "Conflict"


class AuthenticationError(CreditNetError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class ForbiddenError(CreditNetError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class ConfigurationError(CreditNetError):
    """The node cannot start as configured (bad setting, missing tool, busy port)."""

    code = "configuration"
    status = 500
    title = "Configuration error"


class ChainError(CreditNetError):
    """The chain is unreachable or answered something the node cannot accept."""

    code = "chain_unavailable"
    status = 503
    title = "Chain unavailable"


class ContractBuildError(CreditNetError):
    """The Solidity compiler rejected the sources; `detail` carries file and line."""

    code = "contract_build"
    status = 500
    title = "Contract build failed"
