"""`creditnet verify` takes either one cycle or `--watch`, and `--watch` needs the lender's
API (never a file) and, to dispute, the payout key."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from node_api.cli import app

BASE = [
    "verify", "--partner", "2", "--rpc", "http://127.0.0.1:1", "--clearing-house", "0x" + "00" * 20,
]  # fmt: skip


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """The command configures logging onto the runner's stream, which closes after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --cycle (or --watch)"),
        (["--watch", "--cycle", "20250303", "--api", "http://x"], "no --cycle"),
        (["--watch"], "give --api, not --file"),
        (["--watch", "--api", "http://x", "--file", "f.json"], "give --api, not --file"),
        (["--watch", "--api", "http://x"], "--api needs --key"),
        (["--watch", "--api", "http://x", "--key", "cn_k", "--dispute"], "--dispute needs"),
        (["--watch", "--api", "http://x", "--max-cycles", "0"], "--max-cycles"),
    ],
)
def test_verify_refuses_what_it_cannot_do(extra: list[str], message: str) -> None:
    result = CliRunner().invoke(
        app,
        [*BASE, *extra],
        env={"CREDITNET_PARTNER_API_KEY": "", "CREDITNET_PARTNER_PRIVATE_KEY": ""},
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
