"""A Python client generated from the node's own `/openapi.json` by openapi-python-client
(with zero warnings) drives a lender's journey against the app: set the business date,
publish a product, apply, read the decision and the agreement's anchoring as lender_app."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.http.examples import EXAMPLES
from node_api.kernel.config import Settings
from node_api.kernel.db import Database

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
PACKAGE = "creditnet_client"
CONFIG = (
    f"project_name_override: creditnet-client\npackage_name_override: {PACKAGE}\n"
    # The NDJSON streams (partner entries, audit export) are bytes to a generated client.
    "content_type_overrides:\n  application/x-ndjson: application/octet-stream\n"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("client")
    app = create_app(Settings(data_dir=folder), database=Database(f"sqlite:///{folder}/x.db"))
    with TestClient(app) as client:
        (folder / "openapi.json").write_text(client.get("/openapi.json").text)
    (folder / "config.yml").write_text(CONFIG)
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path", str(folder / "openapi.json"),
            "--output-path", str(folder / PACKAGE),
            "--config", str(folder / "config.yml"),
            "--meta", "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _client(generated: ModuleType, app: Any, key: str) -> Any:
    client = generated.AuthenticatedClient(base_url="http://testserver", token=key)
    client.set_httpx_client(TestClient(app, headers={"Authorization": f"Bearer {key}"}))
    return client


def test_generated_client_drives_a_lenders_journey(
    generated: ModuleType, database: Database, tmp_path: Path
) -> None:
    with database.session() as session:
        admin_key = create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER)
        app_key = create_api_key(session, Role.LENDER_APP, pepper=PEPPER)
    app = create_app(Settings(data_dir=tmp_path), database=database)
    models = _module("models")
    admin = _client(generated, app, admin_key)
    lender_app = _client(generated, app, app_key)

    set_date = _module("api.ledger.business_date_set")
    business_date = set_date.sync(
        client=admin, body=models.BusinessDateIn(as_of=date(2025, 6, 30)), idempotency_key="d-1"
    )
    assert business_date.as_of == date(2025, 6, 30)

    publish = _module("api.products.products_create")
    product = publish.sync(
        client=admin,
        body=models.ProductTerms.from_dict(EXAMPLES["ProductTerms"]),
        idempotency_key="p-1",
    )
    assert isinstance(product, models.ProductPublishedOut), product
    assert product.terms_hash.startswith("0x")

    active = _module("api.risk.risk_cards_active").sync(client=lender_app, product_code="PAY1")
    assert "status_of_existing_checking_account" in [c.name for c in active.characteristics]

    apply = _module("api.applications.applications_create")
    decided = apply.sync(
        client=lender_app,
        body=models.ApplicationIn.from_dict(EXAMPLES["ApplicationIn"]),
        idempotency_key="a-1",
    )
    assert isinstance(decided, models.ApplicationOut), decided
    assert decided.decision == models.ApplicationOutDecision.APPROVED

    read = _module("api.applications.applications_get")
    detail = read.sync(application_id=decided.application_id, client=lender_app)
    assert isinstance(detail, models.ApplicationDetailOut), detail
    assert detail.agreement_id == decided.agreement_id
    assert detail.credit_line_id == decided.credit_line_id

    anchoring = _module("api.agreements.agreements_get").sync(
        agreement_id=decided.agreement_id, client=lender_app
    )
    assert isinstance(anchoring, models.AgreementOut), anchoring
    assert anchoring.anchoring == models.AgreementOutAnchoring.QUEUED
    assert anchoring.books.credit_line_id == decided.credit_line_id
