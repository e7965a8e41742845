"""The authorization fast lane (plain ASGI run before the app's middleware stack) against
the regular route, on both databases: the same answers and headers, the same request id,
access metrics and body limit, the last-resort 500, and every request it cannot serve
handed to the regular app with its body."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from node_api.http.routes.purchase_lane import AuthorizationFastLane
from node_api.lending.core.service import AuthorizationService
from tests.integration.http.lane_checks import check_lane_replay
from tests.integration.lending.test_api import PURCHASE, Api, api, line_id

__all__ = ["api", "line_id"]  # the fixtures this module uses

_COUNT = "creditnet_http_request_duration_seconds_count"
_ROUTE = "/v1/credit-lines/{credit_line_id}/purchases"


def _observed(status: int) -> float:
    labels = {"method": "POST", "route": _ROUTE, "status": str(status)}
    return REGISTRY.get_sample_value(_COUNT, labels) or 0.0


def test_the_lane_answers_like_the_route_with_the_same_headers(api: Api, line_id: int) -> None:
    path = f"/v1/credit-lines/{line_id}/purchases"
    first = api.post(path, PURCHASE, key="same-1")  # a cache miss: the regular route
    assert first.status_code == 201, first.text
    served, observed = AuthorizationFastLane.served, _observed(201)
    replay = api.post(path, PURCHASE, key="same-1", headers={"X-Request-ID": "req-lane-1"})
    assert AuthorizationFastLane.served == served + 1
    check_lane_replay(first, replay, "req-lane-1")
    assert _observed(201) == observed + 1
    fresh = api.post(path, {**PURCHASE, "amount_fen": 7})
    assert fresh.status_code == 201 and fresh.json()["amount_fen"] == 7
    assert len(fresh.headers["x-request-id"]) == 16  # one made for it
    assert AuthorizationFastLane.served == served + 2


def test_a_declined_use_is_the_same_problem_on_the_lane(api: Api, line_id: int) -> None:
    path = f"/v1/credit-lines/{line_id}/purchases"
    api.post(path, PURCHASE)  # the caller is cached from now on
    served, before = AuthorizationFastLane.served, api.counts()
    declined = api.post(path, {**PURCHASE, "amount_fen": 10**9}, key="over-1")
    assert AuthorizationFastLane.served == served + 1
    assert declined.status_code == 409
    assert declined.headers["content-type"] == "application/problem+json"
    assert (declined.json()["code"], declined.json()["field"]) == ("over_limit", "amount_fen")
    again = api.post(path, {**PURCHASE, "amount_fen": 10**9}, key="over-1")
    assert (again.status_code, again.json()) == (409, declined.json())
    assert api.counts()[:3] == before[:3]


def test_requests_the_lane_cannot_serve_get_the_regular_answers(api: Api, line_id: int) -> None:
    path = f"/v1/credit-lines/{line_id}/purchases"
    api.post(path, PURCHASE)  # the caller is cached from now on
    served, before = AuthorizationFastLane.served, api.counts()
    too_large = api.post(path, {**PURCHASE, "merchant_id": "m" * 5_000})
    assert too_large.status_code == 413 and too_large.json()["code"] == "body_too_large"
    json_type = {"content-type": "application/json"}
    broken = api.post(path, content=b'{"amount_fen": ', headers=json_type)
    assert broken.status_code == 400 and broken.json()["code"] == "invalid_request"
    extra = api.post(path, {**PURCHASE, "surprise": 1})
    assert (extra.status_code, extra.json()["field"]) == (422, "surprise")
    wrong_type = api.post(path, {**PURCHASE, "amount_fen": "12"})
    assert (wrong_type.status_code, wrong_type.json()["field"]) == (422, "amount_fen")
    no_key = api.post(path, PURCHASE, key=None)
    assert no_key.status_code == 400 and no_key.json()["field"] == "Idempotency-Key"
    assert AuthorizationFastLane.served == served
    assert api.counts() == before
    ok = api.post(path, PURCHASE)
    assert ok.status_code == 201 and AuthorizationFastLane.served == served + 1


def test_an_unexpected_error_on_the_lane_is_the_apps_last_resort_problem(
    api: Api, line_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane runs before the app's middleware stack, so it answers an error nothing
    expected itself, with the 500 the stack's handler gives (and no detail of the error)."""
    path = f"/v1/credit-lines/{line_id}/purchases"
    api.post(path, PURCHASE)  # the caller is cached from now on

    async def fail(*_: object) -> None:
        raise RuntimeError("the database went away at 10.0.0.7")

    monkeypatch.setattr(AuthorizationService, "authorize", fail)
    served, observed = AuthorizationFastLane.served, _observed(500)
    failed = api.post(path, PURCHASE, headers={"X-Request-ID": "req-lane-500"})
    assert AuthorizationFastLane.served == served + 1
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.headers["x-request-id"] == "req-lane-500"
    assert failed.json() == {
        "type": "about:blank",
        "title": "Internal error",
        "status": 500,
        "detail": "the node failed to handle this request; see its logs by request id",
        "code": "internal",
        "instance": path,
    }
    assert "10.0.0.7" not in failed.text
    assert _observed(500) == observed + 1
