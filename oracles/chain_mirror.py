"""The books' mirror of on-chain state, as a pure fold of contract events.

Each event concerns one subject (an agreement, a cycle, a partner, a cycle's line
state); a subject's mirror row is `fold(apply_event, its events in chain order)`.
The indexer applies new events to the current rows, and after a reorg rebuilds the
touched subjects from the events that remain, so the mirror always equals the fold
of the canonical events: idempotent by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from node_api.kernel.chain import AgreementStatus, CycleStatus

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
    }
)
PARTNER_EVENTS: Final = frozenset({"PartnerRegistered", "PartnerActiveSet"})
LINE_STATE_EVENTS: Final = frozenset({"LineStateCommitted"})


@dataclass(frozen=True)
class EventRecord:
    """A decoded event in chain order, as the mirror needs it."""

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


def apply_agreement_event(state: dict[str, Any] | None, record: EventRecord) -> dict[str, Any]:
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
    changed = dict(state, updated_block=record.block_number, last_reason_code=args["reasonCode"])
    changed["change_count"] = state["change_count"] + 1
    if record.event == "AgreementLimitAmended":
        changed["limit_fen"] = args["newLimitFen"]
    else:
        changed["status"] = args["toStatus"]
    return changed


def apply_cycle_event(state: dict[str, Any] | None, record: EventRecord) -> dict[str, Any]:
    """The cycle (`cycle` row and `positions` by partner) after one ClearingHouse event."""
    args = record.args
    if record.event == "CycleProposed":
        positions = {
            int(partner): {
                "cycle_id": int(args["cycleId"]),
                "partner_id": int(partner),
                "net_position_fen": int(amount),
                "disputed": False,
                "settled_fen": 0,
                "settled_tx": None,
            }
            for partner, amount in zip(args["partnerIds"], args["netPositions"], strict=True)
        }
        cycle = {
            "cycle_id": int(args["cycleId"]),
            "entries_root": args["entriesRoot"],
            "entry_count": int(args["entryCount"]),
            "status": CycleStatus.PROPOSED,
            "dispute_deadline": int(args["disputeDeadline"]),
            "total_due_fen": sum(amount for amount in args["netPositions"] if amount > 0),
            "funded_fen": 0,
            "claimed_fen": 0,
            "proposed_block": record.block_number,
            "proposed_tx": record.tx_hash,
            "updated_block": record.block_number,
        }
        return {"cycle": cycle, "positions": positions}
    if state is None:
        raise ValueError(f"{record.event} before CycleProposed for cycle {args['cycleId']}")
    cycle = dict(state["cycle"], updated_block=record.block_number)
    positions = {key: dict(value) for key, value in state["positions"].items()}
    _apply_cycle_change(cycle, positions, record)
    return {"cycle": cycle, "positions": positions}


def _apply_cycle_change(
    cycle: dict[str, Any], positions: dict[int, dict[str, Any]], record: EventRecord
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
    elif record.event in ("CycleFunded", "CycleClaimed"):
        position = positions[int(args["partnerId"])]
        position["settled_fen"] = int(args["amount"])
        position["settled_tx"] = record.tx_hash
        column = "funded_fen" if record.event == "CycleFunded" else "claimed_fen"
        cycle[column] = cycle[column] + int(args["amount"])


def apply_partner_event(state: dict[str, Any] | None, record: EventRecord) -> dict[str, Any]:
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
    return dict(state, active=bool(args["active"]), updated_block=record.block_number)


def apply_line_state_event(state: dict[str, Any] | None, record: EventRecord) -> dict[str, Any]:
    args = record.args
    return {
        "cycle_id": int(args["cycleId"]),
        "root": args["root"],
        "leaf_count": int(args["count"]),
        "total_outstanding_fen": int(args["totalOutstandingFen"]),
        "submitter": args["submitter"],
        "block_number": record.block_number,
        "tx_hash": record.tx_hash,
    }


APPLIERS: Final = {
    "agreement": apply_agreement_event,
    "cycle": apply_cycle_event,
    "partner": apply_partner_event,
    "line_state": apply_line_state_event,
}


def fold_subject(
    subject: str, state: dict[str, Any] | None, records: Iterable[EventRecord]
) -> dict[str, Any] | None:
    """`state` after `records` (in chain order); subjects without a mirror stay None."""
    apply = APPLIERS.get(get_subject_type(subject))
    if apply is None:
        return None
    for record in records:
        state = apply(state, record)
    return state
