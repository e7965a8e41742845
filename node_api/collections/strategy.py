"""Strategies: versioned rules that put each case in a queue, with a channel and an
assignee, and the champion/challenger split of new cases.

A strategy document lists score bands and rules. A case's facts (bucket, days past due,
outstanding balance, score band, broken and pending promises) are matched against the
rules in order; the first match decides. Every bucket from M1 to M7+ must have a rule
that depends on nothing but the bucket, so no case falls through.

StrategyAssignment is deterministic: a rule's agents (or agencies) share its cases by a hash of
the line id, so a case stays with its assignee from one refresh to the next. So is the
arm: a case goes to the challenger when a hash of (activation id, line id) falls within
the challenger's share, and keeps that arm and strategy version until it closes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from node_api.collections.model import Arm, Channel
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import BPS_DENOMINATOR, Fen
from node_api.lending.billing_rules import BUCKET_ORDER, DelinquencyBucket

NameStr = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")]
"""Queue, agent and agency names: lowercase ids, never personal data."""
BandStr = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,31}$")]
"""Score band names (shorter: a case row carries its band)."""
SCORE_MAX: Final = 100_000
AMOUNT_FEN_MAX: Final = 10**12
COUNT_MAX: Final = 100_000
UNSCORED_BAND: Final = "unscored"
"""The band of a line without a score (no application on file)."""
DELINQUENT_BUCKETS: Final = BUCKET_ORDER[1:]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyScoreBand(_Strict):
    band: BandStr
    score_min: int = Field(ge=0, le=SCORE_MAX)
    """The lowest score in this band."""


class StrategyAssignment(_Strict):
    """Who works a rule's cases: agents, agencies, or nobody (automated messages)."""

    agents: tuple[NameStr, ...] = Field(default=(), max_length=1_000)
    agencies: tuple[NameStr, ...] = Field(default=(), max_length=1_000)


class StrategyRule(_Strict):
    """A rule matches a case when every condition it states holds."""

    queue: NameStr
    channel: Channel
    bucket_min: DelinquencyBucket = DelinquencyBucket.M1
    bucket_max: DelinquencyBucket = DelinquencyBucket.M7_PLUS
    days_past_due_min: int = Field(default=0, ge=0, le=COUNT_MAX)
    days_past_due_max: int | None = Field(default=None, ge=0, le=COUNT_MAX)
    outstanding_fen_min: int = Field(default=0, ge=0, le=AMOUNT_FEN_MAX)
    outstanding_fen_max: int | None = Field(default=None, ge=0, le=AMOUNT_FEN_MAX)
    score_bands: tuple[BandStr, ...] = Field(default=(), max_length=50)
    """Empty: any band."""
    broken_promises_min: int = Field(default=0, ge=0, le=COUNT_MAX)
    promise_pending: bool | None = None
    """True: only cases with a pending promise; False: only cases without one."""
    assign: StrategyAssignment = StrategyAssignment()

    @property
    def is_catch_all(self) -> bool:
        """Whether it depends on the bucket only."""
        return (
            self.days_past_due_min == 0
            and self.days_past_due_max is None
            and self.outstanding_fen_min == 0
            and self.outstanding_fen_max is None
            and not self.score_bands
            and self.broken_promises_min == 0
            and self.promise_pending is None
        )


class StrategyDocument(_Strict):
    name: NameStr
    score_bands: tuple[StrategyScoreBand, ...] = Field(default=(), max_length=50)
    rules: tuple[StrategyRule, ...] = Field(min_length=1, max_length=200)


DEFAULT_STRATEGY: Final = {
    "name": "default",
    "score_bands": [
        {"band": "low_risk", "score_min": 650},
        {"band": "medium_risk", "score_min": 550},
        {"band": "high_risk", "score_min": 0},
    ],
    "rules": [
        {"queue": "m1-reminders", "channel": "sms", "bucket_max": "M1"},
        {"queue": "m2-calls", "channel": "call", "bucket_min": "M2", "bucket_max": "M2"},
        {"queue": "m3-agency", "channel": "agency", "bucket_min": "M3"},
    ],
}
"""The strategy a node starts with: M1 SMS reminders, M2 calls, M3+ external agency."""


@dataclass(frozen=True, slots=True)
class CaseProfile:
    """The facts a strategy decides on."""

    credit_line_id: int
    bucket: DelinquencyBucket
    days_past_due: int
    outstanding_fen: Fen
    score: int | None
    broken_promises: int
    promise_pending: bool


@dataclass(frozen=True, slots=True)
class Treatment:
    queue: str
    channel: Channel
    assignee: str | None
    score_band: str


