"""The embedded chain: anvil (Foundry's node) as a child process.

`--state <file>` loads the chain from the file on start and dumps it on a clean
exit, so `stop()` followed by `start()` keeps every block, contract and balance.
anvil's output goes to a log file next to the state file, never to our stdout.

anvil runs in its own process group and, when started from the main thread on Linux,
with a parent-death signal (`prctl(PR_SET_PDEATHSIG, SIGTERM)`): whether the node
stops cleanly (SIGINT, SIGTERM: `stop()`) or is killed (SIGKILL), no anvil is left
running.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from web3 import Web3

from node_api.kernel.errors import ChainError, ConfigurationError
from oracles.compiler import NODE_MODULES, NPM_TOOLS_MISSING

ANVIL_BINARY: Final = NODE_MODULES / ".bin" / "anvil"
START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 15.0
POLL_INTERVAL_S: Final = 0.02
BLOCK_GAS_LIMIT: Final = 100_000_000


PR_SET_PDEATHSIG: Final = 1
"""linux/prctl.h: the signal a child gets when its parent (the forking thread) dies."""


def _die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to SIGTERM the child when this process dies, however
    it dies (SIGKILL included); None where there is no `prctl` (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_parent_death_signal


def is_port_busy(host: str, port: int) -> bool:
    """True when something already listens on host:port (a bind attempt fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def pick_free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports the OS considers free right now: each probe stays bound
    until all are picked, so two picks never return the same port (two `pick_free_port`
    calls can)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((host, 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def fetch_chain_id(rpc_url: str, timeout_s: float = 1.0) -> int | None:
    """The chain id answered at `rpc_url`, or None when nothing answers yet."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        rpc_url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    result = answer.get("result")
    return int(result, 16) if isinstance(result, str) else None


class AnvilProcess:
    """One anvil child process. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        port: int,
        state_path: Path | None,
        chain_id: int = 31337,
        block_time_s: float | None = None,
        host: str = "127.0.0.1",
        *,
        log_path: Path | None = None,
        state_interval_s: int | None = None,
    ) -> None:
        self.port = port
        self.state_path = state_path
        self.chain_id = chain_id
        self.block_time_s = block_time_s
        self.host = host
        self.state_interval_s = state_interval_s
        if log_path is None and state_path is not None:
            log_path = state_path.parent / "anvil.log"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        # The parent-death signal is tied to the thread that forks: only a main-thread
        # start may use it (a worker thread's exit would otherwise stop the chain).
        self.die_with_parent = threading.current_thread() is threading.main_thread()

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def get_command(self) -> list[str]:
        """The anvil command line for this configuration."""
        command = [str(ANVIL_BINARY), "--host", self.host, "--port", str(self.port)]
        command += ["--chain-id", str(self.chain_id), "--gas-limit", str(BLOCK_GAS_LIMIT)]
        if self.state_path is not None:
            command += ["--state", str(self.state_path)]
        if self.state_interval_s is not None:
            command += ["--state-interval", str(self.state_interval_s)]
        if self.block_time_s is not None:
            command += ["--block-time", str(self.block_time_s)]
        return command

    def start(self) -> None:
        """Spawn anvil and return once it answers eth_chainId (at most ~10 s)."""
        if self.is_running:
            return
        if not ANVIL_BINARY.exists():
            raise ConfigurationError(NPM_TOOLS_MISSING)
        if is_port_busy(self.host, self.port):
            raise ConfigurationError(f"port {self.port} is busy", field="port")
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.get_command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C meant for the node does not reach anvil, so
            # the node stops it in order (anvil dumps its state on the way out).
            start_new_session=True,
            preexec_fn=_die_with_parent() if self.die_with_parent else None,
        )
        # A parent that dies of an exception must not leave an orphan chain behind.
        atexit.register(self.stop)
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        """Poll eth_chainId until our own process answers with our chain id."""
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._close_log()
                self._process = None
                raise ConfigurationError(
                    f"anvil exited during start on port {self.port}; see {self.log_path}"
                )
            answered = fetch_chain_id(self.rpc_url, timeout_s=POLL_INTERVAL_S * 10)
            if answered is not None and self._process.poll() is None:
                if answered != self.chain_id:
                    self.stop()
                    raise ConfigurationError(
                        f"anvil on port {self.port} answered chain id {answered}, "
                        f"expected {self.chain_id}"
                    )
                return
            time.sleep(POLL_INTERVAL_S)
        self.stop()
        raise ChainError(f"anvil on port {self.port} did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """Terminate anvil (it dumps its state on the way out) and wait for it."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> AnvilProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def take_snapshot(w3: Web3) -> str:
    """anvil's `evm_snapshot`: an id to return to this exact state later."""
    response = w3.provider.make_request("evm_snapshot", [])  # type: ignore[arg-type]
    return str(response["result"])


def revert_to_snapshot(w3: Web3, snapshot_id: str) -> None:
    """anvil's `evm_revert`; ChainError when the snapshot is unknown (ids are single-use)."""
    response = w3.provider.make_request("evm_revert", [snapshot_id])  # type: ignore[arg-type]
    if response.get("result") is not True:
        raise ChainError(f"evm_revert to snapshot {snapshot_id} failed")
