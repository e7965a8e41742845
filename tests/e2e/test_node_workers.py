"""`creditnet up` with `CREDITNET_WORKERS=2`, as a user runs it: each worker process
listens on a socket of its own (`SO_REUSEPORT`, `node_api.cli.workers`), so a burst of
connections opened together is spread over both (uvicorn's shared socket gave one worker
125 of 128), and SIGTERM drains the workers and stops the node cleanly."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oracles.anvil import pick_free_port
from tests.e2e.test_node_up import Node

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("node_up")]

BURST = 64
LISTEN, ESTABLISHED = "0A", "01"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def _server_sockets(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets in `state` whose local port is `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            inodes.add(int(fields[9]))
    return inodes


def _per_process(port: int, state: str, pids: list[int]) -> dict[int, set[int]]:
    sockets = _server_sockets(port, state)
    return {pid: _socket_inodes(pid) & sockets for pid in pids}


def test_two_workers_each_listen_on_their_own_socket_share_a_burst_and_drain(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path / "data", pick_free_port(), pick_free_port(), CREDITNET_WORKERS="2")
    node.start()
    burst: list[socket.socket] = []
    try:
        node.wait_healthy(120)
        assert node.process is not None
        supervisor = node.process.pid
        # Health answers once the first worker listens; the second may still be importing
        # the app (CI saw it on a loaded machine), so wait for both, bounded.
        deadline = time.monotonic() + 60
        while True:
            processes = [supervisor, *_children(supervisor)]
            owned = _per_process(node.port, LISTEN, processes)
            listening = {pid: inodes for pid, inodes in owned.items() if inodes}
            if len(listening) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Two listening sockets, one in each worker; none shared, none in the supervisor.
        assert len(listening) == 2, listening
        assert supervisor not in listening
        assert all(len(inodes) == 1 for inodes in listening.values())
        assert len(set.union(*listening.values())) == 2

        request = f"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\n\r\n".encode()
        for _ in range(BURST):
            burst.append(socket.create_connection(("127.0.0.1", node.port), timeout=10))
        for connection in burst:
            connection.sendall(request)
        for connection in burst:
            assert connection.recv(64).startswith(b"HTTP/1.1 200"), "a request went unanswered"
        held = _per_process(node.port, ESTABLISHED, list(listening))
        counts = sorted(len(inodes) for inodes in held.values())
        assert sum(counts) == BURST
        # Spread by the kernel's hash of each connection: a worker with fewer than 8 of 64
        # has a chance of about 1e-11; uvicorn's shared socket gave one worker nearly all.
        assert counts[0] >= 8, counts
    finally:
        for connection in burst:
            connection.close()
        if node.process is not None and node.process.poll() is None:
            node.process.terminate()
    assert node.process is not None
    assert node.process.wait(60) == 0


def test_workers_that_cannot_listen_stop_the_node_instead_of_restarting() -> None:
    """A port held by a socket without `SO_REUSEPORT`: each worker's bind fails, and the
    supervisor stops (uvicorn's start-up failure) instead of replacing them forever."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        serving = subprocess.run(
            [sys.executable, "-m", "node_api.cli.workers", str(port), "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert serving.returncode == 3  # uvicorn's start-up failure
    assert f"cannot listen on 127.0.0.1:{port}" in serving.stderr
