"""The CLI finds the operator scripts by name (it may not import `scripts`), and serves
an app on a port for them (uvicorn is the CLI's alone)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer import _click as click
from typer.testing import CliRunner

from node_api.cli import COMMANDS
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


def test_the_lazy_command_table_is_exactly_what_the_modules_declare() -> None:
    """COMMANDS names each command's module; every module's `register` declares exactly
    the commands the table gives it, so the table cannot drift from the code."""
    declared: dict[str, str] = {}
    for module_name in dict.fromkeys(COMMANDS.values()):
        app = typer.Typer()
        importlib.import_module(module_name).register(app)
        group = typer.main.get_group(app)
        declared.update(dict.fromkeys(group.list_commands(click.Context(group)), module_name))
    assert declared == COMMANDS
    assert list(declared) == list(COMMANDS)  # --help lists them in this order


def test_a_database_command_starts_without_the_chain_client_or_the_api() -> None:
    """`creditnet keys ...` imports only its own module's needs: not web3, not FastAPI."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from node_api.cli import app\n"
        "assert CliRunner().invoke(app, ['keys', '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('web3', 'fastapi', 'eth_account') if m in sys.modules))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"


def test_an_unknown_command_is_a_usage_error_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "node_api.cli", "no-such-command"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
    assert "Traceback" not in result.stderr
