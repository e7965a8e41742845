"""Decision provenance: each agreement's on-chain terms commit to the model that decided it.

An agreement's `termsHash` is keccak256 of its version-2 terms document (canonical JSON:
sorted keys, no spaces, ASCII):

    {"decision": {"arm": "champion", "decided_at": "2025-06-30T08:00:00Z",
                  "input_hash": "0x…", "model_id": "sha256:…", "model_version": 3,
                  "policy_version": 2},
     "product_code": "PAY1", "product_terms_hash": "0x…", "product_version": 1,
     "version": 2}

`product_terms_hash` is the product version's own terms hash (so the economic terms are
still those stored canonically), `model_id` the card's content hash and `model_version`
its registry version (null: a packaged card), `arm` which arm of a champion/challenger
test decided, `decided_at` when the application was received (UTC), and `input_hash`
the SHA-256 of a random 32-byte salt followed by the decision's canonical inputs (the
application as submitted and the liveness result it carried). No personal data: the
hash is salted and the salt stays in the node (`agreement_terms.input_salt`).

Agreements opened before this existed keep version 1 (`termsHash` = the product terms'
hash) and verify as before; an auditor tells the versions apart by the stored document.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from eth_hash.auto import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from node_api.lending.products import ProductTerms, terms_hash
from node_api.onboarding.liveness_tables import liveness_challenge_table
from node_api.onboarding.provenance_tables import agreement_terms_table
from node_api.risk.model_registry import fetch_model_version_of
from node_api.risk.registry_tables import decision_arm_table

TERMS_VERSION = 2
SALT_BYTES = 32


@dataclass(frozen=True, slots=True)
class DecisionProvenance:
    """Who decided an application, when, and on what (the inputs are personal data:
    they are only hashed, with a salt, never stored here in plaintext)."""

    model_id: str
    model_version: int | None
    policy_version: int
    arm: str
    decided_at: datetime
    decision_inputs: str
    """Canonical JSON of the decision's inputs (`compute_decision_inputs`)."""


