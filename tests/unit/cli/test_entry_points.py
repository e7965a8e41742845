"""The CLI finds the operator scripts by name (it may not import `scripts`), and serves
an app on a port for them (uvicorn is the CLI's alone)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.cli.bench import BENCHMARKS
from node_api.cli.demo import DEMO_MODULE
from node_api.cli.serve import ThreadServer
from oracles.anvil import pick_free_port


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_names_a_function_that_exists(name: str) -> None:
    module_name, function_name, _ = BENCHMARKS[name]
    assert callable(getattr(importlib.import_module(module_name), function_name))


def test_the_demo_command_names_a_function_that_exists() -> None:
    assert callable(importlib.import_module(DEMO_MODULE).run_demo)


def test_an_unknown_benchmark_is_refused_with_the_known_names() -> None:
    result = CliRunner().invoke(cli_app, ["bench", "nope"])

    assert result.exit_code != 0
    assert "unknown benchmark 'nope'" in result.output


def test_the_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "left-over").write_text("x")

    result = CliRunner().invoke(cli_app, ["demo", "--data-dir", str(tmp_path)])

    assert result.exit_code != 0
    assert "is not empty" in str(result.exception)


Scope = MutableMapping[str, Any]


async def _hello(
    scope: Scope,
    receive: Callable[[], Awaitable[Scope]],
    send: Callable[[Scope], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def test_a_thread_server_serves_the_app_until_stopped() -> None:
    server = ThreadServer(_hello, pick_free_port(), name="test-api")
    server.start()
    try:
        assert httpx.get(server.url + "/anything", timeout=5).text == "hello"
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=1)
