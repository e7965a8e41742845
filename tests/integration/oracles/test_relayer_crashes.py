"""Crash injection: a relayer process SIGKILLed at every step of a submission, again and
again, still lands every outbox item on-chain exactly once and records it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OutboxStatus
from oracles.relayer import HOOK_AFTER_RECEIPT, HOOK_AFTER_SEND, HOOK_BEFORE_SEND
from oracles.tables import SubmissionStatus
from tests.integration.oracles.conftest import OwnChain
from tests.unit.oracles.oracle_helpers import (
    count_opened_on_chain,
    enqueue_all,
    fetch_outbox,
    fetch_submissions,
    make_opening,
)

pytestmark = [pytest.mark.chain, pytest.mark.slow]

ITEM_COUNT = 300
BATCH_SIZE = 10
CRASH_POINTS = (HOOK_BEFORE_SEND, HOOK_AFTER_SEND, HOOK_AFTER_RECEIPT)
CRASH_ROUNDS = 3
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _run_child(database: Database, chain: OwnChain, crash_at: str, hit: int) -> int:
    env = dict(
        os.environ,
        CN_TEST_DB_URL=database.url,
        CN_TEST_RPC_URL=chain.anvil.rpc_url,
        CN_TEST_MANIFEST_DIR=str(chain.manifest_dir),
        CN_TEST_CHAIN_ID=str(chain.manifest.chain_id),
        CN_TEST_CRASH_AT=crash_at,
        CN_TEST_CRASH_HIT=str(hit),
        CN_TEST_BATCH_SIZE=str(BATCH_SIZE),
    )
    completed = subprocess.run(
        [sys.executable, "-m", "tests.integration.oracles.relayer_child"],
        cwd=PROJECT_ROOT,
        env=env,
        timeout=180,
        capture_output=True,
        check=False,
    )
    if completed.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(completed.stderr.decode()[-3000:])
    return completed.returncode


def test_relayer_killed_at_every_step_lands_each_item_exactly_once(
    database: Database, own_chain: OwnChain
) -> None:
    openings = [make_opening(n) for n in range(ITEM_COUNT)]
    enqueue_all(database, openings)

    kills: dict[str, int] = dict.fromkeys(CRASH_POINTS, 0)
    for _round in range(CRASH_ROUNDS):
        for point in CRASH_POINTS:
            returncode = _run_child(database, own_chain, point, hit=1)
            kills[point] += returncode == -signal.SIGKILL
    assert kills == dict.fromkeys(CRASH_POINTS, CRASH_ROUNDS)
    assert _run_child(database, own_chain, "", hit=0) == 0

    rows = fetch_outbox(database)
    assert len(rows) == ITEM_COUNT
    assert {row.status for row in rows} == {OutboxStatus.CONFIRMED}
    assert all(row.tx_hash is not None and row.block_number is not None for row in rows)
    submissions = fetch_submissions(database)
    assert {s.status for s in submissions} == {SubmissionStatus.CONFIRMED}
    assert sum(s.item_count for s in submissions) == ITEM_COUNT
    assert [s.nonce for s in submissions] == list(
        range(submissions[0].nonce, submissions[0].nonce + len(submissions))
    )
    counts = count_opened_on_chain(
        own_chain.connect(),
        own_chain.manifest.get_address("CreditRegistry"),
        own_chain.manifest.created_at_block,
    )
    assert sorted(counts) == sorted("0x" + o.agreement_id.hex() for o in openings)
    assert set(counts.values()) == {1}
