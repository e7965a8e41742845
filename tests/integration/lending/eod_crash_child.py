"""Run end of day in a child process that kills itself (SIGKILL) at one step/batch
boundary: `python eod_crash_child.py URL THROUGH STEP BATCH_NO POINT BATCH_LINES [WORKERS]`
(with WORKERS > 1 the shards run in threads, so the kill takes every shard mid-step)."""

from __future__ import annotations

import os
import signal
import sys
from datetime import date

from node_api.kernel.db import Database
from node_api.lending.eod import EodContext, run_eod_through


def main() -> None:
    url, through, step, batch_no, point, batch_lines = sys.argv[1:7]
    workers = int(sys.argv[7]) if len(sys.argv) > 7 else 1

    def crash(at: str, at_step: str, at_batch: int) -> None:
        if (at, at_step, at_batch) == (point, step, int(batch_no)):
            os.kill(os.getpid(), signal.SIGKILL)

    ctx = EodContext(
        batch_lines=int(batch_lines), on_boundary=crash, workers=workers, shard_runner="thread"
    )
    run_eod_through(Database(url), date.fromisoformat(through), ctx=ctx)


if __name__ == "__main__":
    main()
