"""`creditnet claim`: a net creditor claims its position of a funded cycle, from its own
payout address.

The partner's payout key is an eth-account keystore file (`--keystore FILE`); its
password comes from `CREDITNET_PAYOUT_KEYSTORE_PASSWORD` or a prompt. Before sending,
the command checks on-chain that the keystore is the partner's registered payout
address, that the cycle is funded and that the position is an unclaimed credit, and,
when it runs next to the node (`--data-dir`), that the books' stored position is the
chain's. A revert is named by the contracts' custom error with its arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError

from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.cli.settle import parse_cycle_id
from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import ChainError, ConfigurationError, ConflictError
from node_api.kernel.logs import configure_logging
from node_api.runtime.settlement_wiring import read_chain_target
from oracles.chain import connect
from oracles.compiler import compile_contracts
from oracles.tx_sender import RevertDecoder
from settlement.clearing_calls import CLAIM
from settlement.funding import SettlementWallet
from settlement.partner_views import fetch_stored_position

PASSWORD_ENV = "CREDITNET_PAYOUT_KEYSTORE_PASSWORD"


def register(app: typer.Typer) -> None:
    app.command("claim")(claim_command)


def load_payout_key(path: Path) -> LocalAccount:
    """The payout account in the keystore `path` (password: env var or prompt)."""
    return load_keystore_account(path, PASSWORD_ENV)


def load_keystore_account(path: Path, password_env: str) -> LocalAccount:
    """The account in the keystore `path` (password: `password_env` or a prompt)."""
    password = os.environ.get(password_env)
    if password is None:
        password = typer.prompt(f"password of {path.name}", hide_input=True)
    try:
        key = Account.decrypt(json.loads(path.read_text()), password)
    except (OSError, json.JSONDecodeError):
        raise ConfigurationError(f"cannot read keystore {path}", field="keystore") from None
    except ValueError:
        raise ConfigurationError(
            f"cannot decrypt keystore {path.name}: wrong password ({password_env})?",
            field="keystore",
        ) from None
    account: LocalAccount = Account.from_key(key)
    return account


def _describe_revert(data: object) -> str:
    raw = data if isinstance(data, str) else ""
    try:
        payload = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        payload = b""
    try:
        return RevertDecoder.from_compiled(compile_contracts()).describe(payload)
    except Exception:  # no compiler here: the raw selector still identifies the error
        return f"revert 0x{payload.hex()}"


def _check_claim(wallet: SettlementWallet, cycle_id: int, partner_id: int) -> int:
    """The position to claim (fen), after the on-chain checks of the module doc."""
    payout = wallet.get_partner_payout(partner_id)
    if payout is None:
        raise ConflictError(f"partner {partner_id} is not registered on-chain", field="partner")
    if payout.lower() != wallet.address.lower():
        raise ConflictError(
            f"the keystore's address {wallet.address} is not partner {partner_id}'s payout "
            f"address {payout}",
            field="keystore",
        )
    cycle = wallet.get_cycle(cycle_id)
    if cycle.status is not CycleStatus.FUNDED:
        raise ConflictError(
            f"cycle {cycle_id} is {cycle.status.name.lower()} on-chain; a claim needs it funded",
            field="cycle",
        )
    position = wallet.get_position(cycle_id, partner_id)
    if not position.listed or position.net_position_fen <= 0:
        raise ConflictError(
            f"partner {partner_id} is not a net creditor of cycle {cycle_id} "
            f"(position {position.net_position_fen} fen)",
            field="partner",
        )
    return position.net_position_fen


def claim_command(
    cycle: str = typer.Option(..., "--cycle", help="cycle id yyyymmdd (or YYYY-MM-DD)"),
    partner: int = typer.Option(..., "--partner", min=0, help="your partner id"),
    keystore: Path = typer.Option(
        ..., "--keystore", help=f"your payout key's keystore file (password: {PASSWORD_ENV})"
    ),
    data_dir: Path | None = DATA_DIR,
    rpc: str | None = typer.Option(None, "--rpc", help="chain JSON-RPC URL (default: the node's)"),
    clearing_house: str | None = typer.Option(
        None, "--clearing-house", help="ClearingHouse address (default: the node's manifest)"
    ),
) -> None:
    """Claim your net position of a funded cycle to your payout address, signed with your
    payout keystore. Prints the amount, the transaction and your new token balance."""
    configure_logging("WARNING")
    cycle_id = parse_cycle_id(cycle)
    books_fen: int | None = None
    if rpc is None or clearing_house is None:
        settings = node_settings(data_dir)
        target = read_chain_target(settings)
        rpc = rpc or target.rpc_url
        clearing_house = clearing_house or target.clearing_house
        database = open_database(settings)
        try:
            with database.engine.connect() as conn:
                stored = fetch_stored_position(conn, cycle_id, partner)
        finally:
            database.dispose()
        books_fen = None if stored is None else stored.net_position_fen
    account = load_payout_key(keystore)
    wallet = SettlementWallet(connect(rpc), account, clearing_house)
    if wallet.get_position(cycle_id, partner).settled:
        typer.echo(f"cycle {cycle_id}: partner {partner} has already claimed")
        return
    amount_fen = _check_claim(wallet, cycle_id, partner)
    if books_fen is not None and books_fen != amount_fen:
        raise ConflictError(
            f"the node's books show {books_fen} fen for partner {partner} in cycle {cycle_id}, "
            f"the chain {amount_fen} fen",
            field="cycle",
        )
    try:
        wallet.w3.eth.call(
            {
                "from": wallet.address,
                "to": wallet.clearing_house,
                "data": CLAIM.encode(cycle_id, partner),
            }
        )
    except ContractLogicError as error:
        raise ChainError(
            f"claim would revert: {_describe_revert(error.data)}", code="tx_reverted"
        ) from None
    before_fen = wallet.fetch_balance_fen()
    tx_hash = wallet.claim(cycle_id, partner)
    after_fen = wallet.fetch_balance_fen()
    typer.echo(f"claimed {amount_fen} fen of cycle {cycle_id} for partner {partner} in {tx_hash}")
    typer.echo(f"balance_fen {before_fen} -> {after_fen}")
