"""`creditnet risk`: train a scorecard from a CSV, register it, activate it for a product,
replay past applications under a candidate policy; and `creditnet pii rotate`.

Registration and activation made here are recorded as made by `cli` (the activation
trail's `activated_by`); a running node's workers pick up an activation within the
offer cache's few seconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import typer
from sqlalchemy.engine import Connection

from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.cli.simulation_report import format_simulation_table, simulation_json
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.model_activation import activate_model
from node_api.onboarding.offers import fetch_newest_product_version
from node_api.onboarding.policies import OnboardingPolicy
from node_api.onboarding.ring_links import fetch_all_links
from node_api.onboarding.rotation import rotate_all
from node_api.onboarding.simulation import fetch_candidate_policy, simulate_policy
from node_api.onboarding.vault_factory import build_vault
from node_api.risk.card import compute_data_fingerprint
from node_api.risk.model_registry import (
    RegisteredModel,
    list_activations,
    list_models,
    parse_uploaded_card,
    register_model,
)

risk_app = typer.Typer(
    help="Risk models: train, register and activate scorecards; simulate policies.",
    no_args_is_help=True,
)
CLI_ACTOR = "cli"
"""Who the audit trail names for changes made from the command line."""
pii_app = typer.Typer(help="Personal data at rest: key rotation.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(risk_app, name="risk")
    app.add_typer(pii_app, name="pii")


@risk_app.command("train")
def train(
    data: Path = typer.Option(..., help="training CSV file"),
    target: str = typer.Option(..., help="target column"),
    bad: str = typer.Option(..., help="target value that means bad"),
    ignore: list[str] = typer.Option([], help="column to leave out (repeatable)"),
    out: Path | None = typer.Option(None, help="where to write the JSON card"),
    model: str = typer.Option(
        "scorecard", help="scorecard (WOE logistic) or gbm (monotonic boosted trees)"
    ),
    folds: int = typer.Option(5, help="cross-validation folds"),
    rounds: int | None = typer.Option(None, help="boosting rounds (gbm; default 300)"),
    bags: int | None = typer.Option(
        None, help="boosters averaged per feature set (gbm; 1 to 10, default 5)"
    ),
    linear: str = typer.Option(
        "auto",
        help="gbm: start the trees from a linear part: auto (inner cross-validation decides), "
        "always or never",
    ),
    role: list[str] = typer.Option(
        [], help="ROLE=COLUMN: what a numeric column means (gbm derived ratios; repeatable)"
    ),
) -> None:
    """Cross-validate and fit a WOE logistic scorecard (or, with `--model gbm`, monotonic
    boosted trees served without the training library, compared with the scorecard and a
    one-hot logistic benchmark on the same folds); print the metrics as one JSON object."""
    from node_api.risk.training import main as train_main  # needs the `risk` extra

    argv = ["--data", str(data), "--target", target, "--bad", bad, "--model", model]
    argv += ["--folds", str(folds), "--linear", linear]
    for column in ignore:
        argv += ["--ignore", column]
    if out is not None:
        argv += ["--out", str(out)]
    if rounds is not None:
        argv += ["--rounds", str(rounds)]
    if bags is not None:
        argv += ["--bags", str(bags)]
    for item in role:
        argv += ["--role", item]
    status = train_main(argv)
    if status != 0:
        raise typer.Exit(status)


@risk_app.command("communities")
def communities(
    method: str = typer.Option("components", help="components or louvain"),
    min_identities: int = typer.Option(3, help="smallest cluster to report"),
    top: int = typer.Option(20, help="report at most this many clusters, largest first"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Fraud clusters from the whole link history (hashes only), as one JSON object."""
    from node_api.risk.communities import CommunityMethod, compute_communities  # networkx

    if method not in {item.value for item in CommunityMethod}:
        raise typer.BadParameter("method must be components or louvain", param_hint="--method")
    database = _open_database(data_dir)
    try:
        with database.engine.connect() as conn:
            links = fetch_all_links(conn)
    finally:
        database.dispose()
    chosen = CommunityMethod(method)
    found = compute_communities(links, method=chosen, identity_count_min=min_identities)
    report = {
        "links": len(links),
        "communities": len(found),
        "largest": [community.to_dict() for community in found[:top]],
    }
    typer.echo(json.dumps(report))


def _open_database(data_dir: Path | None) -> Database:
    return open_database(node_settings(data_dir))


def _model_json(model: RegisteredModel) -> dict[str, object]:
    return {
        "version": model.version,
        "model_id": model.model_id,
        "label": model.label,
        "characteristics": list(model.characteristics),
        "metrics": model.metrics.model_dump(mode="json"),
        "data_fingerprint": model.data_fingerprint,
        "fingerprint_source": model.fingerprint_source.value,
        "registered_by": model.registered_by,
        "registered_at": model.registered_at.isoformat(),
    }


def _fail(error: CreditNetError) -> typer.Exit:
    """Print a refusal as one JSON line on stderr; exit status 2, like `risk train`."""
    refusal = {"error": error.detail, "code": error.code, "field": error.field}
    typer.echo(json.dumps(refusal), err=True)
    return typer.Exit(2)