def parse_strategy(document: object) -> StrategyDocument:
    """A validated strategy document; the first error names its field."""
    try:
        strategy = StrategyDocument.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise CreditNetValueError(
            f"{field}: {first['msg']}", field=field, code="strategy_invalid"
        ) from None
    _check_consistency(strategy)
    return strategy


def _check_consistency(strategy: StrategyDocument) -> None:
    bands = [band.band for band in strategy.score_bands]
    if len(set(bands)) != len(bands) or UNSCORED_BAND in bands:
        raise _invalid("score_bands", f"band names must be distinct and not {UNSCORED_BAND!r}")
    known = {*bands, UNSCORED_BAND}
    for index, rule in enumerate(strategy.rules):
        where = f"rules.{index}"
        if DelinquencyBucket.M0 in (rule.bucket_min, rule.bucket_max):
            raise _invalid(where, "M0 lines are current: collections starts at M1")
        if BUCKET_ORDER.index(rule.bucket_min) > BUCKET_ORDER.index(rule.bucket_max):
            raise _invalid(where, "bucket_min is after bucket_max")
        if set(rule.score_bands) - known:
            raise _invalid(where, "a rule names a score band the strategy does not define")
        if rule.assign.agents and rule.assign.agencies:
            raise _invalid(where, "assign cases to agents or to agencies, not both")
        if rule.assign.agencies and rule.channel is not Channel.AGENCY:
            raise _invalid(where, "only an agency rule assigns cases to agencies")
    for bucket in DELINQUENT_BUCKETS:
        if not any(rule.is_catch_all and _in_range(rule, bucket) for rule in strategy.rules):
            raise _invalid("rules", f"no rule takes every {bucket.value} case", code="strategy_gap")


def _invalid(field: str, detail: str, code: str = "strategy_invalid") -> CreditNetValueError:
    return CreditNetValueError(f"{field}: {detail}", field=field, code=code)


def _in_range(rule: StrategyRule, bucket: DelinquencyBucket) -> bool:
    position = BUCKET_ORDER.index(bucket)
    return BUCKET_ORDER.index(rule.bucket_min) <= position <= BUCKET_ORDER.index(rule.bucket_max)


def compute_document_hash(strategy: StrategyDocument) -> str:
    """`sha256:` of the canonical JSON (sorted keys) of the validated document."""
    return "sha256:" + hashlib.sha256(canonical_json(strategy)).hexdigest()


def canonical_json(strategy: StrategyDocument) -> bytes:
    return orjson.dumps(strategy.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def compute_score_band(bands: Sequence[StrategyScoreBand], score: int | None) -> str:
    """The band with the highest `score_min` the score reaches, else `unscored`."""
    if score is None:
        return UNSCORED_BAND
    reached = [band for band in bands if score >= band.score_min]
    return max(reached, key=lambda band: band.score_min).band if reached else UNSCORED_BAND


def _matches(rule: StrategyRule, profile: CaseProfile, band: str) -> bool:
    return (
        _in_range(rule, profile.bucket)
        and profile.days_past_due >= rule.days_past_due_min
        and (rule.days_past_due_max is None or profile.days_past_due <= rule.days_past_due_max)
        and profile.outstanding_fen >= rule.outstanding_fen_min
        and (
            rule.outstanding_fen_max is None or profile.outstanding_fen <= rule.outstanding_fen_max
        )
        and (not rule.score_bands or band in rule.score_bands)
        and profile.broken_promises >= rule.broken_promises_min
        and (rule.promise_pending is None or rule.promise_pending == profile.promise_pending)
    )


def compute_treatment(strategy: StrategyDocument, profile: CaseProfile) -> Treatment:
    """The first rule matching the case decides its queue, channel and assignee."""
    band = compute_score_band(strategy.score_bands, profile.score)
    for rule in strategy.rules:
        if _matches(rule, profile, band):
            pool = rule.assign.agents or rule.assign.agencies
            assignee = (
                pool[_hash_index(f"assign:{profile.credit_line_id}", len(pool))] if pool else None
            )
            return Treatment(rule.queue, rule.channel, assignee, band)
    raise AssertionError("a validated strategy has a catch-all rule for every bucket")


def _hash_index(label: str, size: int) -> int:
    digest = hashlib.sha256(label.encode()).digest()
    return int.from_bytes(digest[:8], "big") % size


def compute_arm(activation_id: int, credit_line_id: int, challenger_share_bps: int) -> Arm:
    """The arm of a new case: deterministic in (activation, line), the challenger taking
    `challenger_share_bps` of the hash space."""
    slot = _hash_index(f"arm:{activation_id}:{credit_line_id}", BPS_DENOMINATOR)
    return Arm.CHALLENGER if slot < challenger_share_bps else Arm.CHAMPION
