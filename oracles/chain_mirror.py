"""The books' mirror of on-chain state, as a pure fold of contract events.

Each event concerns one subject (an agreement, a cycle, a partner, a cycle's line
state); a subject's mirror row is `fold(apply_event, its events in chain order)`.
The indexer applies new events to the current rows, and after a reorg rebuilds the
touched subjects from the events that remain, so the mirror always equals the fold
of the canonical events: idempotent by construction.

A subject's state is the row of its mirror table (`AgreementRow`, `PartnerRow`,
`LineStateRow`), or for a cycle its row and its positions by partner (`CycleMirror`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypedDict, TypeVar, cast

from node_api.kernel.chain import AgreementStatus, CycleStatus
from node_api.kernel.money import FEN_ZERO, Fen

AGREEMENT_EVENTS: Final = frozenset(
    {"AgreementOpened", "AgreementLimitAmended", "AgreementStatusChanged"}
)
CYCLE_EVENTS: Final = frozenset(
    {
        "CycleProposed",
        "CycleDisputed",
        "DisputeResolved",
        "CycleFinalized",
        "CycleFunded",
        "CycleFullyFunded",
        "CycleClaimed",
        "CycleDefaulted",
        "CycleRefunded",
    }
)
PARTNER_EVENTS: Final = frozenset({"PartnerRegistered", "PartnerActiveSet"})
LINE_STATE_EVENTS: Final = frozenset({"LineStateCommitted"})
STATE_STARTING_EVENTS: Final = frozenset(
    {"AgreementOpened", "CycleProposed", "PartnerRegistered", "LineStateCommitted"}
)
"""Events whose fold ignores the subject's state before them (each `apply_*` builds the
row afresh): a subject whose events in a range begin with one needs no read of its row."""


class AgreementRow(TypedDict):
    """A row of the chain's agreement mirror (`CHAIN_AGREEMENT_TABLE`); ids as 0x-hex."""

    agreement_id: str
    borrower_ref: str
    terms_hash: str
    commitment: str
    product_code: int
    limit_fen: Fen
    apr_bps: int
    opened_at: int
    status: int
    last_reason_code: int
    change_count: int
    opened_block: int
    opened_tx: str
    updated_block: int


class CycleRow(TypedDict):
    """A row of the chain's cycle mirror (`CHAIN_CYCLE_TABLE`); amounts in fen."""

    cycle_id: int
    entries_root: str
    entry_count: int
    status: int
    dispute_deadline: int
    total_due_fen: Fen
    funded_fen: Fen
    claimed_fen: Fen
    proposed_block: int
    proposed_tx: str
    updated_block: int


class PositionRow(TypedDict):
    """A row of the chain's position mirror (`CHAIN_POSITION_TABLE`)."""

    cycle_id: int
    partner_id: int
    net_position_fen: Fen
    disputed: bool
    settled_fen: Fen
    settled_tx: str | None


class CycleMirror(TypedDict):
    """A cycle's mirror: its row and its positions by partner id."""

    cycle: CycleRow
    positions: dict[int, PositionRow]


class PartnerRow(TypedDict):
    """A row of the chain's partner mirror (`CHAIN_PARTNER_TABLE`)."""

    partner_id: int
    role: int
    payout: str
    active: bool
    updated_block: int


class LineStateRow(TypedDict):
    """A row of the chain's line-state mirror (`CHAIN_LINE_STATE_TABLE`)."""

    cycle_id: int
    root: str
    leaf_count: int
    total_outstanding_fen: Fen
    submitter: str
    block_number: int
    tx_hash: str


MirrorState = AgreementRow | CycleMirror | PartnerRow | LineStateRow
"""What a subject folds to."""

_State = TypeVar("_State", AgreementRow, CycleMirror, PartnerRow, LineStateRow)


@dataclass(frozen=True)
class EventRecord:
    """A decoded event in chain order, as the mirror needs it (`args` in the JSON form of
    `oracles.abi_codec`)."""

    contract: str
    event: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: str


def get_subject(contract: str, event: str, args: dict[str, Any]) -> str:
    """What an event is about: `agreement:0x..`, `cycle:N`, `partner:N`, `line_state:N`,
    or `contract:<name>` for events the mirror does not fold (roles, signer sets ...)."""
    if event in AGREEMENT_EVENTS:
        return f"agreement:{args['agreementId']}"
    if event in CYCLE_EVENTS:
        return f"cycle:{args['cycleId']}"
    if event in PARTNER_EVENTS:
        return f"partner:{args['partnerId']}"
    if event in LINE_STATE_EVENTS:
        return f"line_state:{args['cycleId']}"
    return f"contract:{contract}"


def get_subject_type(subject: str) -> str:
    return subject.partition(":")[0]


def get_subject_key(subject: str) -> str | int:
    """The mirror table's primary key for a subject (hex id or integer id)."""
    kind, _, key = subject.partition(":")
    return key if kind == "agreement" else int(key)


def apply_agreement_event(state: AgreementRow | None, record: EventRecord) -> AgreementRow:
    """The anchored agreement after one CreditRegistry agreement event."""
    args = record.args
    if record.event == "AgreementOpened":
        return {
            "agreement_id": args["agreementId"],
            "borrower_ref": args["borrowerRef"],
            "terms_hash": args["termsHash"],
            "commitment": args["commitment"],
            "product_code": args["productCode"],
            "limit_fen": args["limitFen"],
            "apr_bps": args["aprBps"],
            "opened_at": args["openedAt"],
            "status": AgreementStatus.ACTIVE,
            "last_reason_code": 0,
            "change_count": 0,
            "opened_block": record.block_number,
            "opened_tx": record.tx_hash,
            "updated_block": record.block_number,
        }
    if state is None:
        raise ValueError(f"{record.event} before AgreementOpened for {args['agreementId']}")
    changed: AgreementRow = {
        **state,
        "updated_block": record.block_number,
        "last_reason_code": args["reasonCode"],
        "change_count": state["change_count"] + 1,
    }
    if record.event == "AgreementLimitAmended":
        changed["limit_fen"] = args["newLimitFen"]
    else:
        changed["status"] = args["toStatus"]
    return changed


