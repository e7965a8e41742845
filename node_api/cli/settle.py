"""`creditnet settle` and `creditnet verify`.

`settle` closes one cycle by hand (the node also closes every finished business date
by itself inside `creditnet up`). `verify` is the funding partner's tool: it needs only
the chain RPC, the ClearingHouse address and the partner's entries with proofs, and its
exit code is 0 only when everything holds. `verify --watch` follows the lender's partner
feed and checks every cycle as it is proposed (`settlement.watch`).
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import typer
from eth_account import Account

from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.logs import configure_logging
from node_api.runtime.settlement_wiring import build_settlement_signers, read_chain_target
from oracles.chain import connect
from oracles.tx_sender import JsonRpcClient
from settlement.cycle_close import close_settlement_cycle, describe_cycle
from settlement.netting import get_cycle_date, get_cycle_id
from settlement.salts import LeafSalts
from settlement.verifier import (
    EntrySource,
    describe_outcome,
    dispute_cycle,
    download_entries,
    load_entries_file,
    verify_partner_cycle,
)
from settlement.watch import WatchConfig, watch_partner_feed

PARTNER_KEY_ENV = "CREDITNET_PARTNER_PRIVATE_KEY"
API_KEY_ENV = "CREDITNET_PARTNER_API_KEY"


def register(app: typer.Typer) -> None:
    app.command("settle")(settle_command)
    app.command("verify")(verify_command)


def parse_cycle(value: str) -> date:
    """A cycle given as YYYY-MM-DD or as its id yyyymmdd."""
    try:
        if value.isdigit() and len(value) == 8:
            return get_cycle_date(int(value))
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or yyyymmdd)") from None


def parse_cycle_id(value: str) -> int:
    """A cycle id as given (`attempt * 10**8 + yyyymmdd`, for a re-settled date too), or the
    first attempt's id of a date given as YYYY-MM-DD."""
    if value.isdigit():
        try:
            get_cycle_date(int(value))
        except CreditNetValueError:
            raise typer.BadParameter(f"{value!r} is not a cycle id") from None
        return int(value)
    return get_cycle_id(parse_cycle(value))


def settle_command(
    cycle: str = typer.Option(..., "--cycle", help="business date YYYY-MM-DD (or yyyymmdd)"),
    data_dir: Path | None = DATA_DIR,
    sign: bool = typer.Option(True, help="sign and queue the proposal (needs the chain)"),
) -> None:
    """Close one settlement cycle: freeze its entries, net (Σ = 0), build the Merkle tree,
    gather the signer quorum and queue the proposal for the relayer. Idempotent."""
    configure_logging("WARNING")
    cycle_date = parse_cycle(cycle)
    settings = node_settings(data_dir)
    database = open_database(settings)
    try:
        signers = None
        if sign:
            target = read_chain_target(settings)
            signers = build_settlement_signers(settings, database, target.domain)
        closed = close_settlement_cycle(
            database, cycle_date, signers, salts=LeafSalts.from_settings(settings)
        )
    finally:
        database.dispose()
    typer.echo(json.dumps(describe_cycle(closed), indent=2))


def _entry_source(
    api: str | None, key: str | None, file: Path | None, cycle_id: int
) -> EntrySource:
    if (api is None) == (file is None):
        raise typer.BadParameter("give either --api (with --key) or --file")
    if file is not None:
        return load_entries_file(file)
    api_key = key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise typer.BadParameter(f"--api needs --key or {API_KEY_ENV}")
    assert api is not None
    return download_entries(api, api_key, cycle_id)


