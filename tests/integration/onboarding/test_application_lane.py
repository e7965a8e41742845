"""The application fast lane (ASGI middleware in front of the app) against the regular
route, on both databases: the same answers, problems and headers, idempotent replays
across the two paths, and every request it cannot serve handed to the regular app with
the body it read.

A token's first call always goes through the route (its principal is not cached yet);
later calls of a cached operator with a valid body take the lane."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from node_api.http.routes.application_lane import ApplicationFastLane
from node_api.kernel.db import Database
from tests.integration.http.lane_checks import check_lane_replay
from tests.integration.onboarding.onboarding_helpers import (
    Api,
    application_body,
    count_rows,
    new_applicant,
)

_COUNT = "creditnet_http_request_duration_seconds_count"
_VALID = new_applicant(9_101)["id_number"]
_BAD_CHECKSUM = _VALID[:17] + ("0" if _VALID[17] != "0" else "1")


def _observed(status: int) -> float:
    labels = {"method": "POST", "route": "/v1/applications", "status": str(status)}
    return REGISTRY.get_sample_value(_COUNT, labels) or 0.0


def _rows(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        return count_rows(conn)


def _post(api: Api, body: Any, role: str = "app", key: str | None = None, **headers: str) -> Any:
    return api.client.post(
        "/v1/applications", json=body, headers={**api.headers(role, key), **headers}
    )


def test_the_lane_answers_like_the_route_and_replays_across_them(
    api: Api, database: Database
) -> None:
    body = application_body()
    served = ApplicationFastLane.served
    first = api.apply(body, key="same-1")  # the token's first call: the regular route
    assert first.status_code == 201, first.text
    assert ApplicationFastLane.served == served
    observed = _observed(201)
    replay = _post(api, body, key="same-1", **{"X-Request-ID": "req-lane-1"})
    assert ApplicationFastLane.served == served + 1
    check_lane_replay(first, replay, "req-lane-1")
    assert _observed(201) == observed + 1

    fresh = api.apply(application_body(), key="lane-fresh")
    assert ApplicationFastLane.served == served + 2
    assert fresh.status_code == 201 and fresh.json()["decision"] == "approved"
    assert set(fresh.json()) == set(first.json())
    assert len(fresh.headers["x-request-id"]) == 16  # one made for it
    phases = {item.split(";")[0] for item in fresh.headers["server-timing"].split(", ")}
    assert {"prepare", "dedupe", "fraud", "line", "store", "commit"} <= phases
    stored = api.get(f"/v1/applications/{fresh.json()['application_id']}").json()
    assert stored["credit_line_id"] == fresh.json()["credit_line_id"] is not None
    before = _rows(database)
    again = api.apply(application_body(), key="lane-fresh")  # another body, same key
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert (again.json()["code"], again.json()["field"]) == (
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    assert again.json()["instance"] == "/v1/applications"
    assert _rows(database) == before
    assert ApplicationFastLane.served == served + 3


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"phone": "12345"}, "phone_invalid"),
        ({"product_code": "NOPE"}, "unknown_product"),
        ({"channel_id": "kiosk"}, "channel_not_eligible"),
        ({"id_number": _BAD_CHECKSUM}, "id_number_checksum"),
    ],
)
def test_a_refused_decision_is_the_routes_problem_on_the_lane(
    api: Api, database: Database, change: dict[str, Any], code: str
) -> None:
    assert api.apply(application_body()).status_code == 201  # the app key is cached now
    body = application_body(**change)
    before, served = _rows(database), ApplicationFastLane.served
    regular = _post(api, body, role="admin")  # the admin key's first call: the route
    assert ApplicationFastLane.served == served
    on_lane = _post(api, body, key="retry-me")
    assert ApplicationFastLane.served == served + 1
    assert regular.status_code == on_lane.status_code == 422
    assert regular.json() == on_lane.json()
    assert on_lane.json()["code"] == code
    assert regular.headers["content-type"] == on_lane.headers["content-type"]
    assert on_lane.headers["content-type"] == "application/problem+json"
    assert int(on_lane.headers["content-length"]) == len(on_lane.content)
    assert _rows(database) == before
    fixed = _post(api, application_body(), key="retry-me")  # the key was not kept
    assert fixed.status_code == 201


def test_requests_the_lane_cannot_serve_get_the_regular_answers(
    api: Api, database: Database
) -> None:
    assert api.apply(application_body()).status_code == 201  # the app key is cached now
    assert _post(api, application_body(), role="auditor").status_code == 403  # cached too
    before, served = _rows(database), ApplicationFastLane.served
    body = application_body()
    extra = _post(api, {**body, "surprise": 1})
    assert (extra.status_code, extra.json()["field"]) == (422, "surprise")
    wrong_type = _post(api, {**body, "monthly_income_fen": "12"})
    assert (wrong_type.status_code, wrong_type.json()["field"]) == (422, "monthly_income_fen")
    json_type = {**api.headers(), "content-type": "application/json"}
    broken = api.client.post("/v1/applications", content=b'{"name": ', headers=json_type)
    assert broken.status_code == 400 and broken.json()["code"] == "invalid_request"
    not_json = {**api.headers(), "content-type": "text/plain"}
    plain = api.client.post("/v1/applications", content=b"{}", headers=not_json)
    assert plain.status_code == 422 and plain.headers["content-type"] == "application/problem+json"
    no_key = api.client.post(
        "/v1/applications", json=body, headers={"Authorization": f"Bearer {api.keys['app']}"}
    )
    assert no_key.status_code == 400 and no_key.json()["field"] == "Idempotency-Key"
    bad_key = _post(api, body, key="two words")
    assert bad_key.status_code == 400 and bad_key.json()["field"] == "Idempotency-Key"
    auditor = _post(api, body, role="auditor")
    assert auditor.status_code == 403 and auditor.json()["code"] == "forbidden"
    too_large = _post(api, {**body, "device_id": "d" * 70_000})
    assert too_large.status_code == 413 and too_large.json()["code"] == "body_too_large"
    assert ApplicationFastLane.served == served
    assert _rows(database) == before
    assert _post(api, body).status_code == 201
    assert ApplicationFastLane.served == served + 1
