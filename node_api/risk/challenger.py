"""Champion/challenger: which arm decides an application, deterministically per applicant.

An applicant's bucket is the first 8 bytes of SHA-256 over the experiment name and the
applicant's dedupe key (the vault's keyed hash of the identity number), modulo
`BUCKET_COUNT`; the challenger decides when the bucket is below the share in basis
points. The same applicant therefore lands in the same arm on every application of the
same experiment, and renaming the experiment deals everyone again. Only the bucket is
stored: a number in [0, 10 000) from a hash of a keyed hash, which identifies no one.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from node_api.kernel.money import BPS_DENOMINATOR, Bps

BUCKET_COUNT = BPS_DENOMINATOR
"""One bucket per basis point of share."""
_DOMAIN = b"creditnet.challenger\x00"


class Arm(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"


class ChallengerConfig(BaseModel):
    """A challenger arm of a product's policy: another model, or another policy version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: str = Field(default="challenger", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    """Names the routing: applicants keep their arm while it stays the same."""
    share_bps: Bps = Field(ge=0, le=BPS_DENOMINATOR)
    """The share of applicants the challenger decides; it scores the others in shadow."""
    model_version: int | None = Field(default=None, ge=1)
    """A registered model scoring under this policy's cut-offs and limits."""
    policy_version: int | None = Field(default=None, ge=1)
    """Another stored policy version of the same product (its card or model, cut-offs,
    limits and fraud rules; its own challenger is ignored)."""

    @model_validator(mode="after")
    def _check_one_arm(self) -> ChallengerConfig:
        if (self.model_version is None) == (self.policy_version is None):
            raise ValueError("a challenger names exactly one of model_version and policy_version")
        return self


def compute_bucket(experiment: str, dedupe_key: bytes) -> int:
    """The applicant's bucket in [0, BUCKET_COUNT) for this experiment."""
    digest = hashlib.sha256(_DOMAIN + experiment.encode("utf-8") + b"\x00" + dedupe_key).digest()
    return int.from_bytes(digest[:8], "big") % BUCKET_COUNT


def get_deciding_arm(bucket: int, share_bps: int) -> Arm:
    """The challenger decides the buckets below its share, the champion the others."""
    return Arm.CHALLENGER if bucket < share_bps else Arm.CHAMPION