@risk_app.command("register")
def register_card(
    card: Path = typer.Argument(..., help="the JSON card `creditnet risk train --out` wrote"),
    data: Path | None = typer.Option(None, help="the training CSV, to fingerprint"),
    label: str | None = typer.Option(None, help="a name for people (default: the file's stem)"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Register a trained card under the next model version; print its record as JSON."""
    if not card.is_file():
        raise typer.BadParameter("card file not found", param_hint="CARD")
    if data is not None and not data.is_file():
        raise typer.BadParameter("data file not found", param_hint="--data")
    fingerprint = None if data is None else compute_data_fingerprint(data.read_bytes())
    database = _open_database(data_dir)
    try:
        with database.engine.begin() as conn:
            model, created = register_model(
                conn,
                parse_uploaded_card(card.read_text(encoding="utf-8")),
                label=label or _label_of(card),
                data_fingerprint=fingerprint,
                registered_by=CLI_ACTOR,
                registered_at=datetime.now(UTC),
            )
    except CreditNetError as error:
        raise _fail(error) from None
    finally:
        database.dispose()
    typer.echo(json.dumps({**_model_json(model), "created": created}))


def _label_of(card: Path) -> str:
    """The file's stem as a label (characters a label may not hold become `-`)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]", "-", card.stem)[:64].lstrip("_.:-")
    return cleaned or "model"


@risk_app.command("models")
def models(data_dir: Path | None = DATA_DIR) -> None:
    """Every registered model and the activation trail, as one JSON object."""
    database = _open_database(data_dir)
    try:
        with database.engine.connect() as conn:
            registered = list_models(conn)
            trail = list_activations(conn)
    finally:
        database.dispose()
    activations = [
        {**asdict(item), "activated_at": item.activated_at.isoformat()} for item in trail
    ]
    report = {"models": [_model_json(m) for m in registered], "activations": activations}
    typer.echo(json.dumps(report))


@risk_app.command("activate")
def activate(
    version: int = typer.Argument(..., min=1, help="the registered model version"),
    product: str = typer.Option(..., help="the product code whose policy uses it"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Make a registered model the one a product's applications are scored by."""
    settings = node_settings(data_dir)
    database = open_database(settings)
    context = OnboardingContext.from_settings(settings)
    try:
        with database.engine.begin() as conn:
            fetch_newest_product_version(conn, product)
            published = activate_model(
                conn, product, version, who=CLI_ACTOR, at=datetime.now(UTC), context=context
            )
    except CreditNetError as error:
        raise _fail(error) from None
    finally:
        database.dispose()
    activation = published.activation
    typer.echo(
        json.dumps(
            {
                "product_code": product,
                "policy_version": published.version,
                "activation": None
                if activation is None
                else {**asdict(activation), "activated_at": activation.activated_at.isoformat()},
            }
        )
    )


def _candidate(
    conn: Connection, product: str, policy: str, context: OnboardingContext
) -> OnboardingPolicy:
    """A policy document from a JSON file, or a stored version of the product's policy."""
    path = Path(policy)
    if path.is_file():
        try:
            document = OnboardingPolicy.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as error:
            message = f"not a policy document: {error}"
            raise typer.BadParameter(message, param_hint="--policy") from None
        return fetch_candidate_policy(conn, product, document, None, context)
    if policy.isdigit():
        return fetch_candidate_policy(conn, product, None, int(policy), context)
    raise typer.BadParameter("a policy JSON file or a policy version", param_hint="--policy")


@risk_app.command("simulate")
def simulate(
    policy: str = typer.Option(..., help="candidate: a policy JSON file or a policy version"),
    product: str = typer.Option(..., help="the product whose applications to replay"),
    from_date: datetime = typer.Option(..., "--from", formats=["%Y-%m-%d"], help="first day"),
    to_date: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"], help="last day"),
    table: bool = typer.Option(False, "--table", help="print a text table instead of JSON"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Replay stored applications (business dates FROM..TO) under a candidate policy and
    print the swap set, approval and expected bad rates and limit totals. Changes nothing."""
    settings = node_settings(data_dir)
    database = open_database(settings)
    context = OnboardingContext.from_settings(settings)
    try:
        with database.engine.connect() as conn:
            fetch_newest_product_version(conn, product)
            report = simulate_policy(
                conn,
                product,
                _candidate(conn, product, policy, context),
                from_date=from_date.date(),
                to_date=to_date.date(),
                context=context,
            )
    except CreditNetError as error:
        raise _fail(error) from None
    finally:
        database.dispose()
    typer.echo(format_simulation_table(report) if table else json.dumps(simulation_json(report)))


@pii_app.command("rotate")
def rotate(
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Re-encrypt every stored PII envelope under the active key (the first of
    CREDITNET_PII_KEYS); prints how many rows were checked and rotated, as JSON."""
    settings = node_settings(data_dir)
    database = open_database(settings)
    try:
        report = rotate_all(database, build_vault(settings))
    finally:
        database.dispose()
    typer.echo(json.dumps(asdict(report)))