def verify_command(
    partner: int = typer.Option(..., "--partner", min=0, help="your partner id"),
    cycle: str | None = typer.Option(
        None, "--cycle", help="cycle id yyyymmdd (or YYYY-MM-DD); not with --watch"
    ),
    rpc: str = typer.Option(..., "--rpc", help="chain JSON-RPC URL"),
    clearing_house: str = typer.Option(..., "--clearing-house", help="ClearingHouse address"),
    api: str | None = typer.Option(None, "--api", help="the lender's API base URL"),
    key: str | None = typer.Option(None, "--key", help=f"partner API key (or {API_KEY_ENV})"),
    file: Path | None = typer.Option(None, "--file", help="entries with proofs (JSON/NDJSON)"),
    dispute: bool = typer.Option(
        False, help=f"dispute a failing proposed cycle with the key in {PARTNER_KEY_ENV}"
    ),
    watch: bool = typer.Option(
        False,
        "--watch",
        help="follow the lender's partner feed (--api) and check every cycle as it is "
        "proposed, one line each (OK / FAIL); with --dispute, dispute the failing ones",
    ),
    state: Path | None = typer.Option(
        None, "--state", help="with --watch: file keeping the feed cursor and the verdicts"
    ),
    max_cycles: int | None = typer.Option(
        None, "--max-cycles", min=1, help="with --watch: stop after checking this many cycles"
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.0, help="with --watch: stop after this many seconds"
    ),
) -> None:
    """Check your entries of a cycle against the chain; exit 0 only when every entry
    proves against the on-chain root, they sum to your on-chain net position, and the
    cycle is finalized. Each failing entry is named. With --watch, check every cycle as
    it is proposed instead, until --max-cycles or --timeout; exit 0 when all were OK."""
    configure_logging("WARNING")
    if watch:
        if cycle is not None:
            raise typer.BadParameter("--watch checks every cycle as it is proposed: no --cycle")
        _watch(partner, rpc, clearing_house, api, key, file, dispute, state, max_cycles, timeout)
        return
    if cycle is None:
        raise typer.BadParameter("give --cycle (or --watch)")
    cycle_id = parse_cycle_id(cycle)
    source = _entry_source(api, key, file, cycle_id)
    client = JsonRpcClient(rpc)
    try:
        outcome = verify_partner_cycle(
            client, clearing_house, partner_id=partner, cycle_id=cycle_id, source=source
        )
    finally:
        client.close()
    for line in describe_outcome(outcome, source.entries):
        typer.echo(line)
    failing = not outcome.ok and (outcome.report.failures or not outcome.report.sum_matches)
    if dispute and failing and outcome.chain_status.name == "PROPOSED":
        private_key = os.environ.get(PARTNER_KEY_ENV)
        if not private_key:
            raise typer.BadParameter(f"--dispute needs your payout key in {PARTNER_KEY_ENV}")
        tx_hash = dispute_cycle(
            connect(rpc), Account.from_key(private_key), clearing_house, outcome
        )
        typer.echo(f"disputed cycle {cycle_id}: {tx_hash}")
    raise typer.Exit(0 if outcome.ok else 1)


def _watch(
    partner: int,
    rpc: str,
    clearing_house: str,
    api: str | None,
    key: str | None,
    file: Path | None,
    dispute: bool,
    state: Path | None,
    max_cycles: int | None,
    timeout: float | None,
) -> None:
    if api is None or file is not None:
        raise typer.BadParameter("--watch follows the lender's feed: give --api, not --file")
    api_key = key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise typer.BadParameter(f"--api needs --key or {API_KEY_ENV}")
    payout = None
    if dispute:
        private_key = os.environ.get(PARTNER_KEY_ENV)
        if not private_key:
            raise typer.BadParameter(f"--dispute needs your payout key in {PARTNER_KEY_ENV}")
        payout = Account.from_key(private_key)
    config = WatchConfig(
        api_url=api,
        api_key=api_key,
        partner_id=partner,
        rpc_url=rpc,
        clearing_house=clearing_house,
        payout_account=payout,
        state_path=state,
        max_cycles=max_cycles,
        timeout_s=timeout,
    )
    summary = watch_partner_feed(
        config, echo=typer.echo, warn=lambda line: typer.echo(line, err=True)
    )
    raise typer.Exit(0 if summary.ok else 1)
