"""The replayed state: what the contracts' events say, as plain data.

Filled by `history.replay` (and, for a partial replay, seeded by `seeding`); read by the
view comparisons, the invariants, the reconciliation and the report. `Anomaly` records
whatever an event shows that the documented state machines forbid, tagged with the id of
the check that reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from node_api.kernel.money import FEN_ZERO, Fen
from oracles.audit.checks import JsonValue
from oracles.audit.events import AuditEvent, EventRef
from oracles.compiler import AbiEntry

ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
DEFAULT_ADMIN_ROLE: Final = "0x" + "00" * 32
TRANSITIONS_CHECK: Final = "invariant.agreement_transitions"
AGREEMENTS_CHECK: Final = "replay.agreements"
LIFECYCLE_CHECK: Final = "invariant.cycle_lifecycle"
DEFAULTS_CHECK: Final = "invariant.cycle_defaults"
TIMELOCK_CHECK: Final = "governance.timelock_operations"


@dataclass(frozen=True)
class Anomaly:
    """Something an event shows that the documented state machine forbids."""

    check_id: str
    problem: str
    ref: EventRef
    address: str
    values: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChange:
    ref: EventRef
    from_status: int
    to_status: int
    reason_code: int


@dataclass(frozen=True)
class LimitChange:
    ref: EventRef
    old_limit_fen: Fen
    new_limit_fen: Fen
    reason_code: int


@dataclass
class AgreementReplay:
    """An agreement as its events describe it. `opened` is None when it was seeded from
    the views because it opened before the replayed window."""

    agreement_id: str
    # the opening terms (as AgreementOpened states them) and their commitment
    borrower_ref: str
    terms_hash: str
    product_code: int
    apr_bps: int
    opened_at: int
    commitment: str
    opened: EventRef | None
    # what amendments and status changes move
    limit_fen: Fen
    status: int
    last_reason_code: int
    change_count: int
    opened_limit_fen: Fen = FEN_ZERO
    status_history: list[StatusChange] = field(default_factory=list)
    limit_history: list[LimitChange] = field(default_factory=list)


@dataclass
class CycleReplay:
    """A settlement cycle as its events describe it (amounts in fen).

    `claimed_fen` counts claims and `refunded_fen` refunds (the contract's `claimedFen`
    is their sum: in a Defaulted cycle it counts the refunds). `funding_deadline` is
    from CycleProposed (or the view, for a seeded cycle)."""

    cycle_id: int
    entries_root: str
    entry_count: int
    partner_ids: tuple[int, ...]
    net_positions_fen: tuple[Fen, ...]
    dispute_deadline: int
    status: int
    proposed: EventRef | None
    disputes: list[tuple[int, str, EventRef]] = field(default_factory=list)
    resolutions: list[tuple[bool, EventRef]] = field(default_factory=list)
    finalized: EventRef | None = None
    fully_funded: EventRef | None = None
    fundings: dict[int, tuple[int, EventRef]] = field(default_factory=dict)
    claims: dict[int, tuple[int, str, EventRef]] = field(default_factory=dict)
    total_due_fen: Fen = FEN_ZERO
    funded_fen: Fen = FEN_ZERO
    claimed_fen: Fen = FEN_ZERO
    funding_deadline: int = 0
    defaulted: EventRef | None = None
    defaulted_at: int | None = None
    """Unix seconds of the block that declared the default (None when unknown)."""
    defaulters: tuple[int, ...] = ()
    unfunded_fen: Fen = FEN_ZERO
    """What the defaulters owed together, as CycleDefaulted states it."""
    refunds: dict[int, tuple[int, str, EventRef]] = field(default_factory=dict)
    refunded_fen: Fen = FEN_ZERO
    seeded_disputed: set[int] = field(default_factory=set)
    seeded_settled: set[int] = field(default_factory=set)
    seeded_refunded: set[int] = field(default_factory=set)
    """Partners disputed / settled / refunded before a partial replay's window (views)."""

    def is_settled(self, partner_id: int) -> bool:
        return (
            partner_id in self.fundings
            or partner_id in self.claims
            or partner_id in self.seeded_settled
        )

    def is_refunded(self, partner_id: int) -> bool:
        return partner_id in self.refunds or partner_id in self.seeded_refunded

    @property
    def held_fen(self) -> Fen:
        """What the clearing house still holds for this cycle: funded, less paid out."""
        return Fen(self.funded_fen - self.claimed_fen - self.refunded_fen)

    def debtors(self) -> dict[int, int]:
        """Listed net debtors -> what each owes (fen, positive)."""
        return {
            partner_id: -net_fen
            for partner_id, net_fen in zip(self.partner_ids, self.net_positions_fen, strict=True)
            if net_fen < 0
        }

    def is_disputed(self, partner_id: int) -> bool:
        disputed = any(p == partner_id for p, _reason, _ref in self.disputes)
        return disputed or partner_id in self.seeded_disputed

    def position_of(self, partner_id: int) -> int | None:
        """The listed partner's net position, or None when not listed."""
        for listed, net_fen in zip(self.partner_ids, self.net_positions_fen, strict=True):
            if listed == partner_id:
                return net_fen
        return None


@dataclass
class PartnerReplay:
    partner_id: int
    role: int
    payout: str
    active: bool
    registered: EventRef | None


@dataclass(frozen=True)
class SignerSet:
    version: int
    signers: tuple[str, ...]
    threshold: int
    ref: EventRef


