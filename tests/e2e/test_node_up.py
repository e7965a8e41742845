"""`creditnet up` as a user runs it: a real process, real anvil, real HTTP.

Serves /v1/health with the deployed addresses; a restart keeps chain state, contract
addresses and database rows; each misconfiguration gives one clear error line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oracles.anvil import pick_free_port

CLI = [sys.executable, "-m", "node_api.cli"]
pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("node_up")]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}
    env.update(extra)
    return env


class Node:
    def __init__(self, data_dir: Path, port: int, anvil_port: int, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.env = _env(CREDITNET_ANVIL_PORT=str(anvil_port), **env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*CLI, "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(self.data_dir.parent / f"node-{self.port}.log").open("ab"),
        )

    def wait_healthy(self, timeout_s: float = 60.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, "node exited"
            try:
                body: dict[str, object] = httpx.get(
                    f"http://127.0.0.1:{self.port}/v1/health", timeout=2
                ).json()
                if body.get("status") == "ok":
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"node not healthy within {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(30)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    instance = Node(tmp_path / "data", pick_free_port(), pick_free_port())
    yield instance
    instance.stop()


def _run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=_env(**env), capture_output=True, text=True, timeout=120
    )


def test_up_serves_health_with_addresses_and_a_restart_keeps_everything(node: Node) -> None:
    node.start()
    first = node.wait_healthy()
    chain = first["chain"]
    assert isinstance(chain, dict)
    addresses = chain["contracts"]
    assert set(addresses) == {
        "SettlementToken",
        "OracleQuorum",
        "CreditRegistry",
        "ClearingHouse",
        "NetworkTimelock",
    }
    key = _run_cli("keys", "create", "--role", "auditor", "--data-dir", str(node.data_dir))
    assert key.returncode == 0, key.stderr
    block_before = chain["latest_block"]
    node.stop()

    node.start()
    second = node.wait_healthy()
    second_chain = second["chain"]
    assert isinstance(second_chain, dict)
    assert second_chain["contracts"] == addresses
    assert isinstance(block_before, int)
    assert second_chain["latest_block"] >= block_before
    listed = _run_cli("keys", "list", "--data-dir", str(node.data_dir))
    assert key.stdout.split("_")[1] in listed.stdout


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_busy_port_gives_one_error_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run_cli("up", "--port", str(port), "--data-dir", str(tmp_path))
    assert f"port {port} is busy" in _one_error_line(result)


def test_dead_rpc_url_gives_one_error_line(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{pick_free_port()}"
    result = _run_cli(
        "up", "--port", str(pick_free_port()), "--data-dir", str(tmp_path), CREDITNET_RPC_URL=dead
    )
    assert "unreachable" in _one_error_line(result)


def test_unreachable_database_gives_one_error_line(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{pick_free_port()}/nowhere"
    result = _run_cli(
        "up",
        "--port",
        str(pick_free_port()),
        "--data-dir",
        str(tmp_path),
        CREDITNET_DATABASE_URL=url,
    )
    assert "database unreachable" in _one_error_line(result)


def test_missing_npm_tools_give_one_error_line(tmp_path: Path) -> None:
    result = _run_cli("compile", CREDITNET_NODE_MODULES=str(tmp_path / "node_modules"))
    assert "npm tools missing" in _one_error_line(result)


def test_default_secrets_are_refused_in_production(tmp_path: Path) -> None:
    result = _run_cli("up", "--data-dir", str(tmp_path), CREDITNET_ENV="prod")
    assert "development default" in _one_error_line(result)


def test_bad_api_key_gives_one_clear_problem(node: Node) -> None:
    node.start()
    node.wait_healthy()
    response = httpx.get(
        f"http://127.0.0.1:{node.port}/v1/oracles/status",
        headers={"Authorization": "Bearer cn_nope_nope"},
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "invalid or revoked API key"


def _anvil_pids(anvil_port: int) -> list[int]:
    """Processes whose command line is an anvil on `anvil_port`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"anvil") and str(anvil_port).encode() in argv:
            pids.append(int(entry.name))
    return pids


