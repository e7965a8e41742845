"""Shared test setup: Hypothesis profiles and the fixture plugins of each part."""

from __future__ import annotations

import os

import pytest
from _pytest.nodeid import NodeId
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.db_fixtures", "tests.chain_fixtures"]

# `dev` for quick local runs, `ci` for .ci/run (bounded time), `thorough` for long runs:
#   HYPOTHESIS_PROFILE=thorough make test
settings.register_profile(
    "dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep `--dist loadgroup` working on pytest 9: pytest-xdist 3.8 marks an item of an
    `xdist_group` by renaming `item._nodeid`, which pytest 9 no longer reads (the id is
    `item._id`), so every group was silently spread over both workers (the heavy e2e
    tests of `node_up` ran side by side, and module fixtures were built once per worker).
    Here the group suffix goes where pytest 9 reads it."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = sorted(
            {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
             for mark in item.iter_markers("xdist_group")}
        )  # fmt: skip
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)  # type: ignore[attr-defined]