def apply_cycle_event(state: CycleMirror | None, record: EventRecord) -> CycleMirror:
    """The cycle (`cycle` row and `positions` by partner) after one ClearingHouse event."""
    args = record.args
    if record.event == "CycleProposed":
        positions: dict[int, PositionRow] = {
            int(partner): {
                "cycle_id": int(args["cycleId"]),
                "partner_id": int(partner),
                "net_position_fen": Fen(int(amount)),
                "disputed": False,
                "settled_fen": FEN_ZERO,
                "settled_tx": None,
            }
            for partner, amount in zip(args["partnerIds"], args["netPositions"], strict=True)
        }
        cycle: CycleRow = {
            "cycle_id": int(args["cycleId"]),
            "entries_root": args["entriesRoot"],
            "entry_count": int(args["entryCount"]),
            "status": CycleStatus.PROPOSED,
            "dispute_deadline": int(args["disputeDeadline"]),
            "total_due_fen": Fen(sum(amount for amount in args["netPositions"] if amount > 0)),
            "funded_fen": FEN_ZERO,
            "claimed_fen": FEN_ZERO,
            "proposed_block": record.block_number,
            "proposed_tx": record.tx_hash,
            "updated_block": record.block_number,
        }
        return {"cycle": cycle, "positions": positions}
    if state is None:
        raise ValueError(f"{record.event} before CycleProposed for cycle {args['cycleId']}")
    cycle = {**state["cycle"], "updated_block": record.block_number}
    positions = {key: {**value} for key, value in state["positions"].items()}
    _apply_cycle_change(cycle, positions, record)
    return {"cycle": cycle, "positions": positions}


def _apply_cycle_change(
    cycle: CycleRow, positions: dict[int, PositionRow], record: EventRecord
) -> None:
    args = record.args
    if record.event == "CycleDisputed":
        cycle["status"] = CycleStatus.DISPUTED
        positions[int(args["partnerId"])]["disputed"] = True
    elif record.event == "DisputeResolved":
        cycle["status"] = CycleStatus.REJECTED if args["upheld"] else CycleStatus.PROPOSED
    elif record.event == "CycleFinalized":
        cycle["status"] = CycleStatus.FINALIZED
    elif record.event == "CycleFullyFunded":
        cycle["status"] = CycleStatus.FUNDED
    elif record.event == "CycleDefaulted":
        cycle["status"] = CycleStatus.DEFAULTED
    elif record.event == "CycleRefunded":
        # As on-chain: a defaulted cycle pays nothing out but refunds, counted as claimed.
        cycle["claimed_fen"] = Fen(cycle["claimed_fen"] + int(args["amount"]))
    elif record.event in ("CycleFunded", "CycleClaimed"):
        amount = Fen(int(args["amount"]))
        position = positions[int(args["partnerId"])]
        position["settled_fen"] = amount
        position["settled_tx"] = record.tx_hash
        if record.event == "CycleFunded":
            cycle["funded_fen"] = Fen(cycle["funded_fen"] + amount)
        else:
            cycle["claimed_fen"] = Fen(cycle["claimed_fen"] + amount)


def apply_partner_event(state: PartnerRow | None, record: EventRecord) -> PartnerRow:
    args = record.args
    if record.event == "PartnerRegistered":
        return {
            "partner_id": int(args["partnerId"]),
            "role": int(args["role"]),
            "payout": args["payout"],
            "active": True,
            "updated_block": record.block_number,
        }
    if state is None:
        raise ValueError(f"{record.event} before PartnerRegistered for {args['partnerId']}")
    return {**state, "active": bool(args["active"]), "updated_block": record.block_number}


def apply_line_state_event(state: LineStateRow | None, record: EventRecord) -> LineStateRow:
    args = record.args
    return {
        "cycle_id": int(args["cycleId"]),
        "root": args["root"],
        "leaf_count": int(args["count"]),
        "total_outstanding_fen": Fen(int(args["totalOutstandingFen"])),
        "submitter": args["submitter"],
        "block_number": record.block_number,
        "tx_hash": record.tx_hash,
    }


def _fold(
    apply: Callable[[_State | None, EventRecord], _State],
    state: _State | None,
    records: Iterable[EventRecord],
) -> _State | None:
    for record in records:
        state = apply(state, record)
    return state


def fold_subject(
    subject: str, state: MirrorState | None, records: Iterable[EventRecord]
) -> MirrorState | None:
    """`state` after `records` (in chain order); subjects without a mirror stay None.

    `state` must be the subject's own kind of state (as `fold_subject` returned it)."""
    subject_type = get_subject_type(subject)
    if subject_type == "agreement":
        return _fold(apply_agreement_event, cast("AgreementRow | None", state), records)
    if subject_type == "cycle":
        return _fold(apply_cycle_event, cast("CycleMirror | None", state), records)
    if subject_type == "partner":
        return _fold(apply_partner_event, cast("PartnerRow | None", state), records)
    if subject_type == "line_state":
        return _fold(apply_line_state_event, cast("LineStateRow | None", state), records)
    return None
