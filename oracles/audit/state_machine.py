"""The contracts' documented state machines, as the auditor reads them from the interfaces.

Written down here from `ICreditRegistry` and `IClearingHouse` (not taken from the
contracts' code), so the replay judges what the chain did against what the published
interfaces promise.
"""

from __future__ import annotations

from typing import Final

AGREEMENT_ACTIVE: Final = 1
AGREEMENT_FROZEN: Final = 2
AGREEMENT_CLOSED: Final = 3
AGREEMENT_DEFAULTED: Final = 4
AGREEMENT_CHARGED_OFF: Final = 5

AGREEMENT_STATUS_NAMES: Final = {
    0: "None",
    AGREEMENT_ACTIVE: "Active",
    AGREEMENT_FROZEN: "Frozen",
    AGREEMENT_CLOSED: "Closed",
    AGREEMENT_DEFAULTED: "Defaulted",
    AGREEMENT_CHARGED_OFF: "ChargedOff",
}

LEGAL_AGREEMENT_TRANSITIONS: Final = frozenset(
    {
        (AGREEMENT_ACTIVE, AGREEMENT_FROZEN),
        (AGREEMENT_FROZEN, AGREEMENT_ACTIVE),
        (AGREEMENT_ACTIVE, AGREEMENT_CLOSED),
        (AGREEMENT_FROZEN, AGREEMENT_CLOSED),
        (AGREEMENT_ACTIVE, AGREEMENT_DEFAULTED),
        (AGREEMENT_FROZEN, AGREEMENT_DEFAULTED),
        (AGREEMENT_DEFAULTED, AGREEMENT_CHARGED_OFF),
        (AGREEMENT_DEFAULTED, AGREEMENT_ACTIVE),
    }
)
"""Active<->Frozen; Active/Frozen->Closed; Active/Frozen->Defaulted; Defaulted->ChargedOff;
Defaulted->Active (cured). Closed and ChargedOff are terminal."""

CYCLE_NONE: Final = 0
CYCLE_PROPOSED: Final = 1
CYCLE_DISPUTED: Final = 2
CYCLE_FINALIZED: Final = 3
CYCLE_FUNDED: Final = 4
CYCLE_REJECTED: Final = 5

CYCLE_STATUS_NAMES: Final = {
    CYCLE_NONE: "None",
    CYCLE_PROPOSED: "Proposed",
    CYCLE_DISPUTED: "Disputed",
    CYCLE_FINALIZED: "Finalized",
    CYCLE_FUNDED: "Funded",
    CYCLE_REJECTED: "Rejected",
}


def is_legal_agreement_transition(from_status: int, to_status: int) -> bool:
    """Whether `from_status -> to_status` is one of the documented legal transitions."""
    return (from_status, to_status) in LEGAL_AGREEMENT_TRANSITIONS