def _wait_gone(anvil_port: int, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _anvil_pids(anvil_port):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_node_never_leaves_its_anvil_running(
    tmp_path: Path, how: signal.Signals
) -> None:
    """Regression: SIGTERM or SIGKILL of `creditnet up` left its anvil running."""
    anvil_port = pick_free_port()
    node = Node(tmp_path / "data", pick_free_port(), anvil_port)
    node.start()
    try:
        node.wait_healthy()
        anvils = _anvil_pids(anvil_port)
        assert len(anvils) == 1
        assert node.process is not None
        # anvil has its own process group: a Ctrl-C for the node is not anvil's.
        assert os.getpgid(anvils[0]) != os.getpgid(node.process.pid)
        node.process.send_signal(how)
        node.process.wait(30)
        assert _wait_gone(anvil_port), "anvil outlived the node"
    finally:
        node.stop()
        for pid in _anvil_pids(anvil_port):
            os.kill(pid, signal.SIGKILL)


def test_a_dev_node_is_ready_to_use_and_operable(node: Node) -> None:
    """The first start records a business date; a key made with CREDITNET_DATA_DIR works
    against the node; /metrics and the access log; JSON logs without escapes."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    node.start()
    node.wait_healthy()
    data_dir = str(node.data_dir)
    made = _run_cli("keys", "create", "--role", "lender_admin", CREDITNET_DATA_DIR=data_dir)
    assert made.returncode == 0, made.stderr
    key = made.stdout.splitlines()[-1]
    url = f"http://127.0.0.1:{node.port}"
    answer = httpx.get(f"{url}/v1/ledger/business-date", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert answer.json()["as_of"] in {today, _yesterday(today)}

    metrics = httpx.get(f"{url}/metrics").text
    for name in (
        "creditnet_chain_head_block",
        "creditnet_indexer_lag_blocks",
        "creditnet_relayer_lag_blocks",
        "creditnet_treasury_balance_fen",
        'route="/v1/ledger/business-date",status="200"',
    ):
        assert name in metrics, name
    node.stop()
    log = (node.data_dir.parent / f"node-{node.port}.log").read_text()
    assert "\x1b" not in log and "\\u001b" not in log
    access = [line for line in log.splitlines() if '"logger":"creditnet.access"' in line]
    assert any('"route":"/v1/ledger/business-date"' in line for line in access)


def _yesterday(iso: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(iso) - timedelta(days=1)).isoformat()


PROD_SECRETS = {
    "CREDITNET_ENV": "prod",
    "CREDITNET_API_KEY_PEPPER": "pepper-0123456789-abcdefghijklmnopqrstuv",
    "CREDITNET_BORROWER_REF_SECRET": "borrower-0123456789-abcdefghijklmnopqrst",
    "CREDITNET_LEAF_SALT_SECRET": "leafsalt-0123456789-abcdefghijklmnopqrst",
    "CREDITNET_PII_KEYS": "k1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
    "CREDITNET_PII_LOOKUP_KEY": "lookup-0123456789-abcdefghijklmnopqrstuvw",
    "CREDITNET_KEYSTORE_PASSWORD": "keystore-password-0123",
    "CREDITNET_DISPUTE_WINDOW_S": "21600",
    "CREDITNET_GOVERNANCE_DELAY_S": "172800",
    "CREDITNET_GOVERNANCE_CANCELLERS": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
}


def test_a_prod_node_without_a_business_date_refuses_and_says_how(tmp_path: Path) -> None:
    result = _run_cli(
        "up", "--port", str(pick_free_port()), "--data-dir", str(tmp_path), **PROD_SECRETS
    )
    line = _one_error_line(result)
    assert "business date is not set" in line
    assert "--business-date YYYY-MM-DD" in line
