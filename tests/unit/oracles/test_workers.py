"""Worker loops keep stepping through failures, back off, and stop cleanly."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from node_api.kernel.errors import ChainError
from oracles.workers import WorkerLoop


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_loop_backs_off_while_the_chain_fails_and_recovers_after() -> None:
    calls: list[float] = []

    def step() -> bool:
        calls.append(time.monotonic())
        if len(calls) <= 4:
            raise ChainError("chain RPC unreachable")
        return False

    loop = WorkerLoop("test", step, idle_s=0.01, backoff_initial_s=0.02, backoff_max_s=0.05)
    loop.start()
    _wait_for(lambda: loop.steps >= 3)
    loop.stop()
    assert not loop.is_alive()
    assert loop.errors == 4
    assert loop.last_error == "ChainError: chain RPC unreachable"
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls[:5])]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[3] >= 0.05  # doubled, then capped


def test_a_bug_in_a_step_does_not_kill_the_loop() -> None:
    calls = 0

    def step() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("bug")
        return True

    loop = WorkerLoop("test", step, backoff_initial_s=0.01)
    loop.start()
    _wait_for(lambda: loop.steps >= 5)
    loop.stop()
    assert loop.errors == 1


def test_stop_waits_for_the_current_step_to_finish() -> None:
    inside = threading.Event()
    finished: list[bool] = []

    def step() -> bool:
        inside.set()
        time.sleep(0.2)
        finished.append(True)
        return True

    loop = WorkerLoop("slow", step)
    loop.start()
    assert inside.wait(2)
    loop.request_stop()
    loop.stop(5.0)
    assert finished and not loop.is_alive()
