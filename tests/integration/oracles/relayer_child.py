"""A relayer process that kills itself with SIGKILL at a chosen point (crash injection).

Run as `python -m tests.integration.oracles.relayer_child` with:
  CN_TEST_DB_URL, CN_TEST_RPC_URL, CN_TEST_MANIFEST_DIR, CN_TEST_CHAIN_ID
  CN_TEST_CRASH_AT     hook point: before_send | after_send | after_receipt (empty: never)
  CN_TEST_CRASH_HIT    die on this hit of the point (1 = the first)
  CN_TEST_BATCH_SIZE   items per transaction
It exits 0 once the outbox is drained; a crash shows as returncode -9 to the parent.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from node_api.kernel.db import Database
from oracles.chain import LocalAccounts
from oracles.compiler import compile_contracts
from oracles.manifest import read_manifest
from oracles.relayer import StepHook
from tests.unit.oracles.oracle_helpers import make_relayer

IDLE_TIMEOUT_S = 120.0


def _crash_hook(point: str, hit: int) -> StepHook:
    """A hook that SIGKILLs this process on the `hit`-th time it reaches `point`."""
    hits = 0

    def hook(reached: str) -> None:
        nonlocal hits
        if reached != point:
            return
        hits += 1
        if hits == hit:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main() -> int:
    env = os.environ
    manifest = read_manifest(Path(env["CN_TEST_MANIFEST_DIR"]), int(env["CN_TEST_CHAIN_ID"]))
    if manifest is None:
        print("no manifest", file=sys.stderr)
        return 2
    database = Database(env["CN_TEST_DB_URL"])
    point = env.get("CN_TEST_CRASH_AT", "")
    hook = _crash_hook(point, int(env.get("CN_TEST_CRASH_HIT", "1")))
    relayer = make_relayer(
        database,
        env["CN_TEST_RPC_URL"],
        manifest,
        compile_contracts(),
        LocalAccounts().relayer,
        hook=hook if point else None,
        batch_size_max=int(env.get("CN_TEST_BATCH_SIZE", "20")),
        inflight_max=2,
    )
    relayer.run_until_idle(IDLE_TIMEOUT_S)
    database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
