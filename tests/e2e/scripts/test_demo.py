"""`creditnet demo` end to end: a month of lending settled on its own chain and node."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.demo.run import run_demo


@pytest.mark.chain
def test_the_demo_settles_a_month_and_every_partner_verifies(tmp_path: Path) -> None:
    assert run_demo(data_dir=tmp_path / "demo", customers=5) == 0
