"""`creditnet governance`: admin changes through the NetworkTimelock, in public.

The timelock holds the admin and pauser roles of OracleQuorum, CreditRegistry and
ClearingHouse, so resolving a dispute, changing the signer set or threshold, granting a
role or pausing is two transactions: `schedule` announces the exact call on-chain, and
`execute` runs it once the delay has passed; a canceller (a funding partner) may `cancel`
it meanwhile. `status` shows where an operation stands.

The call is named by contract, function and JSON arguments, e.g.
`creditnet governance schedule --contract ClearingHouse --function resolveDispute
--args '[20260115, true]'`. The signing key is a keystore (`--keystore FILE`, password
from `CREDITNET_GOVERNANCE_KEYSTORE_PASSWORD` or a prompt); on the dev chain the deployer's
dev account is used when none is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from eth_account.signers.local import LocalAccount
from web3 import Web3

from node_api.cli.claim import load_keystore_account
from node_api.cli.options import DATA_DIR, node_settings
from node_api.kernel.chain import ContractName
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.logs import configure_logging
from node_api.runtime.settlement_wiring import is_dev_chain, read_chain_target
from oracles.abi_codec import DeployedContracts
from oracles.chain import LocalAccounts, connect
from oracles.compiler import compile_contracts
from oracles.governance import TimelockCall, cancel, execute, schedule

PASSWORD_ENV = "CREDITNET_GOVERNANCE_KEYSTORE_PASSWORD"
GOVERNED = (ContractName.ORACLE_QUORUM, ContractName.CREDIT_REGISTRY, ContractName.CLEARING_HOUSE)
OPERATION_STATES = ("unset", "waiting", "ready", "done")

governance = typer.Typer(help="Admin changes through the NetworkTimelock (schedule, execute).")

CONTRACT = typer.Option(..., "--contract", help="OracleQuorum, CreditRegistry or ClearingHouse")
FUNCTION = typer.Option(..., "--function", help="the function to call, e.g. resolveDispute")
ARGS = typer.Option("[]", "--args", help="its arguments as a JSON array")
KEYSTORE = typer.Option(None, "--keystore", help=f"signing keystore (password: {PASSWORD_ENV})")


def register(app: typer.Typer) -> None:
    app.add_typer(governance, name="governance")


def _call(contract: str, function: str, args: str) -> TimelockCall:
    if contract not in GOVERNED:
        raise typer.BadParameter(f"--contract must be one of {', '.join(GOVERNED)}")
    try:
        values: Any = json.loads(args)
    except json.JSONDecodeError:
        raise typer.BadParameter("--args must be a JSON array") from None
    if not isinstance(values, list):
        raise typer.BadParameter("--args must be a JSON array")
    return TimelockCall(ContractName(contract), function, values)


def _context(
    data_dir: Path | None, keystore: Path | None
) -> tuple[Any, DeployedContracts, LocalAccount]:
    settings = node_settings(data_dir)
    target = read_chain_target(settings)
    contracts = DeployedContracts.from_manifest(target.manifest, compile_contracts())
    if keystore is not None:
        account = load_keystore_account(keystore, PASSWORD_ENV)
    elif is_dev_chain(settings, target.chain_id):
        account = LocalAccounts().deployer
    else:
        raise ConfigurationError("give the signing key with --keystore FILE", field="keystore")
    return connect(target.rpc_url), contracts, account


def _signed_call(
    contract: str, function: str, args: str, data_dir: Path | None, keystore: Path | None
) -> tuple[TimelockCall, Any, DeployedContracts, LocalAccount]:
    """What a sending command needs: the call named on its command line, the chain, the
    deployed contracts and the signing key."""
    configure_logging("WARNING")
    return (_call(contract, function, args), *_context(data_dir, keystore))


def _timelock_view(w3: Web3, contracts: DeployedContracts, function: str, args: list[Any]) -> int:
    """One integer view of the NetworkTimelock."""
    timelock = contracts.get(ContractName.NETWORK_TIMELOCK)
    codec = timelock.codec.function(function)
    output = w3.eth.call({"to": timelock.address, "data": codec.encode(args)})
    (value,) = codec.decode_output(bytes(output))
    return int(value)


def _state(w3: Web3, contracts: DeployedContracts, call: TimelockCall) -> tuple[str, int]:
    operation = call.operation_id(contracts)
    state = _timelock_view(w3, contracts, "getOperationState", [operation])
    return OPERATION_STATES[state], _timelock_view(w3, contracts, "getTimestamp", [operation])


@governance.command("schedule")
def schedule_command(
    contract: str = CONTRACT,
    function: str = FUNCTION,
    args: str = ARGS,
    delay: int | None = typer.Option(None, "--delay", help="seconds (default: the minimum)"),
    keystore: Path | None = KEYSTORE,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Announce a call; it can run once the delay has passed (prints the operation id)."""
    call, w3, contracts, account = _signed_call(contract, function, args, data_dir, keystore)
    minimum = _timelock_view(w3, contracts, "getMinDelay", [])
    tx = schedule(w3, contracts, account, call, minimum if delay is None else delay)
    _state_line, ready_at = _state(w3, contracts, call)
    typer.echo(f"scheduled {contract}.{function} in {tx}; ready at unix {ready_at}")
    typer.echo("0x" + call.operation_id(contracts).hex())


def _timelock_action(
    verb: str, send: Callable[[Web3, DeployedContracts, LocalAccount, TimelockCall], str]
) -> Callable[..., None]:
    """A command that sends one timelock transaction about a call (execute, cancel)."""

    def command(
        contract: str = CONTRACT,
        function: str = FUNCTION,
        args: str = ARGS,
        keystore: Path | None = KEYSTORE,
        data_dir: Path | None = DATA_DIR,
    ) -> None:
        call, w3, contracts, account = _signed_call(contract, function, args, data_dir, keystore)
        typer.echo(f"{verb} {contract}.{function} in {send(w3, contracts, account, call)}")

    return command


governance.command("execute", help="Run a scheduled call whose delay has passed.")(
    _timelock_action("executed", execute)
)
governance.command(
    "cancel", help="Withdraw a scheduled call before it runs (proposers and cancellers may)."
)(_timelock_action("cancelled", cancel))


@governance.command("status")
def status_command(
    contract: str = CONTRACT,
    function: str = FUNCTION,
    args: str = ARGS,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Where a call stands: unset, waiting (until when), ready or done."""
    configure_logging("WARNING")
    call = _call(contract, function, args)
    settings = node_settings(data_dir)
    target = read_chain_target(settings)
    contracts = DeployedContracts.from_manifest(target.manifest, compile_contracts())
    state, ready_at = _state(connect(target.rpc_url), contracts, call)
    typer.echo(json.dumps({"operation": state, "ready_at": ready_at}))
