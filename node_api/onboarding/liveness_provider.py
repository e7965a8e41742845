"""The liveness provider interface at the edge, and the embedded test provider.

A provider runs where the applicant is (an SDK in the lender's app, a kiosk): it checks
that a live person is present and compares the face with the identity document's photo,
then signs a `LivenessResult` over the node's nonce with its own Ed25519 key. The node
only ever sees the signed result and verifies it (`liveness.LivenessTrust`).

`EmbeddedLivenessProvider` is the embedded default for development and tests: a real
signer with its own key whose outcome the caller chooses (there is no camera here). Its
key is derived from a published seed, so anyone can sign as it: a node trusts it only
in `dev` and `test` (`trust_from_settings`); production lists real providers' public
keys in `CREDITNET_LIVENESS_PROVIDER_KEYS`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from enum import StrEnum
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node_api.kernel.config import Settings
from node_api.onboarding.liveness import (
    FACE_MATCH_BPS_MAX,
    LivenessResult,
    LivenessTrust,
    SignedLivenessResult,
    compute_subject_hash,
)

TEST_PROVIDER_ID = "creditnet-test"
_TEST_PROVIDER_SEED = hashlib.sha256(b"creditnet.liveness.test-provider.v1").digest()
TEST_FACE_MATCH_BPS = 9_400
"""The similarity the test provider reports for a matching face."""
TEST_FACE_MISMATCH_BPS = 2_100


class LivenessOutcome(StrEnum):
    """What the test provider is asked to have seen."""

    PASS = "pass"
    NOT_LIVE = "not_live"
    FACE_MISMATCH = "face_mismatch"


class LivenessProvider(Protocol):
    """Checks an applicant against the node's nonce and signs the result."""

    @property
    def provider_id(self) -> str: ...

    def check(self, *, nonce: str, id_number: str) -> SignedLivenessResult: ...


class EmbeddedLivenessProvider:
    """The embedded provider: signs the outcome it is told, with its own key."""

    def __init__(
        self, outcome: LivenessOutcome = LivenessOutcome.PASS, key: Ed25519PrivateKey | None = None
    ) -> None:
        self.outcome = outcome
        self._key = key or _test_key()

    @property
    def provider_id(self) -> str:
        return TEST_PROVIDER_ID

    def check(self, *, nonce: str, id_number: str) -> SignedLivenessResult:
        outcome = self.outcome
        mismatch = outcome is LivenessOutcome.FACE_MISMATCH
        face_match_bps = TEST_FACE_MISMATCH_BPS if mismatch else TEST_FACE_MATCH_BPS
        assert 0 <= face_match_bps <= FACE_MATCH_BPS_MAX
        result = LivenessResult(
            provider_id=self.provider_id,
            nonce=nonce,
            subject_hash=compute_subject_hash(nonce, id_number),
            live=outcome is not LivenessOutcome.NOT_LIVE,
            face_match_bps=face_match_bps,
        )
        signature = self._key.sign(result.canonical_bytes())
        return SignedLivenessResult(result, base64.b64encode(signature).decode("ascii"))


def _test_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_TEST_PROVIDER_SEED)


def is_test_provider_trusted(settings: Settings) -> bool:
    return settings.env in ("dev", "test")


@functools.cache
def build_trust(listing: str, *, include_test_provider: bool) -> LivenessTrust:
    """The providers of a `CREDITNET_LIVENESS_PROVIDER_KEYS` listing, plus the embedded
    test provider if asked (parsed once per configuration)."""
    embedded = {}
    if include_test_provider:
        embedded[TEST_PROVIDER_ID] = _test_key().public_key()
    return LivenessTrust.parse(listing, embedded)


def trust_from_settings(settings: Settings) -> LivenessTrust:
    """The configured providers, plus the embedded test provider in dev and test."""
    return build_trust(
        settings.liveness_provider_keys,
        include_test_provider=is_test_provider_trusted(settings),
    )