def compute_decision_inputs(application_json: str, liveness_result_sha256: str | None) -> str:
    """The canonical decision inputs: the application as stored (sorted JSON) and the
    SHA-256 of the liveness result it carried, if any."""
    document = {
        "application": json.loads(application_json),
        "liveness_result_sha256": liveness_result_sha256,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def compute_input_hash(decision_inputs: str, salt: bytes) -> str:
    """0x-hex SHA-256 of the salt followed by the canonical inputs."""
    return "0x" + hashlib.sha256(salt + decision_inputs.encode("ascii")).hexdigest()


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DecisionRecordV2(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    arm: Literal["champion", "challenger"]
    decided_at: str
    input_hash: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    model_id: str
    model_version: int | None
    policy_version: int


class AgreementTermsV2(BaseModel):
    """A version-2 agreement terms document (what `termsHash` commits to)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[2]
    product_code: str
    product_version: int
    product_terms_hash: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    decision: DecisionRecordV2

    def to_canonical(self) -> str:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )

    @property
    def decided_at(self) -> datetime:
        return datetime.strptime(self.decision.decided_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=UTC
        )


def parse_terms_document(text: str) -> AgreementTermsV2 | None:
    """The version-2 document in `text`, or None for anything else (product terms)."""
    try:
        return AgreementTermsV2.model_validate_json(text)
    except ValidationError:
        return None


_TERMS_HASHES: dict[int, tuple[ProductTerms, str]] = {}
_TERMS_HASHES_MAX = 256


def get_product_terms_hash(terms: ProductTerms) -> str:
    """0x-hex `terms_hash` of a product version, computed once per terms object.

    The product caches hand out one object per stored version and a version never
    changes, so its canonical JSON and keccak need not be redone for every agreement.
    Keyed by identity, the object itself kept with its hash (its id cannot be reused
    while it is held); equal terms from another cache just compute it again.
    """
    cached = _TERMS_HASHES.get(id(terms))
    if cached is not None and cached[0] is terms:
        return cached[1]
    digest = "0x" + terms_hash(terms).hex()
    if len(_TERMS_HASHES) >= _TERMS_HASHES_MAX:
        _TERMS_HASHES.clear()
    _TERMS_HASHES[id(terms)] = (terms, digest)
    return digest


def build_terms_document(
    terms: ProductTerms, provenance: DecisionProvenance, input_hash: str
) -> AgreementTermsV2:
    return AgreementTermsV2(
        version=TERMS_VERSION,
        product_code=terms.product_code,
        product_version=terms.version,
        product_terms_hash=get_product_terms_hash(terms),
        decision=DecisionRecordV2(
            arm="challenger" if provenance.arm == "challenger" else "champion",
            decided_at=_utc_text(provenance.decided_at),
            input_hash=input_hash,
            model_id=provenance.model_id,
            model_version=provenance.model_version,
            policy_version=provenance.policy_version,
        ),
    )


def record_agreement_terms(
    conn: Connection,
    *,
    agreement_id: bytes,
    application_id: str,
    customer_id: str,
    terms: ProductTerms,
    provenance: DecisionProvenance,
    salt: bytes | None = None,
) -> bytes:
    """Store the agreement's version-2 terms; returns its terms hash (for the chain)."""
    row, digest = compute_agreement_terms_row(
        agreement_id=agreement_id,
        application_id=application_id,
        customer_id=customer_id,
        terms=terms,
        provenance=provenance,
        salt=salt,
    )
    conn.execute(agreement_terms_table.insert(), row)
    return digest


def compute_agreement_terms_row(
    *,
    agreement_id: bytes,
    application_id: str,
    customer_id: str,
    terms: ProductTerms,
    provenance: DecisionProvenance,
    salt: bytes | None = None,
) -> tuple[dict[str, Any], bytes]:
    """The `agreement_terms` row of an agreement (a fresh salt unless given) and its
    terms hash, for a caller that writes the row in a statement of its own.
    `customer_id` is the application's (`loan_application.customer_id`)."""
    chosen_salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    input_hash = compute_input_hash(provenance.decision_inputs, chosen_salt)
    document = build_terms_document(terms, provenance, input_hash).to_canonical()
    digest = keccak(document.encode("ascii"))
    row = {
        "agreement_id": "0x" + agreement_id.hex(),
        "application_id": application_id,
        "product_code": terms.product_code,
        "product_version": terms.version,
        "terms_hash": "0x" + digest.hex(),
        "document": document,
        "input_salt": chosen_salt,
        "model_id": provenance.model_id,
        "model_version": provenance.model_version,
        "decided_at": provenance.decided_at.astimezone(UTC).replace(tzinfo=None),
        "customer_id": customer_id,
    }
    return row, digest


@dataclass(frozen=True, slots=True)
class StoredAgreementTerms:
    agreement_id: str
    application_id: str
    terms_hash: str
    document: str
    input_salt: bytes


def fetch_agreement_terms(conn: Connection, application_id: str) -> StoredAgreementTerms | None:
    table = agreement_terms_table
    row = conn.execute(
        select(
            table.c.agreement_id,
            table.c.application_id,
            table.c.terms_hash,
            table.c.document,
            table.c.input_salt,
        ).where(table.c.application_id == application_id)
    ).first()
    if row is None:
        return None
    return StoredAgreementTerms(
        str(row.agreement_id),
        str(row.application_id),
        str(row.terms_hash),
        str(row.document),
        bytes(row.input_salt),
    )


def fetch_stored_provenance(
    conn: Connection, row: Row[Any], decrypt: Callable[[bytes, str], str]
) -> DecisionProvenance:
    """The provenance of a stored application (for a line opened later, on review):
    its stored model and policy version, the arm that decided it, its receipt time,
    and its decrypted inputs (`decrypt(envelope, application id)`)."""
    application_id = str(row.id)
    arms = decision_arm_table
    arm = conn.execute(
        select(arms.c.arm).where((arms.c.application_id == application_id) & arms.c.deciding)
    ).scalar_one_or_none()
    liveness = liveness_challenge_table
    liveness_sha = conn.execute(
        select(liveness.c.result_sha256).where(liveness.c.application_id == application_id)
    ).scalar_one_or_none()
    return DecisionProvenance(
        model_id=str(row.model_id),
        model_version=fetch_model_version_of(conn, str(row.model_id)),
        policy_version=int(row.policy_version),
        arm="champion" if arm is None else str(arm),
        decided_at=row.applied_at.replace(tzinfo=UTC),
        decision_inputs=compute_decision_inputs(
            decrypt(row.inputs_enc, application_id),
            None if liveness_sha is None else str(liveness_sha),
        ),
    )