@dataclass(frozen=True)
class RoleChange:
    contract: str
    address: str
    role: str
    account: str
    sender: str
    granted: bool
    ref: EventRef


@dataclass(frozen=True)
class LineStateReplay:
    cycle_id: int
    root: str
    count: int
    total_outstanding_fen: Fen
    submitter: str
    ref: EventRef


@dataclass(frozen=True)
class ReportConsumed:
    consumer: str
    report_id: str
    digest: str
    signer_set_version: int
    ref: EventRef


@dataclass(frozen=True)
class AdminAction:
    """A privileged action: role change, signer set, pause, dispute ruling, mint, partner,
    timelock operation.

    `function` is the contract function the event comes from; `privileged` says whether
    it needs the contract's DEFAULT_ADMIN_ROLE or PAUSER_ROLE (on a governed contract,
    only the timelock may send it); `sender` is the account that called the contract
    (the event's own sender field, the timelock when a `CallExecuted` of the same
    transaction made the call, else the transaction's sender); `operation` is the
    timelock operation that made it."""

    contract: str
    address: str
    category: str
    description: str
    ref: EventRef
    sender: str = ""
    function: str = ""
    privileged: bool = False
    operation: str = ""


@dataclass
class TimelockCall:
    """One call of a timelock operation (a batch has several, by `index`)."""

    index: int
    target: str
    value: int
    data: str
    description: str
    """`Contract.function(arguments)` decoded with the target's published ABI."""
    function: str = ""
    executed: EventRef | None = None


@dataclass
class TimelockOperation:
    """A timelock operation as its events describe it. `scheduled` is None when it was
    scheduled before a partial replay's window."""

    operation_id: str
    calls: list[TimelockCall]
    predecessor: str
    delay_s: int
    scheduled: EventRef | None
    scheduled_at: int | None
    """Unix seconds of the scheduling block (None when unknown)."""
    min_delay_s: int | None
    """The timelock's minimum delay when it was scheduled (None when unknown)."""
    salt: str = "0x" + "00" * 32
    executed: EventRef | None = None
    executed_at: int | None = None
    cancelled: EventRef | None = None

    @property
    def state(self) -> str:
        """`pending`, `executed` or `cancelled`."""
        if self.cancelled is not None:
            return "cancelled"
        return "executed" if self.executed is not None else "pending"

    @property
    def ready_at(self) -> int | None:
        return None if self.scheduled_at is None else self.scheduled_at + self.delay_s


@dataclass(frozen=True)
class MinDelayChange:
    old_s: int
    new_s: int
    ref: EventRef


@dataclass
class ReplayedState:
    """Everything the events say; `contracts` maps contract name -> lowercase address."""

    contracts: dict[str, str]
    agreements: dict[str, AgreementReplay] = field(default_factory=dict)
    cycles: dict[int, CycleReplay] = field(default_factory=dict)
    partners: dict[int, PartnerReplay] = field(default_factory=dict)
    signer_sets: list[SignerSet] = field(default_factory=list)
    role_changes: list[RoleChange] = field(default_factory=list)
    role_members: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    role_admins: dict[tuple[str, str], str] = field(default_factory=dict)
    paused: dict[str, bool] = field(default_factory=dict)
    line_states: dict[int, LineStateReplay] = field(default_factory=dict)
    reports: list[ReportConsumed] = field(default_factory=list)
    token_supply_fen: Fen = FEN_ZERO
    token_balances_fen: dict[str, int] = field(default_factory=dict)
    admin_actions: list[AdminAction] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    event_count: int = 0
    role_names: dict[str, str] = field(default_factory=dict)
    """Role hash -> name (`RELAYER_ROLE`), for readable admin actions."""
    abis: dict[str, list[AbiEntry]] = field(default_factory=dict)
    """Contract name -> published ABI, to decode the calls timelock operations make."""
    timelock_operations: list[TimelockOperation] = field(default_factory=list)
    timelock_min_delay_s: int | None = None
    min_delay_changes: list[MinDelayChange] = field(default_factory=list)
    partial: bool = False
    """Whether the replay began after the deployment (set by `seeding`)."""

    def contract_at(self, address: str) -> str | None:
        """The audited contract's name at `address`, or None."""
        lowered = address.lower()
        return next((n for n, a in self.contracts.items() if a == lowered), None)

    def timelock_operation(self, operation_id: str) -> TimelockOperation | None:
        """The latest operation with this id (an id may be scheduled again once cancelled)."""
        for operation in reversed(self.timelock_operations):
            if operation.operation_id == operation_id:
                return operation
        return None

    def role_name(self, role: str) -> str:
        return self.role_names.get(role.lower(), role)

    def signer_set_at(self, order: tuple[int, int]) -> SignerSet | None:
        """The signer set in force just before the event at `order` (block, log index)."""
        current: SignerSet | None = None
        for signer_set in self.signer_sets:
            if signer_set.ref.order < order:
                current = signer_set
        return current

    def note(self, check_id: str, problem: str, event: AuditEvent, **values: Any) -> None:
        self.anomalies.append(Anomaly(check_id, problem, event.ref, event.address, values))

    def admin(
        self,
        event: AuditEvent,
        category: str,
        description: str,
        sender: str = "",
        *,
        function: str = "",
        privileged: bool = False,
        operation: str = "",
    ) -> None:
        self.admin_actions.append(
            AdminAction(
                event.contract,
                event.address,
                category,
                description,
                event.ref,
                sender,
                function,
                privileged,
                operation,
            )
        )
