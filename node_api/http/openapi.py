"""The node's OpenAPI document: what FastAPI generates, refined where it cannot say it.

- Operation ids are the routes' names (`purchases_create`): `operation_id` is the app's
  `generate_unique_id_function`, and every route declares `name=`.
- `Idempotency-Key` is required wherever the route requires it at run time (the routes
  check it themselves to answer 400 with a problem body instead of a validation error).
- Every amount, rate and share states its unit, derived from the field name's suffix
  (`_fen`, `_bps`, `_ppm`, `_ppm_per_day`) so a new field cannot forget it.
- Request and response bodies carry an example (`node_api.http.examples`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from fastapi.routing import APIRoute

from node_api.http.examples import EXAMPLES, OPERATION_EXAMPLES
from node_api.idempotency import IDEMPOTENCY_HEADER, KEY_MAX_CHARS

JsonObject = dict[str, Any]
"""A node of the OpenAPI document (FastAPI's own type for it)."""

IDEMPOTENCY_PARAMETER: Final[JsonObject] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": True,
    "description": (
        f"A key you choose for this request: 1 to {KEY_MAX_CHARS} visible ASCII characters. "
        "Retrying with the same key and body returns the first response (with header "
        "`Idempotent-Replayed: true`) and changes nothing; the same key with another body "
        "is refused with 409."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_MAX_CHARS,
        "pattern": "^[!-~]+$",
    },
    "example": "order-20250630-0001",
}

UNITS: Final = (
    (
        re.compile(r"(^|_)ppm_per_day($|_)"),
        "ppm per day",
        "in ppm per day (parts per million a day)",
    ),
    (re.compile(r"(^|_)fen($|_)"), "fen", "in fen (integer; 100 fen = 1 yuan)"),
    (re.compile(r"(^|_)bps($|_)"), "basis points", "in basis points (1 bps = 0.01%)"),
    (re.compile(r"(^|_)ppm($|_)"), "ppm", "in parts per million (1,000,000 ppm = 100%)"),
)
"""Field-name pattern, the word a description must contain, and the phrase that says it."""

EXPLICIT_UNITS: Final[dict[tuple[str, str], str]] = {
    ("InterestTerms", "rate"): (
        "The interest rate: in ppm per day when `method` is `daily_ppm`, in basis points "
        "a year when it is `apr_bps`."
    ),
}
"""Rate fields whose unit their name cannot carry: (schema, property) -> description."""


OPENAPI_TAGS: Final[list[JsonObject]] = [
    {"name": "health", "description": "Is the node up: chain, contracts, database."},
    {"name": "applications", "description": "Apply for credit; read, replay and review "
     "decisions. The scorecard's inputs: `GET /v1/risk/cards/active`."},
    {"name": "credit lines", "description": "Lines and their multi-level limits."},
    {"name": "purchases", "description": "Scan-to-pay purchases, cash drawdowns, refunds."},
    {"name": "repayments", "description": "Payments and their reversal."},
    {"name": "installments", "description": "Installment plans, payoff quotes, cancellation."},
    {"name": "bills", "description": "Monthly bills and delinquency."},
    {"name": "products", "description": "Immutable product versions and what-if pricing."},
    {"name": "ledger", "description": "Trial balance, line balances, the business date."},
    {"name": "portfolio", "description": "Receivables by delinquency bucket."},
    {"name": "risk", "description": "Scorecards, onboarding policies, blacklist, stability."},
    {"name": "agreements", "description": "Credit agreements and their anchoring on-chain."},
    {"name": "contracts", "description": "The deployed contracts: addresses, ABIs, leaf "
     "encodings and codes, for partners' and auditors' own tools."},
    {"name": "settlement", "description": "Partners, settlement cycles, a partner's entries "
     "with Merkle proofs."},
    {"name": "oracles", "description": "Relayer backlog, indexer lag, oracle signers."},
    {"name": "collections", "description": "Delinquent cases, strategies, contacts under "
     "conduct rules, promises to pay, hardship plans."},
    {"name": "audit", "description": "The books' export for auditors."},
]  # fmt: skip
"""The tags in the order the documentation lists them, with what each covers."""


