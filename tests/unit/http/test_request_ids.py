"""Request ids made for requests that bring none: 16 hex digits, unique in a process, and
a forked child does not repeat its parent's."""

from __future__ import annotations

import os
import re

from node_api.http.middleware import new_request_id, request_id_of


def test_ids_are_16_hex_digits_and_never_repeat_in_a_process() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_a_sane_caller_id_is_kept_and_another_replaced() -> None:
    assert request_id_of({"headers": [(b"x-request-id", b"req-7")]}) == "req-7"
    made = request_id_of({"headers": [(b"x-request-id", b"x" * 65)]})
    assert re.fullmatch(r"[0-9a-f]{16}", made)


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    parent = new_request_id()
    assert child[:8] != parent[:8]
