"""Liveness and face match: signed results from a provider, verified by the node.

At onboarding the applicant's channel runs a provider's liveness and face-compare check
(the provider sees the applicant and the identity document; the node never does). The
flow, with the node in charge of freshness:

1. the channel asks the node for a challenge: a random single-use nonce that expires
   (`issue_challenge`);
2. the provider checks the applicant and signs a `LivenessResult` over that nonce with
   its Ed25519 key; the result names the applicant only as `subject_hash`, the SHA-256
   of the nonce and the identity number (`compute_subject_hash`), so it is bound to one
   person without carrying who;
3. the application carries the signed result; the node verifies the signature with the
   provider's public key (`LivenessTrust`), that the subject is the applicant, and, in
   the application's transaction, takes the nonce (`consume_challenge`): a nonce never
   issued, expired or already used is refused, so a result cannot be replayed.

The verified verdict (live or not, and the face similarity in basis points) is one more
rule of the decision (`policies.LivenessRule`), and is stored with the challenge so
replay and simulation decide on exactly what the live decision saw.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConfigurationError, ConflictError, CreditNetValueError
from node_api.onboarding.liveness_tables import liveness_challenge_table

PROVIDER_ID_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
FACE_MATCH_BPS_MAX = 10_000
_SUBJECT_DOMAIN = b"creditnet.liveness.subject:"


class LivenessResult(BaseModel):
    """What a provider signs: the canonical JSON of these fields (`canonical_bytes`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["creditnet.liveness.v1"] = "creditnet.liveness.v1"
    provider_id: str = Field(pattern=PROVIDER_ID_PATTERN)
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    subject_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 (hex) of the nonce and the applicant's identity number."""
    live: bool
    """The provider saw a live person (not a photo, a screen or a mask)."""
    face_match_bps: int = Field(ge=0, le=FACE_MATCH_BPS_MAX)
    """Similarity of the live face and the identity document's photo, 0 to 10 000."""

    def canonical_bytes(self) -> bytes:
        """Sorted keys, no spaces, ASCII: the bytes the signature covers."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode("ascii")

    def compute_sha256(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedLivenessResult:
    """A result and the provider's Ed25519 signature over its canonical bytes (base64)."""

    result: LivenessResult
    signature: str


@dataclass(frozen=True, slots=True)
class LivenessVerdict:
    """A verified result, as the decision reads it and as it is stored."""

    provider_id: str
    nonce: str
    live: bool
    face_match_bps: int


class LivenessRule(BaseModel):
    """A policy's liveness rule: applications must carry a verified result, and are
    declined when it saw no live person or a face unlike the document's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    face_match_bps_min: int = Field(default=8_000, ge=0, le=FACE_MATCH_BPS_MAX)
    """The lowest face similarity (basis points) that passes."""


LIVENESS_MISSING = "LIVENESS_MISSING"
LIVENESS_FAILED = "LIVENESS_FAILED"
FACE_MATCH_FAILED = "FACE_MATCH_FAILED"


def compute_liveness_reason(
    rule: LivenessRule | None, verdict: LivenessVerdict | None
) -> str | None:
    """The decline reason the rule gives this verdict, or None when it passes (or no
    rule applies). A missing verdict only reaches here in replay or simulation: the live
    flow refuses an application without one when the policy requires it."""
    if rule is None:
        return None
    if verdict is None:
        return LIVENESS_MISSING
    if not verdict.live:
        return LIVENESS_FAILED
    if verdict.face_match_bps < rule.face_match_bps_min:
        return FACE_MATCH_FAILED
    return None


def compute_subject_hash(nonce: str, id_number: str) -> str:
    """Binds a result to one applicant: SHA-256 of the nonce and the identity number."""
    material = _SUBJECT_DOMAIN + nonce.encode("ascii") + b":" + id_number.strip().encode("utf-8")
    return hashlib.sha256(material).hexdigest()


def parse_public_key(encoded: str, field: str) -> Ed25519PublicKey:
    """An Ed25519 public key from base64 of its 32 raw bytes."""
    try:
        raw = base64.b64decode(encoded, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "a liveness provider key is base64 of 32 Ed25519 public-key bytes", field=field
        ) from None


def encode_public_key(key: Ed25519PublicKey) -> str:
    """Base64 of the key's 32 raw bytes (the form `parse_public_key` reads)."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


@dataclass(frozen=True, slots=True)
class LivenessTrust:
    """The providers whose results the node accepts, by provider id."""

    keys: Mapping[str, Ed25519PublicKey]

    @classmethod
    def parse(
        cls, listing: str, extra: Mapping[str, Ed25519PublicKey] | None = None
    ) -> LivenessTrust:
        """`provider_id:base64(key)[,...]` (the `CREDITNET_LIVENESS_PROVIDER_KEYS` form)."""
        keys: dict[str, Ed25519PublicKey] = dict(extra or {})
        for item in listing.split(","):
            if not item.strip():
                continue
            provider_id, _, encoded = item.strip().partition(":")
            if re.match(PROVIDER_ID_PATTERN, provider_id) is None or not encoded:
                raise ConfigurationError(
                    "CREDITNET_LIVENESS_PROVIDER_KEYS must be `provider_id:base64(key)`[,...]",
                    field="liveness_provider_keys",
                )
            keys[provider_id] = parse_public_key(encoded, "liveness_provider_keys")
        return cls(keys)

    def verify(self, signed: SignedLivenessResult) -> None:
        """Refuse a result from an unknown provider or whose signature does not verify."""
        key = self.keys.get(signed.result.provider_id)
        if key is None:
            raise CreditNetValueError(
                "the node does not trust this liveness provider",
                field="liveness.result.provider_id",
                code="liveness_provider_unknown",
            )
        try:
            signature = base64.b64decode(signed.signature, validate=True)
            key.verify(signature, signed.result.canonical_bytes())
        except (binascii.Error, ValueError, InvalidSignature):
            raise CreditNetValueError(
                "the liveness result's signature does not verify with its provider's key",
                field="liveness.signature",
                code="liveness_signature_invalid",
            ) from None


def parse_signed_result(result: Mapping[str, object], signature: str) -> SignedLivenessResult:
    """A signed result from its JSON parts; a malformed result is refused on its field."""
    try:
        parsed = LivenessResult.model_validate(result)
    except ValidationError as error:
        location = ".".join(str(part) for part in error.errors()[0]["loc"])
        raise CreditNetValueError(
            "the liveness result is malformed",
            field=f"liveness.result.{location}" if location else "liveness.result",
        ) from None
    return SignedLivenessResult(parsed, signature)


def verify_liveness(
    signed: SignedLivenessResult, *, id_number: str, trust: LivenessTrust
) -> LivenessVerdict:
    """Check the signature and that the result is about this applicant (no write)."""
    trust.verify(signed)
    result = signed.result
    expected = compute_subject_hash(result.nonce, id_number)
    if not secrets.compare_digest(expected, result.subject_hash):
        raise CreditNetValueError(
            "the liveness result is about another applicant or another nonce",
            field="liveness.result.subject_hash",
            code="liveness_subject_mismatch",
        )
    return LivenessVerdict(result.provider_id, result.nonce, result.live, result.face_match_bps)


def new_nonce() -> str:
    return secrets.token_hex(16)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class LivenessChallenge:
    nonce: str
    expires_at: datetime
    """UTC."""


def issue_challenge(
    conn: Connection, *, issued_at: datetime, ttl_s: int, nonce: str | None = None
) -> LivenessChallenge:
    """Store a fresh nonce that an application may use once before `issued_at + ttl_s`."""
    chosen = new_nonce() if nonce is None else nonce
    expires_at = issued_at + timedelta(seconds=ttl_s)
    conn.execute(
        liveness_challenge_table.insert(),
        {
            "nonce": chosen,
            "issued_at": _naive_utc(issued_at),
            "expires_at": _naive_utc(expires_at),
        },
    )
    return LivenessChallenge(chosen, expires_at.astimezone(UTC))


def consume_challenge(
    conn: Connection,
    verdict: LivenessVerdict,
    result_sha256: str,
    *,
    application_id: str,
    at: datetime,
) -> None:
    """Take the verdict's nonce for this application, or refuse: never issued, expired,
    or already used (a replayed result). Concurrent uses of one nonce: one wins."""
    table = liveness_challenge_table
    taken = conn.execute(
        update(table)
        .where(
            (table.c.nonce == verdict.nonce)
            & table.c.application_id.is_(None)
            & (table.c.expires_at >= _naive_utc(at))
        )
        .values(
            application_id=application_id,
            provider_id=verdict.provider_id,
            live=verdict.live,
            face_match_bps=verdict.face_match_bps,
            result_sha256=result_sha256,
        )
    ).rowcount
    if taken == 1:
        return
    row = conn.execute(select(table.c.application_id).where(table.c.nonce == verdict.nonce)).first()
    field = "liveness.result.nonce"
    if row is None:
        raise CreditNetValueError(
            "the node never issued this liveness nonce", field=field, code="liveness_nonce_unknown"
        )
    if row.application_id is not None:
        raise ConflictError(
            "this liveness result was already used by an application",
            field=field,
            code="liveness_replayed",
        )
    raise CreditNetValueError(
        "the liveness challenge has expired; ask for a new one",
        field=field,
        code="liveness_expired",
    )


def fetch_verdict(conn: Connection, application_id: str) -> LivenessVerdict | None:
    """The verified liveness verdict an application used, if it used one."""
    table = liveness_challenge_table
    row = conn.execute(
        select(table.c.nonce, table.c.provider_id, table.c.live, table.c.face_match_bps).where(
            table.c.application_id == application_id
        )
    ).first()
    if row is None:
        return None
    return LivenessVerdict(
        str(row.provider_id), str(row.nonce), bool(row.live), int(row.face_match_bps)
    )
