"""Builders shared by the onboarding tests: products, applicants, requests, row counts."""

from __future__ import annotations

import copy
import itertools
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.http.examples import PRODUCT_TERMS
from node_api.kernel.db import Database
from node_api.lending.product_versions import register_product_version
from node_api.lending.products import parse_product_terms
from node_api.onboarding.identity import make_resident_id
from node_api.risk.fraud_facts import Gender
from node_api.risk.samples import APPROVED_CHARACTERISTICS
from node_api.schema.tables import metadata
from scripts.applicants import POOR_PROFILE

AS_OF = date(2025, 6, 30)
PRODUCT = "PAY1"
CASH_PRODUCT = "CASH9"

GOOD_PROFILE: dict[str, Any] = dict(APPROVED_CHARACTERISTICS)
"""Scores 620 on the German card: approved under the default policy."""

BAD_PROFILE: dict[str, Any] = dict(POOR_PROFILE)
"""Scores 386: declined (below the cut-off)."""

BORDERLINE_PROFILE: dict[str, Any] = {
    **GOOD_PROFILE,
    "status_of_existing_checking_account": "... < 0 DM",
    "credit_history": "existing credits paid back duly till now",
    "duration_in_month": 30,
    "purpose": "education",
}
"""Between the decline cut-off and the approval score: manual review."""

_SEQUENCE = itertools.count(1)
SURNAMES = ("Zhao", "Qian", "Sun", "Li", "Zhou", "Wu", "Zheng", "Wang")


def product_data(code: str = PRODUCT, **changes: Any) -> dict[str, Any]:
    """A revolving purchase product eligible on the `app` and `pos` channels (the API's
    example)."""
    return {**copy.deepcopy(PRODUCT_TERMS), "product_code": code, **changes}


def setup_books(database: Database, as_of: date = AS_OF) -> None:
    """Register the test product and set the business date."""
    from node_api.ledger.business_date import set_business_date

    with database.engine.begin() as conn:
        register_product_version(conn, parse_product_terms(product_data()))
        set_business_date(conn, as_of)


def _letters(number: int) -> str:
    """A number spelled in letters (names may not contain digits): 0 -> "a", 27 -> "bb"."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters = chr(ord("a") + digit) + letters
        if number == 0:
            return letters + "xq"


def new_applicant(number: int | None = None) -> dict[str, str]:
    """A distinct, valid applicant: name, 18-digit id number (born 1985), mobile phone."""
    n = next(_SEQUENCE) if number is None else number
    gender = Gender.MALE if n % 2 else Gender.FEMALE
    sequence = (n % 499) * 2 + (1 if gender is Gender.MALE else 0)
    birth = date(1985, 1 + n % 12, 1 + n % 28)
    return {
        "name": f"{SURNAMES[n % len(SURNAMES)]} Test{_letters(n)}",
        "id_number": make_resident_id("110101", birth, sequence, gender),
        "phone": f"139{n:08d}",
    }


def application_body(
    applicant: dict[str, str] | None = None,
    *,
    profile: dict[str, Any] | None = None,
    device_id: str | None = None,
    ip: str = "203.0.113.7",
    **changes: Any,
) -> dict[str, Any]:
    person = applicant or new_applicant()
    body: dict[str, Any] = {
        "product_code": PRODUCT,
        **person,
        "monthly_income_fen": 1_500_000,
        "device_id": device_id or f"device-{person['phone']}",
        "ip": ip,
        "channel_id": "app",
        "characteristics": dict(GOOD_PROFILE if profile is None else profile),
    }
    body.update(changes)
    return body


class Api:
    """A test client with keys and idempotency keys filled in."""

    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys
        self._idempotency = itertools.count(1)

    def headers(self, role: str = "app", key: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.keys[role]}",
            "Idempotency-Key": key or f"k-{next(self._idempotency)}",
        }

    def apply(self, body: dict[str, Any], *, key: str | None = None) -> Any:
        return self.client.post("/v1/applications", json=body, headers=self.headers("app", key))

    def review(self, application_id: str, action: str, reason_code: str = "CHECKED") -> Any:
        return self.client.post(
            f"/v1/applications/{application_id}/review",
            json={"action": action, "reason_code": reason_code},
            headers=self.headers("admin"),
        )

    def get(self, path: str, role: str = "admin") -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.keys[role]}"})


def count_rows(conn: Connection) -> dict[str, int]:
    """Rows in every table (to prove a refused request stored nothing)."""
    return {
        name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in sorted(metadata.tables.items())
    }
