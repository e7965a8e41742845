"""Two `creditnet up` nodes on one PostgreSQL database and one chain: the relayer's leader
is SIGKILLed mid-relay, the other node takes its lease within the time to live, and every
agreement is on-chain exactly once with the relayer's nonces contiguous; the survivor
then drains on SIGTERM, exits 0 and releases its leases.

The harness is the `creditnet bench failover` benchmark itself (scripts/bench/failover.py).
"""

from __future__ import annotations

import pytest

from scripts.bench.failover import run_failover_bench
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.xdist_group("node_up")]

LEASE_TTL_S = 3
TAKEOVER_SLACK_S = 2.0
"""The follower's acquire interval (a quarter of the time to live, at most 1 s) and polling."""


def test_the_other_node_takes_over_a_killed_relayer_and_nothing_lands_twice() -> None:
    require_postgresql("several nodes need PostgreSQL")

    figures = run_failover_bench(
        waves=12,
        wave_size=10,
        kill_after_waves=4,
        lease_ttl_s=LEASE_TTL_S,
        database_url=PG_ADMIN_URL,
    )

    assert figures["in_flight_at_kill"] > 0, "the leader was killed with nothing to relay"
    assert figures["takeover_s"] <= LEASE_TTL_S + TAKEOVER_SLACK_S
    assert (figures["anchored"], figures["duplicates"], figures["missing"]) == (120, 0, 0)
    assert figures["nonces_contiguous"] is True and figures["relayer_nonce"] >= 1
    assert figures["drain_exit_code"] == 0
    assert figures["leases_held_after_drain"] == 0