def operation_id(route: APIRoute) -> str:
    """The operation id of a route: its declared name (`purchases_create`)."""
    return route.name


def unit_of(name: str) -> tuple[str, str] | None:
    """(word, phrase) of the unit a field name declares, or None."""
    for pattern, word, phrase in UNITS:
        if pattern.search(name):
            return word, phrase
    return None


def refine_openapi(document: JsonObject) -> JsonObject:
    """Apply every refinement of the module docstring to FastAPI's document, in place."""
    components: JsonObject = document.setdefault("components", {})
    schemas: JsonObject = components.setdefault("schemas", {})
    for name, schema in schemas.items():
        _state_units(name, schema)
        example = EXAMPLES.get(name)
        if example is not None:
            schema["examples"] = [example]
    for operation in _operations(document):
        _summarize(operation)
        _require_idempotency_key(operation)
        _add_examples(operation, schemas)
    return document


def _operations(document: JsonObject) -> Iterator[JsonObject]:
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield operation


def _state_units(schema_name: str, schema: JsonObject) -> None:
    for name, prop in schema.get("properties", {}).items():
        explicit = EXPLICIT_UNITS.get((schema_name, name))
        if explicit is not None:
            prop["description"] = explicit
            continue
        unit = unit_of(name)
        if unit is None:
            continue
        word, phrase = unit
        description = str(prop.get("description", "")).strip()
        if not description:
            prop["description"] = phrase[0].upper() + phrase[1:] + "."
        elif word not in description:
            prop["description"] = f"{description.rstrip('.')} ({phrase})."


def _summarize(operation: JsonObject) -> None:
    """A summary from the description's first clause where FastAPI made one up from the
    operation id (`Purchases Create` becomes `Authorize a scan-to-pay purchase`)."""
    made_up = str(operation.get("operationId", "")).replace("_", " ").title()
    description = " ".join(str(operation.get("description", "")).split("\n\n")[0].split())
    if operation.get("summary") == made_up and description:
        first = re.split(r"[.:;](?:\s|$)", description, maxsplit=1)[0]
        operation["summary"] = first if len(first) <= 90 else made_up


def _require_idempotency_key(operation: JsonObject) -> None:
    parameters: list[JsonObject] = operation.get("parameters", [])
    for index, parameter in enumerate(parameters):
        if parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_HEADER:
            parameters[index] = dict(IDEMPOTENCY_PARAMETER)


def _schema_example(schema: JsonObject, schemas: JsonObject) -> object | None:
    """The example of a body schema: its component's, or a list of its items' examples."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return EXAMPLES.get(ref.rsplit("/", 1)[-1])
    if schema.get("type") == "array":
        item = _schema_example(schema.get("items", {}), schemas)
        return None if item is None else [item]
    for option in schema.get("anyOf", []):
        found = _schema_example(option, schemas)
        if found is not None:
            return found
    title = schema.get("title")
    return EXAMPLES.get(title) if isinstance(title, str) else None


def _add_examples(operation: JsonObject, schemas: JsonObject) -> None:
    explicit = OPERATION_EXAMPLES.get(str(operation.get("operationId")), {})
    bodies: list[tuple[str, JsonObject]] = []
    request_body = operation.get("requestBody")
    if request_body is not None:
        bodies.append(("request", request_body))
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith("2"):
            bodies.append((str(status), response))
    for where, body in bodies:
        for media_type, content in body.get("content", {}).items():
            if "example" in content or "examples" in content:
                continue
            example: object = explicit.get(where)
            if example is None and "json" in media_type:
                example = _schema_example(content.get("schema", {}), schemas)
            if example is not None:
                content["example"] = example
