"""`creditnet`: the one command-line entry point and composition root."""

from __future__ import annotations

import importlib
import shutil
import sys

import typer
from typer import _click as click  # typer's own click (it vendors one since 0.26)
from typer import rich_utils
from typer.core import TyperGroup

from node_api.kernel.errors import CreditNetError

HELP_WIDTH_MIN = 120
"""Help is laid out at least this wide (rich would use 80 columns without a terminal and
cut long words such as environment variable names with an ellipsis)."""
if rich_utils.MAX_WIDTH is None:  # TERMINAL_WIDTH, when set, wins
    rich_utils.MAX_WIDTH = max(shutil.get_terminal_size((0, 0)).columns, HELP_WIDTH_MIN)

COMMANDS: dict[str, str] = {
    "up": "node_api.cli.node",
    "compile": "node_api.cli.node",
    "deploy": "node_api.cli.node",
    "migrate": "node_api.cli.admin",
    "business-date": "node_api.cli.admin",
    "customer-ids": "node_api.cli.admin",
    "keys": "node_api.cli.admin",
    "bench": "node_api.cli.bench",
    "relayer": "node_api.cli.oracles",
    "indexer": "node_api.cli.oracles",
    "risk": "node_api.cli.risk",
    "pii": "node_api.cli.risk",
    "eod": "node_api.cli.eod",
    "bureau": "node_api.cli.eod",
    "settle": "node_api.cli.settle",
    "verify": "node_api.cli.settle",
    "treasury": "node_api.cli.treasury",
    "contracts": "node_api.cli.contracts",
    "claim": "node_api.cli.claim",
    "demo": "node_api.cli.demo",
    "audit": "oracles.audit.cli",
    "signer": "node_api.cli.signer",
    "governance": "node_api.cli.governance",
}
"""Each command, in the order `--help` lists them, and the module whose `register(app)`
declares it. A command's module is imported only when that command runs (or `--help`
lists it), so `creditnet keys create` does not pay for the chain client and the API
(5.6 s to start before, when every module was imported up front)."""


class LazyCommands(TyperGroup):
    """The root group: commands come from their modules on first use (see COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        declared = typer.Typer()
        importlib.import_module(module_name).register(declared)
        return typer.main.get_group(declared).get_command(ctx, cmd_name)


app = typer.Typer(
    name="creditnet",
    cls=LazyCommands,
    help="CreditNet lender node: run it, manage keys, build and deploy contracts, benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """CreditNet lender node: run it, manage keys, build and deploy contracts, benchmarks."""


def main() -> None:
    """Run the CLI; an expected failure prints one line `error: ...` and exits 2."""
    try:
        # Without standalone mode click returns a command's `typer.Exit` code instead of
        # exiting; pass it on so a failed check (verify, audit) exits non-zero.
        result = app(standalone_mode=False)
    except CreditNetError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # click usage errors and the like
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(result if isinstance(result, int) else 0)
