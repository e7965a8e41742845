"""The API explains itself: offline Swagger UI and ReDoc, and an OpenAPI document with
required idempotency keys, clean operation ids, unique model names, units, examples that
validate, and the scorecard's inputs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from node_api.http.app import create_app
from node_api.http.examples import EXAMPLES
from node_api.http.openapi import UNITS, unit_of
from node_api.http.routes.registry import ROUTERS
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.onboarding.policies import DEFAULT_POLICY
from node_api.risk.scorecard import Scorecard

EXTERNAL_URL = re.compile(r"""(?:https?:)?//(?!127\.0\.0\.1|localhost)[A-Za-z0-9.-]+\.[A-Za-z]""")
IMPLEMENTATION_WORDS = (
    "session",
    "threadpool",
    "dependenc",
    "fast lane",
    "hot route",
    "SQL",
    "group commit",
    "worker",
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("openapi")
    app = create_app(
        Settings(data_dir=folder), database=Database(f"sqlite:///{folder / 'unused.db'}")
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_external_host(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert EXTERNAL_URL.search(html) is None, EXTERNAL_URL.search(html)
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", html)
    assert assets, "the page loads no asset"
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000
    assert "/openapi.json" in html


def test_swagger_ui_sends_the_schema_to_no_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_every_idempotent_operation_requires_the_key(document: dict[str, Any]) -> None:
    posts = 0
    for method, path, operation in _operations(document):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "header"}
        if method == "post":
            posts += 1
            if path.endswith("/what-if"):  # prices only; books nothing
                assert "Idempotency-Key" not in headers
                continue
            assert headers["Idempotency-Key"]["required"] is True, path
            assert headers["Idempotency-Key"]["schema"]["maxLength"] == 255
    assert posts >= 23


def test_operation_ids_are_clean_and_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _m, _p, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", operation_id), operation_id
    assert "purchases_create" in ids and "applications_create" in ids
    for _method, path, operation in _operations(document):
        assert operation.get("tags"), path


def test_model_names_are_unique(document: dict[str, Any]) -> None:
    names = document["components"]["schemas"]
    assert not [name for name in names if "__" in name or "-" in name]
    assert {"WhatIfQuoteOut", "PayoffQuoteOut", "WhatIfInstallmentOut", "InstallmentOut"} <= set(
        names
    )


def test_every_amount_rate_and_share_states_its_unit(document: dict[str, Any]) -> None:
    missing = []
    for schema_name, schema in document["components"]["schemas"].items():
        for name, prop in schema.get("properties", {}).items():
            unit = unit_of(name)
            words = [unit[0]] if unit else []
            if name == "rate":
                words = ["ppm", "basis points"]
            if name == "limits" and prop.get("type") == "object":
                words = ["fen"]
            description = prop.get("description", "")
            if words and not all(word in description for word in words):
                missing.append(f"{schema_name}.{name}: {description!r}")
    assert not missing, missing
    assert len(UNITS) == 4


def test_no_description_talks_about_the_implementation(document: dict[str, Any]) -> None:
    texts: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            texts.extend(str(node[key]) for key in ("summary", "description") if key in node)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert len(texts) > 100
    text = "\n".join(texts).lower()
    for word in IMPLEMENTATION_WORDS:
        assert word.lower() not in text, word


def _body_examples(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for _method, path, operation in _operations(document):
        bodies = [("request", operation.get("requestBody"))]
        bodies += [(s, r) for s, r in operation["responses"].items() if s.startswith("2")]
        for where, body in bodies:
            for media_type, content in (body or {}).get("content", {}).items():
                yield f"{operation['operationId']} {where} {media_type}", path, content


def test_every_request_and_response_body_has_an_example(document: dict[str, Any]) -> None:
    missing = [
        where for where, _path, content in _body_examples(document) if "example" not in content
    ]
    assert not missing, missing


def test_every_example_validates_against_its_model() -> None:
    checked = set()
    routes = [route for router in ROUTERS for route in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        models = [route.response_model]
        if route.body_field is not None:
            models.append(route.body_field.field_info.annotation)
        for model in [inner for outer in models for inner in (outer, *get_args(outer))]:
            name = getattr(model, "__name__", None)
            if name in EXAMPLES:
                TypeAdapter(model).validate_json(json.dumps(EXAMPLES[name]))
                checked.add(name)
    from node_api.http.routes.purchase_lane import DrawdownIn, PurchaseIn
    from node_api.http.schemas import Problem

    for model in (PurchaseIn, DrawdownIn, Problem):
        model.model_validate_json(json.dumps(EXAMPLES[model.__name__]))
        checked.add(model.__name__)
    assert set(EXAMPLES) <= checked, set(EXAMPLES) - checked


def test_application_schema_lists_the_default_cards_characteristics(
    document: dict[str, Any],
) -> None:
    field = document["components"]["schemas"]["ApplicationIn"]["properties"]["characteristics"]
    card = Scorecard.load_packaged(DEFAULT_POLICY.card)
    assert set(field["properties"]) == {c.name for c in card.card.characteristics}
    checking = field["properties"]["status_of_existing_checking_account"]["anyOf"][0]
    assert "no checking account" in checking["enum"]
    assert "THIN_FILE" in field["description"]


def test_docs_are_served_by_the_node_without_the_cdn_defaults(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), database=Database(f"sqlite:///{tmp_path}/x.db"))
    assert app.docs_url is None and app.redoc_url is None  # FastAPI's CDN pages are off
