"""The one table from error codes to HTTP statuses and titles."""

from __future__ import annotations

import pytest

from node_api.http.problems import PROBLEM_KINDS, problem_body, problem_status
from node_api.idempotency import IdempotencyConflictError, IdempotencyKeyError
from node_api.kernel.errors import (
    ChainError,
    ConflictError,
    CreditNetError,
    CreditNetValueError,
    NotFoundError,
)
from node_api.lending.core.decide import UseDeclined
from node_api.onboarding.pii import PiiVaultError
from oracles.audit.export_reader import ExportUnavailableError
from oracles.signers import QuorumNotReachedError, ReportRefusedError, SignerUnavailableError


class _Unlisted(CreditNetError):
    code = "not_in_the_table"


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (CreditNetValueError("x"), 422, "Invalid value"),
        (CreditNetValueError("x", code="wrong_currency"), 422, "Invalid value"),
        (IdempotencyKeyError("x"), 400, "Invalid idempotency key"),
        (IdempotencyConflictError("x"), 409, "Conflict"),
        (NotFoundError("x"), 404, "Not found"),
        (ConflictError("x", code="line_has_balance"), 409, "Conflict"),
        (UseDeclined("x", code="over_limit"), 409, "Declined"),
        (PiiVaultError("x"), 500, "PII vault error"),
        (ChainError("x"), 503, "Chain unavailable"),
        (SignerUnavailableError("x"), 503, "Chain unavailable"),
        (ExportUnavailableError("x"), 503, "CreditNet error"),
        (ReportRefusedError("x"), 409, "Report refused"),
        (QuorumNotReachedError("x"), 409, "Quorum not reached"),
        (_Unlisted("x"), 500, "CreditNet error"),
    ],
)
def test_status_and_title_come_from_the_first_listed_code_of_the_mro(
    error: CreditNetError, status: int, title: str
) -> None:
    body = problem_body(error)
    assert (problem_status(error), body["status"], body["title"]) == (status, status, title)


def test_the_problem_body_names_the_code_field_and_extra_facts() -> None:
    error = UseDeclined("too much", field="amount_fen", code="over_limit", limit_path="total")
    assert problem_body(error) == {
        "type": "https://creditnet.dev/problems/over_limit",
        "title": "Declined",
        "status": 409,
        "detail": "too much",
        "code": "over_limit",
        "field": "amount_fen",
        "limit_path": "total",
    }


def test_errors_carry_no_http_status() -> None:
    assert all(not hasattr(CreditNetError, name) for name in ("status", "title", "to_problem"))
    assert PROBLEM_KINDS[CreditNetError.code].status == 500
