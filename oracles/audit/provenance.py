"""`provenance.models_active`: every agreement was decided by a model active at the time.

Since decision provenance, an agreement's on-chain `termsHash` is keccak256 of its
version-2 terms document (`node_api/onboarding/provenance.py`), which the lender's
export carries next to the product terms: it names the model (`model_id`, its registry
`model_version`), the policy version, the arm of a champion/challenger test, and when
the application was decided. This check holds each such agreement on-chain against the
lender's model trail (`GET /v1/risk/models` and `GET /v1/risk/activations`, read with
the auditor key, or the same two answers saved in one JSON file for `--trail`):

- the document must hash to the on-chain `termsHash` and name stored product terms;
- a champion decision must name the model the product's activation trail had in force
  when it was decided (before the product's first activation: the default policy's
  packaged card);
- a challenger decision must name a registered model registered before the decision,
  or a packaged card;
- the version in the document must be the one the registry gives that model.

Agreements whose terms are the product terms themselves (version 1, opened before
provenance existed) are counted, not judged. Without a trail (an export file audited
without `--trail`) the documents are still checked against the chain and the product
terms, and the message says the models were not checked.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from eth_hash.auto import keccak

from node_api.kernel.errors import ConfigurationError
from node_api.onboarding.policies import DEFAULT_POLICY
from node_api.onboarding.provenance import AgreementTermsV2, parse_terms_document
from node_api.onboarding.scorecards import PACKAGED_CARDS
from node_api.risk.scorecard import Scorecard
from oracles.audit.checks import CheckResult, Evidence, make_check
from oracles.audit.export_reader import BooksExport
from oracles.audit.replay_state import AgreementReplay

MODELS_PATH = "/v1/risk/models"
ACTIVATIONS_PATH = "/v1/risk/activations"
API_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ModelTrail:
    """The lender's registered models and the activation trail of every product."""

    registered: Mapping[str, tuple[int, datetime]]
    """model_id -> (version, registered_at)."""
    activations: Mapping[str, list[tuple[datetime, str]]]
    """product code -> [(activated_at, model_id)] in trail order."""
    packaged: frozenset[str] = field(default_factory=lambda: get_packaged_model_ids())

    @classmethod
    def from_answers(cls, models: Mapping[str, Any], activations: Mapping[str, Any]) -> ModelTrail:
        """From the JSON answers of the two endpoints (or a file holding both)."""
        registered = {
            str(m["model_id"]): (int(m["version"]), datetime.fromisoformat(m["registered_at"]))
            for m in models["models"]
        }
        trail: dict[str, list[tuple[datetime, str]]] = {}
        for item in activations["activations"]:
            trail.setdefault(str(item["product_code"]), []).append(
                (datetime.fromisoformat(item["activated_at"]), str(item["model_id"]))
            )
        return cls(registered, trail)

    def active_at(self, product_code: str, moment: datetime) -> str:
        """The model id the product decided with at `moment`."""
        changes = self.activations.get(product_code, [])
        position = bisect.bisect_right([at for at, _ in changes], moment)
        if position == 0:
            return Scorecard.load_packaged(DEFAULT_POLICY.card).model_id
        return changes[position - 1][1]


def get_packaged_model_ids() -> frozenset[str]:
    """The model ids of the cards shipped with the node (policies may name them)."""
    return frozenset(Scorecard.load_packaged(name).model_id for name in PACKAGED_CARDS)


def fetch_trail_api(
    base_url: str, auditor_key: str, client: httpx.Client | None = None
) -> ModelTrail:
    """The trail from the node's API with an auditor key (never logged or reported)."""
    headers = {"Authorization": f"Bearer {auditor_key}"}
    http = client or httpx.Client(timeout=API_TIMEOUT_S)
    answers = []
    try:
        for path in (MODELS_PATH, ACTIVATIONS_PATH):
            url = base_url.rstrip("/") + path
            response = http.get(url, headers=headers)
            if response.status_code != 200:
                raise ConfigurationError(f"{url} answered HTTP {response.status_code}", field="api")
            answers.append(response.json())
    finally:
        if client is None:
            http.close()
    return ModelTrail.from_answers(answers[0], answers[1])


def read_trail_path(path: Path) -> ModelTrail:
    """A file `{"models": [...], "activations": [...]}` (the two answers, merged)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return ModelTrail.from_answers(document, document)
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigurationError(f"{path} is not a model trail file", field="trail") from None


def judge_agreement(document: AgreementTermsV2, trail: ModelTrail) -> str:
    """Why this decision's model was not active, registered or consistent ('' if it was)."""
    decision = document.decision
    decided_at = document.decided_at
    registered = trail.registered.get(decision.model_id)
    if registered is not None and decision.model_version != registered[0]:
        return (
            f"names model version {decision.model_version}, the registry has "
            f"{decision.model_id} as version {registered[0]}"
        )
    if registered is None and decision.model_id not in trail.packaged:
        return f"decided by {decision.model_id}, which is neither registered nor packaged"
    if registered is not None and registered[1] > decided_at:
        return f"decided at {decision.decided_at} by a model registered only at {registered[1]}"
    if decision.arm == "challenger":
        return ""
    active = trail.active_at(document.product_code, decided_at)
    if active != decision.model_id:
        return (
            f"decided at {decision.decided_at} by {decision.model_id}, while the product's "
            f"active model was {active}"
        )
    return ""


def check_provenance(
    agreements: Iterable[AgreementReplay],
    export: BooksExport,
    trail: ModelTrail | Callable[[], ModelTrail | None] | None,
    address: str,
) -> CheckResult:
    """The `provenance.models_active` check (module docstring). `trail` may be a loader:
    it is called only when some agreement commits to a model (an audit of books without
    provenance never asks the node for its trail)."""
    if callable(trail) and any(
        parse_terms_document(record.canonical_terms) is not None for record in export.terms.values()
    ):
        trail = trail()
    failures: list[Evidence] = []
    legacy = judged = 0
    for agreement in sorted(agreements, key=lambda a: a.agreement_id):
        stored = export.terms.get(agreement.terms_hash)
        document = None if stored is None else parse_terms_document(stored.canonical_terms)
        if stored is None or document is None:
            legacy += 1  # product terms (version 1) or missing: reconcile.terms_* judge those
            continue
        judged += 1
        ref = agreement.opened
        problem = ""
        digest = "0x" + keccak(stored.canonical_terms.encode("utf-8")).hex()
        if digest != agreement.terms_hash:
            problem = f"its terms document hashes to {digest}"
        elif document.product_terms_hash not in export.terms:
            problem = f"names product terms {document.product_terms_hash} the books do not hold"
        elif trail is not None and not callable(trail):
            problem = judge_agreement(document, trail)
        if problem:
            failures.append(
                Evidence(
                    None if ref is None else ref.block,
                    None if ref is None else ref.tx,
                    address,
                    {
                        "problem": f"agreement {agreement.agreement_id}: {problem}",
                        "model_id": document.decision.model_id,
                        "model_version": document.decision.model_version,
                        "decided_at": document.decision.decided_at,
                    },
                )
            )
    checked = (
        "each active at the time"
        if trail is not None and not callable(trail)
        else "not checked against a model trail (audit with --api, or give --trail)"
    )
    return make_check(
        "provenance.models_active",
        "Every agreement was decided by a registered model active at the time",
        failures,
        ok_message=(
            f"{judged} agreements name the model that decided them, {checked}; "
            f"{legacy} opened before decision provenance"
        ),
        fail_message="{count} agreements decided by a model not active at the time; first: {first}",
    )
