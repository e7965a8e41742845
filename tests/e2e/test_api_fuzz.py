"""Schemathesis against the app's own OpenAPI schema: every route, with valid keys.

Any 5xx or a response that violates the declared schema fails the run, so each route
added later is fuzzed too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database

PEPPER = Settings().api_key_pepper.get_secret_value().encode()


@pytest.fixture
def fuzz_keys(database: Database) -> dict[str, str]:
    with database.session() as session:
        return {
            "admin": create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER),
            "app": create_api_key(session, Role.LENDER_APP, pepper=PEPPER),
            "auditor": create_api_key(session, Role.AUDITOR, pepper=PEPPER),
            "partner": create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=1),
        }


def _key_for(path: str, keys: dict[str, str]) -> str:
    if path.startswith("/v1/partner"):
        return keys["partner"]
    if path.startswith("/v1/audit"):
        return keys["auditor"]
    if "/purchases" in path or "/repayments" in path or "/drawdowns" in path:
        return keys["app"]
    return keys["admin"]


# The operations are fuzzed in shards so the test workers share the load evenly.
SHARDS = 4


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_route_answers_5xx_or_breaks_its_schema(
    database: Database, tmp_path: Path, fuzz_keys: dict[str, str], shard: int
) -> None:
    app = create_app(Settings(data_dir=tmp_path), database=database)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= SHARDS, "the schema lists too few operations"
    for operation in operations[shard::SHARDS]:
        _fuzz(operation, {"Authorization": f"Bearer {_key_for(operation.path, fuzz_keys)}"})


ROUTE_EXAMPLES = 15
"""Examples per route in CI (115 routes on two databases); `thorough` takes its own count."""
STREAM_EXAMPLES = 3
"""An endless event stream (the partner feed) holds each example open until the test
transport gives up on it (about 3 s), so streams are fuzzed with a few examples only."""


def _is_stream(operation: Any) -> bool:
    content = operation.definition.raw.get("responses", {}).get("200", {}).get("content", {})
    return "text/event-stream" in content


def _fuzz(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )

    if _is_stream(operation):
        call = settings(max_examples=STREAM_EXAMPLES)(call)
    elif os.environ.get("HYPOTHESIS_PROFILE") == "ci":
        call = settings(max_examples=ROUTE_EXAMPLES)(call)
    call()


def test_the_fuzzer_catches_a_route_that_fails_with_5xx(database: Database, tmp_path: Path) -> None:
    from fastapi import APIRouter

    broken = APIRouter()

    @broken.get("/v1/_broken")
    def explode(n: int) -> dict[str, int]:
        return {"n": 100 // (n - n)}

    app = create_app(Settings(data_dir=tmp_path), database=database)
    app.include_router(broken)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = next(
        result.ok() for result in schema.get_all_operations() if result.ok().path == "/v1/_broken"
    )
    with pytest.raises(Exception, match=r"Server error|division"):
        _fuzz(operation, {})


def _odd_path_values() -> list[str]:
    """Path segments that once answered 500 (`²`: str.isdigit but not int) and friends:
    other scripts' digits, fullwidth, superscripts, signs, spaces, huge numbers."""
    return [
        "²", "٣", "१२", "１２", "³⁴", "߁", "𝟙", "+1", " 1", "1_0", "0", "-1", "01",
        "9" * 19, "9" * 20, "1" * 4301, "18446744073709551616", "1e3", "0x10", "ǅ",
    ]  # fmt: skip


def test_path_parameters_with_non_ascii_digits_or_huge_values_never_answer_5xx(
    database: Database, tmp_path: Path, fuzz_keys: dict[str, str]
) -> None:
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app, raise_server_exceptions=False) as client:
        _fuzz_path_ids(app, client, fuzz_keys)


def _fuzz_path_ids(app: Any, client: TestClient, fuzz_keys: dict[str, str]) -> None:
    operations = [
        (method, path)
        for path, item in app.openapi()["paths"].items()
        if "{" in path
        for method in item
    ]
    assert len(operations) >= 10

    def call(method: str, path: str, value: str) -> None:
        url = path
        for name in [p.split("}")[0] for p in path.split("{")[1:]]:
            url = url.replace("{" + name + "}", quote(value, safe=""))
        headers = {
            "Authorization": f"Bearer {_key_for(path, fuzz_keys)}",
            "Idempotency-Key": "fuzz-path",
        }
        response = client.request(method.upper(), url, headers=headers, json={})
        assert response.status_code < 500, (method, url, response.status_code, response.text)

    for method, path in operations:
        for value in _odd_path_values():
            call(method, path, value)

    @settings(max_examples=40)
    @given(
        value=st.one_of(
            st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=25),
            st.integers(min_value=2**62, max_value=2**200).map(str),
        ),
        index=st.integers(min_value=0, max_value=len(operations) - 1),
    )
    def random_values(value: str, index: int) -> None:
        call(*operations[index], value)

    random_values()
