"""`creditnet audit`: verify contract history and the lender's books from a chain RPC.

Exit code 0 only when every check passes, 1 when any fails (2 for a usage or
configuration error, from the CLI's main). The report goes to `--out` as report.json
and report.html; the failed checks are also printed, one line each.
"""

from __future__ import annotations

from pathlib import Path

import typer
from eth_utils.address import is_address
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from node_api.kernel.errors import CreditNetValueError
from oracles.audit.recompile import DEFAULT_CACHE_DIR
from oracles.audit.report import write_report
from oracles.audit.runner import AuditConfig, run_audit


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


class RichProgress:
    """Stage lines and a progress bar over the replayed blocks, on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]replaying events"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("blocks"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: int | None = None

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def stage(self, name: str) -> None:
        self.progress.stop()
        self.console.print(f"[dim]•[/dim] {name}")

    def start_replay(self, total_blocks: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("replay", total=max(total_blocks, 1))

    def advance(self, blocks: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, blocks)  # type: ignore[arg-type]


def _read_allowlist(addresses: list[str], allowlist_file: Path | None) -> tuple[str, ...]:
    """--allow values plus the file's addresses (one per line, `#` comments)."""
    entries = list(addresses)
    if allowlist_file is not None:
        for line in allowlist_file.read_text(encoding="utf-8").splitlines():
            entry = line.split("#", 1)[0].strip()
            if entry:
                entries.append(entry)
    for entry in entries:
        if not is_address(entry):
            raise CreditNetValueError(
                f"{entry!r} in the allowlist is not an address", field="allow"
            )
    return tuple(entries)


def audit(
    rpc: str = typer.Option(..., help="chain JSON-RPC URL"),
    manifest: Path = typer.Option(..., help="deployment manifest (deployments/<chain>.json)"),
    out: Path = typer.Option(..., help="report folder (report.json, report.html)"),
    export: Path | None = typer.Option(None, help="the lender's export: .ndjson file or folder"),
    api: str | None = typer.Option(None, help="node API base URL, instead of --export"),
    key: str | None = typer.Option(
        None, envvar="CREDITNET_AUDITOR_KEY", help="auditor API key for --api"
    ),
    from_block: int | None = typer.Option(None, help="replay from this block (default: deploy)"),
    sample: int = typer.Option(100, min=0, help="agreements sampled for the terms check"),
    allow: list[str] = typer.Option([], help="known address (role holder or signer), repeatable"),
    allowlist: Path | None = typer.Option(None, help="file of known addresses, one per line"),
    sources: Path | None = typer.Option(None, help="published standard JSON input file"),
    contracts_dir: Path | None = typer.Option(None, help="published contracts/ folder"),
    cache_dir: Path = typer.Option(DEFAULT_CACHE_DIR, help="the auditor's compile cache"),
    no_cache: bool = typer.Option(False, help="always recompile"),
    accept_partial: bool = typer.Option(False, help="a partial source match passes"),
    confirmations: int = typer.Option(0, min=0, help="audit this many blocks below the head"),
    trail: Path | None = typer.Option(
        None, help="the lender's model trail (models and activations JSON), with --export"
    ),
) -> None:
    """Verify sources, replay every event, check invariants and reconcile the books."""
    if export is not None and api is not None:
        raise CreditNetValueError("give --export or --api, not both", field="export")
    config = AuditConfig(
        rpc_url=rpc,
        manifest_path=manifest,
        export_path=export,
        api_url=api,
        api_key=key,
        from_block=from_block,
        sample_size=sample,
        allowlist=_read_allowlist(allow, allowlist),
        standard_input_path=sources,
        contracts_dir=contracts_dir,
        cache_dir=None if no_cache else cache_dir,
        accept_partial=accept_partial,
        confirmations=confirmations,
        trail_path=trail,
    )
    console = Console(stderr=True)
    with RichProgress(console) as progress:
        report = run_audit(config, progress)
    json_path, html_path = write_report(report, out)
    for check in report.failed_checks():
        typer.echo(f"FAIL {check.id}: {check.message}")
    passed = sum(check.passed for check in report.checks)
    verdict = "PASS" if report.passed else "FAIL"
    typer.echo(
        f"{verdict}: {passed} of {len(report.checks)} checks passed; {json_path}, {html_path}"
    )
    if not report.passed:
        # SystemExit rather than typer.Exit: `creditnet`'s main runs click with
        # standalone_mode=False, which turns typer.Exit into a return value it drops.
        raise SystemExit(1)
