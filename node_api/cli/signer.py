"""`creditnet signer init` and `creditnet signer serve`: an oracle signer that a funding
partner (or an auditor) runs on its own machine, with its own key and its own database.

`init --data-dir D` creates the signer's key in `D/keystore` (encrypted with
`CREDITNET_KEYSTORE_PASSWORD`) and prints its address as the last line: the lender puts
it in the node's `CREDITNET_REMOTE_SIGNERS` (`0xADDRESS=URL`), and so in the deployment's
OracleQuorum.

`serve` checks, before it answers anything, that the node's published contracts
(`GET /v1/contracts`) are what the chain at `--rpc` shows and that this signer is one of
the OracleQuorum's signers, and that the partner API key (`CREDITNET_SIGNER_API_KEY`,
never a flag) is partner `--partner-id`'s; it refuses to start otherwise with one line.
Then it records every new cycle of the partner in `D/signer.db` in a background thread
and serves the remote signer protocol (`node_api.http.signer_app`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import typer
import uvicorn

from node_api.http.signer_app import create_signer_app
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.logs import configure_logging
from oracles.tx_sender import JsonRpcClient
from settlement.partner_signer import (
    PartnerSigner,
    SignerStore,
    check_deployment,
    connect_partner_api,
    create_signer_key,
    fetch_deployment,
    fetch_partner_identity,
    load_signer_key,
    run_recording,
)

API_KEY_ENV = "CREDITNET_SIGNER_API_KEY"
PASSWORD_ENV = "CREDITNET_KEYSTORE_PASSWORD"

log = logging.getLogger("creditnet.signer")

signer_app = typer.Typer(
    help="A partner's or an auditor's own oracle signer: its own key, its own record.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(signer_app, name="signer")


def _required_env(name: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigurationError(f"set {name} to {what}")
    return value


DATA_DIR_OPTION = typer.Option(..., "--data-dir", help="the signer's own folder (key, database)")


@signer_app.command("init")
def init(data_dir: Path = DATA_DIR_OPTION) -> None:
    """Create the signer's key in DATA_DIR/keystore (kept if it exists) and print its
    address as the last line."""
    configure_logging("WARNING")
    password = _required_env(PASSWORD_ENV, "the signer keystore's password")
    account = create_signer_key(data_dir, password)
    typer.echo(f"signer keystore in {data_dir / 'keystore'}")
    typer.echo(account.address)


@signer_app.command("serve")
def serve(
    data_dir: Path = DATA_DIR_OPTION,
    node_url: str = typer.Option(..., "--node-url", help="the lender node's API base URL"),
    partner_id: int = typer.Option(..., "--partner-id", min=1, help="your partner id"),
    port: int = typer.Option(..., "--port", min=1, max=65_535, help="port to serve on"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to serve on"),
    rpc: str = typer.Option(..., "--rpc", help="chain JSON-RPC URL (to check the node)"),
    poll_s: float = typer.Option(2.0, "--poll-interval", min=0.1, help="seconds between polls"),
) -> None:
    """Serve the remote signer protocol for PARTNER_ID, signing a cycle report only when
    the partner's entries prove against it, sum to its position and match this signer's
    own record (API key in CREDITNET_SIGNER_API_KEY, keystore password in
    CREDITNET_KEYSTORE_PASSWORD)."""
    configure_logging()
    api_key = _required_env(API_KEY_ENV, "your partner API key")
    account = load_signer_key(data_dir, _required_env(PASSWORD_ENV, "the keystore's password"))
    node = connect_partner_api(node_url, api_key)
    identity = fetch_partner_identity(node)
    if identity.partner_id != partner_id:
        raise ConfigurationError(
            f"the API key in {API_KEY_ENV} is partner {identity.partner_id}'s, not {partner_id}'s"
        )
    rpc_client = JsonRpcClient(rpc)
    try:
        domain = check_deployment(rpc_client, fetch_deployment(node), account.address)
    finally:
        rpc_client.close()
    store = SignerStore.open(data_dir, partner_id=partner_id, signer_address=account.address)
    signer = PartnerSigner(
        account,
        partner_id=partner_id,
        node=node,
        domain=domain,
        store=store,
        salts=identity.salts,
    )
    stop = threading.Event()
    recorder = threading.Thread(
        target=run_recording, args=(signer, stop, poll_s), name="signer-recording", daemon=True
    )
    recorder.start()
    log.info(
        "signer ready",
        extra={
            "address": account.address,
            "partner_id": partner_id,
            "chain_id": domain.chain_id,
            "clearing_house": domain.clearing_house,
            "port": port,
        },
    )
    try:
        uvicorn.run(
            create_signer_app(signer), host=host, port=port, log_config=None, access_log=False
        )
    finally:
        stop.set()
        recorder.join(10)
        node.close()
        store.close()
