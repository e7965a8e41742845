"""Synthetic decoded events for the replay and invariant unit tests."""

from __future__ import annotations

from typing import Any

from oracles.audit.events import AuditEvent, EventRef
from oracles.audit.history import compute_commitment
from oracles.audit.replay_state import AgreementReplay, ReplayedState

REGISTRY = "0x" + "11" * 20
HOUSE = "0x" + "22" * 20
QUORUM = "0x" + "33" * 20
TOKEN = "0x" + "44" * 20
TIMELOCK = "0x" + "55" * 20
ADDRESSES = {
    "CreditRegistry": REGISTRY,
    "ClearingHouse": HOUSE,
    "OracleQuorum": QUORUM,
    "SettlementToken": TOKEN,
    "NetworkTimelock": TIMELOCK,
}


class EventMaker:
    """Events in chain order: each call is one log in a new block (its own transaction),
    unless `same_tx` puts it after the previous log of the same transaction; `at` is the
    block's unix time when the test needs one."""

    def __init__(self) -> None:
        self.block = 100
        self.log_index = 0

    def __call__(
        self,
        contract: str,
        name: str,
        *,
        at: int | None = None,
        same_tx: bool = False,
        **args: Any,
    ) -> AuditEvent:
        if same_tx:
            self.log_index += 1
        else:
            self.block, self.log_index = self.block + 1, 0
        ref = EventRef(self.block, self.log_index, "0x" + f"{self.block:064x}")
        return AuditEvent(contract, ADDRESSES[contract], name, args, ref, at)


def agreement_id(number: int) -> str:
    return "0x" + (0xA0 << 248 | number).to_bytes(32, "big").hex()


def opened(
    make: EventMaker,
    number: int,
    *,
    commitment: str | None = None,
    terms_hash: str = "0x" + "7e" * 32,
) -> AuditEvent:
    fields: dict[str, Any] = {
        "agreementId": agreement_id(number),
        "borrowerRef": "0x" + "b0" * 32,
        "termsHash": terms_hash,
        "productCode": 3,
        "limitFen": 500_000,
        "aprBps": 1_800,
        "openedAt": 1_735_689_600,
    }
    replayed = AgreementReplay(
        agreement_id=fields["agreementId"],
        borrower_ref=fields["borrowerRef"],
        terms_hash=fields["termsHash"],
        product_code=3,
        limit_fen=500_000,
        apr_bps=1_800,
        opened_at=1_735_689_600,
        commitment="",
        status=1,
        last_reason_code=0,
        change_count=0,
        opened=None,
        opened_limit_fen=500_000,
    )
    return make(
        "CreditRegistry",
        "AgreementOpened",
        **fields,
        commitment=commitment or compute_commitment(replayed),
    )


def status_changed(make: EventMaker, number: int, old: int, new: int) -> AuditEvent:
    return make(
        "CreditRegistry",
        "AgreementStatusChanged",
        agreementId=agreement_id(number),
        fromStatus=old,
        toStatus=new,
        reasonCode=1,
    )


def proposed(
    make: EventMaker,
    cycle_id: int,
    positions: dict[int, int],
    root: str = "0x" + "cc" * 32,
    entry_count: int = 4,
    funding_deadline: int = 0,
) -> AuditEvent:
    return make(
        "ClearingHouse",
        "CycleProposed",
        cycleId=cycle_id,
        entriesRoot=root,
        entryCount=entry_count,
        partnerIds=sorted(positions),
        netPositions=[positions[p] for p in sorted(positions)],
        disputeDeadline=0,
        fundingDeadline=funding_deadline,
    )


def fresh_state() -> ReplayedState:
    return ReplayedState(contracts={name: address for name, address in ADDRESSES.items()})
