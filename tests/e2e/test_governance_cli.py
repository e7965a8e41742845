"""`creditnet governance` on a dev node: an admin change is announced, waits out the delay,
then runs; the former admin key cannot act directly, and a scheduled change can be
cancelled. The node is the demo's (anvil + deploy by the default plan, timelock delay
60 s); anvil's clock is moved instead of waiting."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from web3.types import RPCEndpoint

from node_api.cli import app as cli_app
from node_api.kernel.chain import ContractName
from scripts.demo.node import DemoNode, start_demo_node

pytestmark = pytest.mark.chain


@pytest.fixture
def node(tmp_path: Path) -> Iterator[DemoNode]:
    node = start_demo_node(tmp_path / "node")
    try:
        yield node
    finally:
        node.stop()


def _cli(node: DemoNode, *args: str) -> Any:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(cli_app, [*args, "--data-dir", str(node.settings.data_dir)])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _pause(action: str) -> list[str]:
    return ["governance", action, "--contract", "CreditRegistry", "--function", "pause"]


def _registry_paused(node: DemoNode) -> bool:
    registry = node.chain.manifest.get_address(ContractName.CREDIT_REGISTRY)
    data = "0x5c975abb"  # paused()
    return int(node.chain.w3.eth.call({"to": registry, "data": data}).hex(), 16) == 1


def test_an_admin_change_is_scheduled_waits_its_delay_then_runs(node: DemoNode) -> None:
    scheduled = _cli(node, *_pause("schedule"))
    assert scheduled.exit_code == 0, scheduled.output
    assert scheduled.output.strip().splitlines()[-1].startswith("0x")
    status = json.loads(_cli(node, *_pause("status")).output)
    assert status["operation"] == "waiting"

    early = _cli(node, *_pause("execute"))
    assert early.exit_code != 0 and "TimelockUnexpectedOperationState" in str(early.exception)
    assert not _registry_paused(node)

    w3 = node.chain.w3
    w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [node.settings.governance_delay_s])
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    assert json.loads(_cli(node, *_pause("status")).output)["operation"] == "ready"
    executed = _cli(node, *_pause("execute"))
    assert executed.exit_code == 0, executed.output
    assert _registry_paused(node)
    assert json.loads(_cli(node, *_pause("status")).output)["operation"] == "done"


def test_a_scheduled_change_can_be_cancelled(node: DemoNode) -> None:
    assert _cli(node, *_pause("schedule")).exit_code == 0
    cancelled = _cli(node, *_pause("cancel"))
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(_cli(node, *_pause("status")).output)["operation"] == "unset"
