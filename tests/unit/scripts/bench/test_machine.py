"""The machine references every `creditnet bench` run reports: a fixed Python work
(whose result pins what it computes, so references of two runs measure the same work)
and a fixed PostgreSQL statement, left out when no server answers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from node_api.cli import app as cli_app
from scripts.bench import machine

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/postgres"


def test_the_python_work_is_fixed() -> None:
    key_lengths = 200 * (10 * 2 + 90 * 3 + 900 * 4)  # "k0".."k999", 200 times over
    assert machine.python_work() == sum(range(200_000)) + key_lengths


def test_an_unreachable_server_leaves_the_postgresql_reference_out() -> None:
    figures = machine.reference_figures(UNREACHABLE)

    assert set(figures) == {"python_ms"}
    assert isinstance(figures["python_ms"], float) and figures["python_ms"] > 0


def test_every_benchmark_run_reports_the_references_before_and_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CREDITNET_BENCH_PG_URL", UNREACHABLE)

    result = CliRunner().invoke(cli_app, ["bench", "tree", "--set", "n_entries=64"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    for moment in ("reference_before", "reference_after"):
        assert set(figures["machine"][moment]) == {"python_ms"}
    assert figures["machine"]["cores"] >= 1
    assert figures["machine"]["cpu"] == machine.cpu_model() != ""
    assert figures["entry_count"] >= 64


def test_the_processor_is_named_from_cpuinfo() -> None:
    cpuinfo = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
        "model name\t: AMD EPYC\ncpu MHz\t\t: 2445.434\n\n"
        "processor\t: 1\nmodel name\t: something else\n"
    )

    assert machine.cpu_model(cpuinfo) == "AMD EPYC (family 25, model 1), 2445.434 MHz"
    assert machine.cpu_model("processor\t: 0\n") == "unknown"
