"""Checks both fast lanes' tests make of a replay the lane answered."""

from __future__ import annotations

import httpx


def check_lane_replay(first: httpx.Response, replay: httpx.Response, request_id: str) -> None:
    """`replay` (the lane's answer to a key's second call) repeats `first` as the app's
    regular route would: same status, body and media type, marked replayed, with the
    caller's request id echoed and an exact content length."""
    assert (replay.status_code, replay.json()) == (first.status_code, first.json())
    assert replay.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert replay.headers["x-request-id"] == request_id
    assert int(replay.headers["content-length"]) == len(replay.content)
