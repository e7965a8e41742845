"""Serving the node's API on a local port for the demo, benchmarks and tests.

uvicorn belongs to the CLI alone (an import-linter contract), so whatever else must
serve the app goes through this module: `ThreadServer` runs an app object in a thread
of this process (the demo drives the same node it serves), `NodeProcess` runs
`create_app_from_env` in worker processes as `creditnet up` does (`workers`: the HTTP
benchmarks, which measure the node's processes apart from their own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn

from node_api.kernel.errors import ConfigurationError
from oracles.anvil import pick_free_port

HOST = "127.0.0.1"
THREAD_START_TIMEOUT_S = 20.0
PROCESS_HEALTHY_TIMEOUT_S = 60.0
PROCESS_STOP_TIMEOUT_S = 20.0

AsgiApp = Callable[..., Awaitable[None]]
"""An ASGI application (the node's FastAPI app)."""


class ThreadServer:
    """uvicorn serving `app` in a background thread of this process."""

    def __init__(self, app: AsgiApp, port: int, *, name: str = "api") -> None:
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.url = f"http://{HOST}:{port}"
        self._thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self) -> None:
        """Start serving; return once the server listens."""
        self._thread.start()
        deadline = time.monotonic() + THREAD_START_TIMEOUT_S
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ConfigurationError(f"the API on {self.url} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)


class NodeProcess:
    """The node's app under uvicorn with `workers` worker processes, on a free port, with
    its settings from the environment (`database_url`, a temporary data folder, dev).
    `module` (run as `python -m module PORT WORKERS`, answering `GET /v1/health`) and
    `environment` serve another app the same way (`creditnet bench ceiling`).

    A context manager: entering starts it and waits until `/v1/health` answers 200;
    leaving stops it and removes its data folder.
    """

    def __init__(
        self,
        database_url: str,
        workers: int,
        *,
        module: str = "node_api.cli.workers",
        environment: dict[str, str] | None = None,
    ) -> None:
        self._database_url = database_url
        self._workers = workers
        self._module = module
        self._environment = environment or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._data_dir = tempfile.TemporaryDirectory(prefix="creditnet-node-")
        self.port = 0

    @property
    def pid(self) -> int:
        """The uvicorn parent process (the workers are its children)."""
        assert self._process is not None
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> NodeProcess:
        port = pick_free_port(HOST)
        env = {
            **os.environ,
            "CREDITNET_DATABASE_URL": self._database_url,
            "CREDITNET_DATA_DIR": self._data_dir.name,
            "CREDITNET_ENV": "dev",
            **self._environment,
        }
        command = [sys.executable, "-m", self._module, str(port), str(self._workers)]
        self._process = subprocess.Popen(command, env=env)
        self.port = port
        try:
            _wait_healthy(self.url, self._process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=PROCESS_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        self._data_dir.cleanup()


def _wait_healthy(url: str, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + PROCESS_HEALTHY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the node exited before it became healthy")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the node did not become healthy within {PROCESS_HEALTHY_TIMEOUT_S:.0f} s")
