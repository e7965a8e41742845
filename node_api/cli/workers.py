"""Several uvicorn worker processes, each accepting on its own listening socket.

uvicorn's `--workers` binds one socket in the parent and every worker accepts from it;
uvloop accepts every connection waiting when it wakes, so a burst of new connections
goes to whichever worker wakes first. Measured with `creditnet bench authorize` (128
keep-alive connections opened together, two workers): 125 / 3 and 128 / 0 connections
per worker, one worker's core saturated while the other idled, and the maximum rate
anywhere from 3,288 to 5,925/s from run to run. Here each worker binds the same host and
port with `SO_REUSEPORT`, so the kernel spreads new connections over the workers by
their addresses' hash.

uvicorn's own supervisor still runs the workers (health checks, a dead worker replaced,
SIGTERM passed on so each drains); only the class of its worker processes is this
module's, whose server binds its own socket instead of using the parent's.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

log = logging.getLogger("uvicorn.error")


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) that other sockets may bind too (`SO_REUSEPORT`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class _OwnSocketServer(uvicorn.Server):
    """A worker's server, listening on a `SO_REUSEPORT` socket of its own."""

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        del sockets  # the parent binds none
        try:
            own = bind_reuse_port(self.config.host, self.config.port)
        except OSError as error:
            # As uvicorn's own bind: the supervisor then stops instead of restarting it.
            log.error("cannot listen on %s:%d: %s", self.config.host, self.config.port, error)
            sys.exit(STARTUP_FAILURE)
        super().run(sockets=[own])


class _OwnSocketProcess(multiprocess.Process):
    """uvicorn's worker process, running `_OwnSocketServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = _OwnSocketServer(config=self.config)
        return self._server


class _Supervisor(multiprocess.Multiprocess):
    def run(self) -> None:
        # The supervisor makes its workers through the module's `Process`: here, ours.
        multiprocess.Process = _OwnSocketProcess  # type: ignore[misc]
        super().run()


def serve_in_workers(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve the ASGI app at import path `app` (`factory=True` for a factory) in `workers`
    processes on (host, port), until SIGTERM or SIGINT (each worker then drains). A worker
    that could not start (its socket, the app) stops them all, and the process exits
    with uvicorn's start-up failure status."""
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    supervisor = _Supervisor(config, sockets=[])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        sys.exit(STARTUP_FAILURE)


def serve_factory_from_argv(factory: str) -> None:
    """`python -m MODULE PORT WORKERS`: the app `factory` (an import path) on
    127.0.0.1:PORT in WORKERS processes, as the HTTP benchmarks run an app."""
    port, workers = (int(arg) for arg in sys.argv[1:3])
    serve_in_workers(
        factory,
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


def main() -> None:
    """`python -m node_api.cli.workers PORT WORKERS`: the node's app from the environment
    (`create_app_from_env`), as the HTTP benchmarks run it."""
    serve_factory_from_argv("node_api.http.app:create_app_from_env")


if __name__ == "__main__":
    main()
