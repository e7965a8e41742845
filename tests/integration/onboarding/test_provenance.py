"""Decision provenance: each agreement's terms hash commits to the model that decided it and
to the salted hash of the decision's inputs; the audit export carries the documents, and
`provenance.models_active` reports agreements decided by a model not active at the time."""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak

from node_api.http.services import services_of
from node_api.kernel.db import Database
from node_api.onboarding.application_input import ApplicationInput
from node_api.onboarding.application_store import fetch_application_row, get_application_context
from node_api.onboarding.provenance import (
    compute_decision_inputs,
    compute_input_hash,
    fetch_agreement_terms,
    parse_terms_document,
)
from node_api.risk.scorecard import Scorecard
from oracles.audit.books_export import stream_export
from oracles.audit.export_reader import BooksExport, read_export
from oracles.audit.provenance import ModelTrail, check_provenance, fetch_trail_api
from oracles.audit.replay_state import AgreementReplay
from settlement.salts import LeafSalts
from tests.integration.onboarding.onboarding_helpers import (
    BORDERLINE_PROFILE,
    Api,
    application_body,
)


def export_books(api: Api) -> BooksExport:
    """The books export as the node streams it (`GET /v1/audit/export` once on a chain)."""
    services = services_of(api.client.app)
    salts = LeafSalts.from_settings(services.settings)
    return read_export(stream_export(services.database, 31337, None, salts), "test")


def fetch_trail(api: Api) -> ModelTrail:
    return fetch_trail_api("http://testserver", api.keys["auditor"], client=api.client)


def on_chain(export: BooksExport) -> list[AgreementReplay]:
    """The agreements as the chain would hold them (the outbox payloads, once relayed)."""
    return [
        AgreementReplay(
            agreement_id=record.agreement_id,
            borrower_ref=record.borrower_ref,
            terms_hash=record.terms_hash,
            product_code=record.product_code,
            apr_bps=record.apr_bps,
            opened_at=record.opened_at,
            commitment="",
            opened=None,
            limit_fen=record.limit_fen,
            status=1,
            last_reason_code=0,
            change_count=0,
        )
        for record in export.agreements.values()
    ]


def approve(api: Api, **changes: Any) -> dict[str, Any]:
    response = api.apply(application_body(**changes))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_terms_hash_commits_to_the_model_and_the_salted_inputs(
    api: Api, database: Database
) -> None:
    decided = approve(api)
    context = services_of(api.client.app).onboarding.current()
    with database.engine.connect() as conn:
        stored = fetch_agreement_terms(conn, decided["application_id"])
        row = fetch_application_row(conn, decided["application_id"])
    assert stored is not None and stored.agreement_id == decided["agreement_id"]
    document = parse_terms_document(stored.document)
    assert document is not None
    assert document.decision.model_id == decided["model_id"]
    assert document.decision.model_version is None  # the packaged card
    assert document.decision.arm == "champion"
    plaintext = context.vault.decrypt(row.inputs_enc, get_application_context(row.id))
    inputs = compute_decision_inputs(ApplicationInput.from_json(plaintext).to_json(), None)
    assert compute_input_hash(inputs, stored.input_salt) == document.decision.input_hash
    assert "id_number" not in stored.document and decided["agreement_id"] in stored.agreement_id
    export = export_books(api)
    [agreement] = export.agreements.values()
    assert agreement.terms_hash == "0x" + keccak(stored.document.encode("ascii")).hex()
    assert export.terms[agreement.terms_hash].canonical_terms == stored.document
    assert document.product_terms_hash in export.terms


def test_a_document_that_does_not_hash_to_the_chain_is_reported(api: Api) -> None:
    approve(api)
    export = export_books(api)
    [agreement] = on_chain(export)
    stored = export.terms[agreement.terms_hash]
    edited = stored.canonical_terms.replace('"arm":"champion"', '"arm":"challenger"')
    export.terms[agreement.terms_hash] = stored.model_copy(update={"canonical_terms": edited})
    result = check_provenance([agreement], export, fetch_trail(api), "0xregistry")
    assert not result.passed and "hashes to" in result.message


def test_a_line_opened_on_review_commits_to_the_model_that_scored_the_application(
    api: Api, database: Database
) -> None:
    decided = api.apply(application_body(profile=BORDERLINE_PROFILE)).json()
    assert decided["decision"] == "review"
    reviewed = api.review(decided["application_id"], "approve", "INCOME_VERIFIED")
    assert reviewed.status_code == 200, reviewed.text
    with database.engine.connect() as conn:
        stored = fetch_agreement_terms(conn, decided["application_id"])
    assert stored is not None
    document = parse_terms_document(stored.document)
    assert document is not None
    assert document.decision.model_id == Scorecard.load_packaged("german").model_id
    export = export_books(api)
    result = check_provenance(on_chain(export), export, fetch_trail(api), "0xregistry")
    assert result.passed, result.message
