"""Partial replay (`--from-block` after the deployment): the state before the window.

Events before the window are not read, so whatever the window's events touch that
began earlier (an agreement opened before, a cycle proposed before, a partner, the
signer set, pause flags, token balances, the timelock's minimum delay) is seeded from
the contracts' views at the block just before the window. Seeded subjects carry no
opening event (`opened` / `proposed` is None): the invariant and reconciliation checks
judge only what the window shows, and the report says the replay is partial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from node_api.kernel.chain import ContractName, CycleStatus
from node_api.kernel.money import FEN_ZERO, Fen
from oracles.audit.audited import (
    AuditedContracts,
)
from oracles.audit.chain_reader import ChainReader
from oracles.audit.events import AuditEvent, EventRef
from oracles.audit.replay_state import (
    ZERO_ADDRESS,
    AgreementReplay,
    CycleReplay,
    PartnerReplay,
    ReplayedState,
    SignerSet,
)
from oracles.audit.view_calls import CallSpec, run_views
from oracles.chain_mirror import CYCLE_EVENTS

SEED_LOG_INDEX: Final = 2**31
AGREEMENT_CHANGES: Final = frozenset({"AgreementLimitAmended", "AgreementStatusChanged"})
CYCLE_FOLLOW_UPS: Final = CYCLE_EVENTS - {"CycleProposed"}
PARTNER_FOLLOW_UPS: Final = frozenset({"PartnerActiveSet", "CycleClaimed", "CycleRefunded"})


@dataclass(frozen=True)
class _Window:
    """What seeding reads: the chain at `block` (just before the window) and the window's
    events; what it writes: `state`."""

    reader: ChainReader
    contracts: AuditedContracts
    state: ReplayedState
    events: Sequence[AuditEvent]
    block: int

    def views(self, calls: Sequence[CallSpec]) -> list[tuple[Any, ...] | None]:
        return run_views(self.reader, self.contracts, calls, self.block)


def _seed_agreements(window: _Window) -> None:
    state, events = window.state, window.events
    opened = {str(e.args["agreementId"]) for e in events if e.name == "AgreementOpened"}
    wanted = sorted(
        {str(e.args["agreementId"]) for e in events if e.name in AGREEMENT_CHANGES} - opened
    )
    calls = [(ContractName.CREDIT_REGISTRY, "getAgreement", [bytes.fromhex(a[2:])]) for a in wanted]
    for agreement_id, output in zip(wanted, window.views(calls), strict=True):
        if output is None or int(output[0][0]) == 0:
            continue
        record, commitment = output
        state.agreements[agreement_id] = AgreementReplay(
            agreement_id=agreement_id,
            borrower_ref="",
            terms_hash="",
            product_code=int(record[3]),
            limit_fen=Fen(int(record[1])),
            apr_bps=int(record[2]),
            opened_at=int(record[4]),
            commitment="0x" + bytes(commitment).hex(),
            status=int(record[0]),
            last_reason_code=int(record[5]),
            change_count=int(record[6]),
            opened=None,
        )


def _touched_partners(event: AuditEvent) -> list[int]:
    """The partners a cycle event concerns (a default names its defaulters)."""
    if "partnerId" in event.args:
        return [int(event.args["partnerId"])]
    return [int(p) for p in event.args.get("defaulters", [])]


def _seed_cycles(window: _Window) -> None:
    state, events = window.state, window.events
    proposed = {int(e.args["cycleId"]) for e in events if e.name == "CycleProposed"}
    partners: dict[int, set[int]] = {}
    for event in events:
        if event.name in CYCLE_FOLLOW_UPS and int(event.args["cycleId"]) not in proposed:
            touched = partners.setdefault(int(event.args["cycleId"]), set())
            touched.update(_touched_partners(event))
    cycle_ids = sorted(partners)
    outputs = window.views([(ContractName.CLEARING_HOUSE, "getCycle", [c]) for c in cycle_ids])
    for cycle_id, output in zip(cycle_ids, outputs, strict=True):
        if output is None or int(output[0][1]) == 0:
            continue
        (view,) = output
        ids = sorted(partners[cycle_id])
        positions = window.views(
            [(ContractName.CLEARING_HOUSE, "getPosition", [cycle_id, p]) for p in ids]
        )
        listed = [
            (p, pos) for p, pos in zip(ids, positions, strict=True) if pos is not None and pos[1]
        ]
        status, paid_out_fen = int(view[1]), Fen(int(view[9]))
        defaulted = status == CycleStatus.DEFAULTED
        state.cycles[cycle_id] = CycleReplay(
            cycle_id=cycle_id,
            entries_root="0x" + bytes(view[0]).hex(),
            entry_count=int(view[6]),
            partner_ids=tuple(p for p, _ in listed),
            net_positions_fen=tuple(Fen(int(pos[0])) for _, pos in listed),
            dispute_deadline=int(view[4]),
            funding_deadline=int(view[5]),
            status=status,
            proposed=None,
            total_due_fen=Fen(int(view[7])),
            funded_fen=Fen(int(view[8])),
            # the view's claimedFen counts the refunds once a cycle is Defaulted
            claimed_fen=FEN_ZERO if defaulted else paid_out_fen,
            refunded_fen=paid_out_fen if defaulted else FEN_ZERO,
            seeded_disputed={p for p, pos in listed if pos[2]},
            seeded_settled={p for p, pos in listed if pos[3]},
            seeded_refunded={p for p, pos in listed if pos[4]},
        )


def _seed_partners(window: _Window) -> None:
    state, events = window.state, window.events
    registered = {int(e.args["partnerId"]) for e in events if e.name == "PartnerRegistered"}
    wanted = sorted(
        {int(e.args["partnerId"]) for e in events if e.name in PARTNER_FOLLOW_UPS} - registered
    )
    outputs = window.views([(ContractName.CLEARING_HOUSE, "getPartner", [p]) for p in wanted])
    for partner_id, output in zip(wanted, outputs, strict=True):
        if output is not None and output[0][3]:
            payout, role, active, _registered = output[0]
            state.partners[partner_id] = PartnerReplay(
                partner_id, int(role), str(payout), bool(active), None
            )


def _seed_globals(window: _Window) -> None:
    contracts, state, events = window.contracts, window.state, window.events
    ref = EventRef(window.block, SEED_LOG_INDEX, "")
    if contracts.has(ContractName.ORACLE_QUORUM):
        signers, threshold, version = window.views(
            [
                (ContractName.ORACLE_QUORUM, "signers", []),
                (ContractName.ORACLE_QUORUM, "threshold", []),
                (ContractName.ORACLE_QUORUM, "signerSetVersion", []),
            ]
        )
        if (
            signers is not None
            and threshold is not None
            and version is not None
            and int(version[0])
        ):
            members = tuple(str(s) for s in signers[0])
            state.signer_sets.append(SignerSet(int(version[0]), members, int(threshold[0]), ref))
    if contracts.has(ContractName.NETWORK_TIMELOCK):
        (delay,) = window.views([(ContractName.NETWORK_TIMELOCK, "getMinDelay", [])])
        state.timelock_min_delay_s = int(delay[0]) if delay is not None else None
    names = [n for n in contracts.addresses if "paused" in contracts.codecs[n].functions]
    for name, output in zip(names, window.views([(n, "paused", []) for n in names]), strict=True):
        state.paused[name] = bool(output[0]) if output is not None else False
    if contracts.has(ContractName.SETTLEMENT_TOKEN):
        holders = sorted(
            {str(e.args[k]).lower() for e in events if e.name == "Transfer" for k in ("from", "to")}
            - {ZERO_ADDRESS}
        )
        calls: list[CallSpec] = [(ContractName.SETTLEMENT_TOKEN, "totalSupply", [])] + [
            (ContractName.SETTLEMENT_TOKEN, "balanceOf", [h]) for h in holders
        ]
        supply, *balances = window.views(calls)
        state.token_supply_fen = Fen(int(supply[0])) if supply is not None else FEN_ZERO
        for holder, balance in zip(holders, balances, strict=True):
            state.token_balances_fen[holder] = int(balance[0]) if balance is not None else 0


def seed_before_window(
    reader: ChainReader,
    contracts: AuditedContracts,
    state: ReplayedState,
    events: Sequence[AuditEvent],
    block: int,
) -> None:
    """Seed `state` with what the window's events touch, as the views show it at `block`."""
    window = _Window(reader, contracts, state, events, block)
    state.partial = True
    if contracts.has(ContractName.CREDIT_REGISTRY):
        _seed_agreements(window)
    if contracts.has(ContractName.CLEARING_HOUSE):
        _seed_cycles(window)
        _seed_partners(window)
    _seed_globals(window)
