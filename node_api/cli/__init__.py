"""`creditnet`: the one command-line entry point and composition root."""

from __future__ import annotations

import shutil
import sys

import typer
from typer import rich_utils

from node_api.cli import (
    admin,
    bench,
    claim,
    contracts,
    demo,
    eod,
    governance,
    node,
    oracles,
    risk,
    settle,
    signer,
    treasury,
)
from node_api.kernel.errors import CreditNetError
from oracles.audit import cli as audit_cli

HELP_WIDTH_MIN = 120
"""Help is laid out at least this wide (rich would use 80 columns without a terminal and
cut long words such as environment variable names with an ellipsis)."""
if rich_utils.MAX_WIDTH is None:  # TERMINAL_WIDTH, when set, wins
    rich_utils.MAX_WIDTH = max(shutil.get_terminal_size((0, 0)).columns, HELP_WIDTH_MIN)

app = typer.Typer(
    name="creditnet",
    help="CreditNet lender node: run it, manage keys, build and deploy contracts, benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
node.register(app)
admin.register(app)
bench.register(app)
oracles.register(app)
risk.register(app)
eod.register(app)
settle.register(app)
treasury.register(app)
contracts.register(app)
claim.register(app)
demo.register(app)
audit_cli.register(app)
signer.register(app)
governance.register(app)


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
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(result if isinstance(result, int) else 0)
