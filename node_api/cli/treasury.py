"""`creditnet treasury`: the lender treasury's settlement-token balance, and a dev top-up.

The treasury pays the lender's net debts of finalized cycles (the funding outbox kinds,
sent by the treasury's own relayer inside `creditnet up`). On the development chain it is
anvil's dev account 5 and every node start mints it up to 10 million CNY; `--top-up FEN`
mints more there (the token's MINTER_ROLE is the dev deployer's). Anywhere else the
treasury is `<data>/keystore/treasury.json` and must be funded with the settlement token
by the lender's bank, so `--top-up` is refused.
"""

from __future__ import annotations

from pathlib import Path

import typer

from node_api.cli.options import DATA_DIR, node_settings
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.logs import configure_logging
from node_api.runtime.settlement_wiring import (
    TREASURY_KEYSTORE,
    is_dev_chain,
    load_lender_treasury,
    read_chain_target,
)
from oracles.chain import LocalAccounts, connect
from settlement.funding import SettlementWallet


def register(app: typer.Typer) -> None:
    app.command("treasury")(treasury_command)


def format_cny(amount_fen: int) -> str:
    """Fen as CNY with two decimals, exactly (no float)."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan:,}.{fen:02d}"


def treasury_command(
    data_dir: Path | None = DATA_DIR,
    top_up: int | None = typer.Option(
        None,
        "--top-up",
        metavar="FEN",
        min=1,
        help="dev/test chain only: mint this many fen of settlement tokens to the treasury",
    ),
) -> None:
    """Show the lender treasury's address and settlement-token balance; in dev, top it up."""
    configure_logging("WARNING")
    settings = node_settings(data_dir)
    target = read_chain_target(settings)
    account = load_lender_treasury(settings, target.chain_id)
    if account is None:
        raise ConfigurationError(
            f"no lender treasury: put its keystore at {settings.keystore_dir / TREASURY_KEYSTORE}",
            field="data_dir",
        )
    w3 = connect(target.rpc_url)
    treasury = SettlementWallet(w3, account, target.clearing_house)
    if top_up is not None:
        if not is_dev_chain(settings, target.chain_id):
            raise ConfigurationError(
                "--top-up mints development tokens, only on the embedded dev/test chain; "
                f"elsewhere transfer settlement tokens to {treasury.address}",
                field="top_up",
            )
        minter = SettlementWallet(w3, LocalAccounts().deployer, target.clearing_house)
        tx_hash = minter.mint(treasury.address, top_up)
        typer.echo(f"minted {top_up} fen ({format_cny(top_up)} CNY) in {tx_hash}")
    balance_fen = treasury.fetch_balance_fen()
    typer.echo(f"treasury {treasury.address}")
    typer.echo(f"token {treasury.token}")
    typer.echo(f"balance_fen {balance_fen}")
    typer.echo(f"balance_cny {format_cny(balance_fen)}")
