"""The README's walkthroughs, run as written: a lender's engineer, a funding partner and an
auditor, from `make run` to their result.

The node is started by the README's own `make run` block (with `PORT` and `DATA_DIR`
given, as the README says one may); every other `sh` block of the three sections runs,
in order and unchanged, in one `bash -euo pipefail` from a working folder that has the
clone's `.venv`, the way a user runs them from the clone. So the README fails CI when it
stops being true.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oracles.anvil import pick_free_port

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("For a lender's engineer", "For a funding partner", "For an auditor")
pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("node_up")]


def read_walkthroughs(readme: str) -> dict[str, list[str]]:
    """The `sh` code blocks of each walkthrough section, in order."""
    start = readme.index("\n## Walkthroughs\n")
    end = readme.index("\n## ", start + 1)
    part = readme[start:end]
    blocks: dict[str, list[str]] = {}
    for chunk in re.split(r"\n### ", part)[1:]:
        title, _, body = chunk.partition("\n")
        blocks[title.strip()] = re.findall(r"```sh\n(.*?)```", body, flags=re.S)
    return blocks


def test_the_readme_has_the_three_walkthroughs_and_one_node_start() -> None:
    blocks = read_walkthroughs((REPO / "README.md").read_text())
    assert list(blocks) == list(SECTIONS)
    assert all(blocks[title] for title in SECTIONS)
    starts = [b for bs in blocks.values() for b in bs if b.strip().startswith("make run")]
    assert starts == ["make run\n"]


class MakeRun:
    """The README's `make run`, with PORT and DATA_DIR, as a process group of its own."""

    def __init__(self, tmp_path: Path, command: str) -> None:
        self.port = pick_free_port()
        self.data_dir = tmp_path / "data"
        self.log = tmp_path / "node.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}
        self.anvil_port = pick_free_port()
        env["CREDITNET_ANVIL_PORT"] = str(self.anvil_port)
        # The settlement pass runs every 30 s by default; the walkthrough waits for it.
        env["CREDITNET_SETTLEMENT_INTERVAL_S"] = "1"
        args = [*command.split(), f"PORT={self.port}", f"DATA_DIR={self.data_dir}"]
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make run exited:\n{self.tail()}"
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=5).json().get("status") == "ok":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"node not healthy within {timeout_s} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C in the terminal
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def walkthroughs() -> dict[str, list[str]]:
    return read_walkthroughs((REPO / "README.md").read_text())


@pytest.fixture
def node(tmp_path: Path, walkthroughs: dict[str, list[str]]) -> Iterator[MakeRun]:
    (start,) = [b for bs in walkthroughs.values() for b in bs if b.strip().startswith("make")]
    running = MakeRun(tmp_path, start.strip())
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


def test_the_three_walkthroughs_run_as_written(
    node: MakeRun, walkthroughs: dict[str, list[str]], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    script = []
    for title in SECTIONS:
        for block in walkthroughs[title]:
            if not block.strip().startswith("make run"):
                script.append(block)
        script.append(f'echo "walkthrough done: {title}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}
    env.update(
        {
            "CN": node.url,
            "DATA_DIR": str(node.data_dir),
            "RPC": f"http://127.0.0.1:{node.anvil_port}",
        }
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "".join(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    done = [title for title in SECTIONS if f"walkthrough done: {title}" in result.stdout]
    assert result.returncode == 0, (
        f"walkthroughs done: {done}\n{output[-6000:]}\nnode log:\n{node.tail()}"
    )
    assert done == list(SECTIONS)
    assert '"decision": "approved"' in result.stdout
    assert "claimed " in result.stdout
    assert (work / "audit-report" / "report.json").exists()
