"""`creditnet demo` end to end: a month of lending settled on its own chain and node,
then handed over: `creditnet up --data-dir` serves the demo's folder afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from oracles.anvil import pick_free_ports
from scripts.demo.run import next_commands, run_demo


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}


def _wait_healthy(
    port: int, process: subprocess.Popen[bytes], timeout_s: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "creditnet up exited"
        try:
            body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).json()
            if body.get("status") == "ok":
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the demo's node did not become healthy")


@pytest.mark.chain
def test_the_demo_settles_a_month_and_hands_its_node_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    port, anvil_port = pick_free_ports(2)
    assert run_demo(data_dir=folder, customers=5, port=port, anvil_port=anvil_port) == 0
    printed = capsys.readouterr().out
    commands = next_commands(folder, port=port, anvil_port=anvil_port)
    up = f"creditnet up --data-dir {folder} --port {port} --anvil-port {anvil_port}"
    assert commands[0] == up
    for command in commands:
        assert command in printed
    assert "creditnet audit" in printed

    manifest = json.loads((folder / "deployments" / "31337.json").read_text())
    log = (tmp_path / "up.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "node_api.cli", *commands[0].split()[1:]],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        health = _wait_healthy(port, process)
        chain = health["chain"]
        assert isinstance(chain, dict)
        addresses = {name: info["address"] for name, info in manifest["contracts"].items()}
        assert chain["contracts"] == addresses  # the demo's deployment, verified, not redone
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        log.close()
