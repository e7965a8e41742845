"""The chain's vocabulary, once: what the contracts in contracts/ define and Python mirrors.

Every number here is part of the on-chain state or of a signed leaf; never renumber. The
contracts keep these values as `uint8` constants (private ones for the statuses) and
document them in their interfaces; `tests/unit/kernel/test_chain_vocabulary.py` compiles
contracts/ and checks every value below against the ABI and the Solidity sources.

This module imports nothing of the project, so the kernel, the domain, the chain client and
settlement can all speak it.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final

from sha3 import keccak_256


class ContractName(StrEnum):
    """The deployed contracts, by their Solidity contract names (the artifacts' keys)."""

    SETTLEMENT_TOKEN = "SettlementToken"
    ORACLE_QUORUM = "OracleQuorum"
    CREDIT_REGISTRY = "CreditRegistry"
    CLEARING_HOUSE = "ClearingHouse"
    NETWORK_TIMELOCK = "NetworkTimelock"


class CycleStatus(IntEnum):
    """A settlement cycle's status on the ClearingHouse (`uint8`; 0 = unknown id)."""

    NONE = 0
    PROPOSED = 1
    DISPUTED = 2
    FINALIZED = 3
    FUNDED = 4
    REJECTED = 5
    DEFAULTED = 6

    @property
    def label(self) -> str:
        """The interface documentation's name (`Proposed`)."""
        return self.name.title()


class AgreementStatus(IntEnum):
    """An agreement's status on the CreditRegistry (`uint8`; 0 = unknown id)."""

    NONE = 0
    ACTIVE = 1
    FROZEN = 2
    CLOSED = 3
    DEFAULTED = 4
    CHARGED_OFF = 5

    @property
    def label(self) -> str:
        """The interface documentation's name (`ChargedOff`)."""
        return self.name.title().replace("_", "")


LEGAL_AGREEMENT_TRANSITIONS: Final = frozenset(
    {
        (AgreementStatus.ACTIVE, AgreementStatus.FROZEN),
        (AgreementStatus.FROZEN, AgreementStatus.ACTIVE),
        (AgreementStatus.ACTIVE, AgreementStatus.CLOSED),
        (AgreementStatus.FROZEN, AgreementStatus.CLOSED),
        (AgreementStatus.ACTIVE, AgreementStatus.DEFAULTED),
        (AgreementStatus.FROZEN, AgreementStatus.DEFAULTED),
        (AgreementStatus.DEFAULTED, AgreementStatus.CHARGED_OFF),
        (AgreementStatus.DEFAULTED, AgreementStatus.ACTIVE),
        (AgreementStatus.CHARGED_OFF, AgreementStatus.CLOSED),
    }
)
"""The CreditRegistry's legal status changes: Active<->Frozen; Active/Frozen->Closed;
Active/Frozen->Defaulted; Defaulted->ChargedOff; Defaulted->Active (cured);
ChargedOff->Closed (the debt was sold, or recovered in full). Closed is terminal."""


class PartnerRole(IntEnum):
    """A clearing partner's role on the ClearingHouse (`uint8`, 0..3)."""

    LENDER = 0
    FUNDER = 1
    CHANNEL = 2
    GUARANTOR = 3


class EntryKind(IntEnum):
    """What a settlement entry is for: the books' code, the `uint8 kind` of every leaf.

    The contracts take any `uint8`; the numbers are fixed by the leaves already signed, so
    never renumber or reuse one.
    """

    PRINCIPAL_FUNDED = 1
    PRINCIPAL_REPAID = 2
    INTEREST_SHARE = 3
    SERVICE_FEE = 4
    FEE_SHARE = 5
    CHANNEL_COMMISSION = 6
    MERCHANT_DISCOUNT = 7
    REFUND = 8
    CHARGE_OFF = 9
    GUARANTEE_PAYMENT = 10
    RECOVERY = 11
    DEBT_SALE = 12


class AccessRole(StrEnum):
    """The contracts' AccessControl roles, by the names of their `*_ROLE` constants."""

    DEFAULT_ADMIN_ROLE = "DEFAULT_ADMIN_ROLE"
    RELAYER_ROLE = "RELAYER_ROLE"
    PAUSER_ROLE = "PAUSER_ROLE"
    CONSUMER_ROLE = "CONSUMER_ROLE"
    MINTER_ROLE = "MINTER_ROLE"
    PROPOSER_ROLE = "PROPOSER_ROLE"
    EXECUTOR_ROLE = "EXECUTOR_ROLE"
    CANCELLER_ROLE = "CANCELLER_ROLE"

    @property
    def hash(self) -> bytes:
        """The role's bytes32: zero for OpenZeppelin's admin role, else keccak256(name)."""
        if self is AccessRole.DEFAULT_ADMIN_ROLE:
            return bytes(32)
        digest: bytes = keccak_256(self.value.encode()).digest()
        return digest


def is_legal_agreement_transition(from_status: int, to_status: int) -> bool:
    """Whether the CreditRegistry accepts `from_status -> to_status`."""
    return (from_status, to_status) in LEGAL_AGREEMENT_TRANSITIONS
