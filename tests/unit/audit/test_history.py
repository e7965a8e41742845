"""The event replay: state rebuilt from events, and anomalies for what the documented
state machines forbid."""

from __future__ import annotations

from typing import Any

from node_api.kernel.chain import CycleStatus, is_legal_agreement_transition
from oracles.audit.events import AuditEvent
from oracles.audit.history import replay
from oracles.audit.replay_state import (
    DEFAULTS_CHECK,
    LIFECYCLE_CHECK,
    TRANSITIONS_CHECK,
    ReplayedState,
)
from tests.unit.audit.factory import (
    TIMELOCK,
    EventMaker,
    agreement_id,
    fresh_state,
    opened,
    proposed,
    status_changed,
)


def test_agreement_status_history_replays_in_order() -> None:
    make = EventMaker()
    events = [
        opened(make, 1),
        status_changed(make, 1, 1, 2),
        status_changed(make, 1, 2, 1),
        make(
            "CreditRegistry",
            "AgreementLimitAmended",
            agreementId=agreement_id(1),
            oldLimitFen=500_000,
            newLimitFen=650_000,
            reasonCode=9,
        ),
    ]
    state = replay(events, fresh_state())
    agreement = state.agreements[agreement_id(1)]
    assert (agreement.status, agreement.limit_fen, agreement.change_count) == (1, 650_000, 3)
    assert [(c.from_status, c.to_status) for c in agreement.status_history] == [(1, 2), (2, 1)]
    assert agreement.last_reason_code == 9
    assert state.anomalies == []


def test_forbidden_transition_is_an_anomaly_pointing_at_its_event() -> None:
    make = EventMaker()
    closed = status_changed(make, 1, 1, 3)
    reopened = status_changed(make, 1, 3, 1)
    state = replay([opened(make, 1), closed, reopened], fresh_state())
    (anomaly,) = state.anomalies
    assert anomaly.check_id == TRANSITIONS_CHECK
    assert "forbidden transition 3 -> 1" in anomaly.problem
    assert anomaly.ref == reopened.ref


def test_transition_from_a_status_the_agreement_is_not_in_is_an_anomaly() -> None:
    make = EventMaker()
    state = replay([opened(make, 1), status_changed(make, 1, 2, 1)], fresh_state())
    assert [a.problem for a in state.anomalies] == [
        f"agreement {agreement_id(1)}: transition from status 2, but it was in status 1"
    ]


def test_change_of_an_agreement_never_opened_is_an_anomaly() -> None:
    state = replay([status_changed(EventMaker(), 5, 1, 2)], fresh_state())
    assert [a.check_id for a in state.anomalies] == [TRANSITIONS_CHECK]


def test_opening_whose_fields_do_not_hash_to_its_commitment_is_flagged() -> None:
    state = replay([opened(EventMaker(), 1, commitment="0x" + "00" * 32)], fresh_state())
    (anomaly,) = state.anomalies
    assert anomaly.check_id == "replay.agreements" and "hash to" in anomaly.problem


def test_documented_transitions_are_exactly_the_legal_ones() -> None:
    legal = {(a, b) for a in range(7) for b in range(7) if is_legal_agreement_transition(a, b)}
    assert legal == {(1, 2), (2, 1), (1, 3), (2, 3), (1, 4), (2, 4), (4, 5), (4, 1), (5, 3)}


def test_cycle_lifecycle_replays_fundings_and_claims() -> None:
    make = EventMaker()
    events = [
        make("ClearingHouse", "PartnerRegistered", partnerId=1, role=0, payout="0x" + "0a" * 20),
        proposed(make, 7, {1: 300, 2: -300}),
        make("ClearingHouse", "CycleFinalized", cycleId=7, entriesRoot="0x" + "cc" * 32),
        make("ClearingHouse", "CycleFunded", cycleId=7, partnerId=2, amount=300),
        make("ClearingHouse", "CycleFullyFunded", cycleId=7, totalDueFen=300),
        make(
            "ClearingHouse",
            "CycleClaimed",
            cycleId=7,
            partnerId=1,
            payout="0x" + "0a" * 20,
            amount=300,
        ),
    ]
    state = replay(events, fresh_state())
    cycle = state.cycles[7]
    assert (cycle.status, cycle.total_due_fen, cycle.funded_fen, cycle.claimed_fen) == (
        CycleStatus.FUNDED,
        300,
        300,
        300,
    )
    assert cycle.is_settled(1) and cycle.is_settled(2)
    assert state.anomalies == []


def test_claim_before_funding_and_a_wrong_amount_are_lifecycle_anomalies() -> None:
    make = EventMaker()
    events = [
        proposed(make, 7, {1: 300, 2: -300}),
        make("ClearingHouse", "CycleFinalized", cycleId=7, entriesRoot="0x" + "cc" * 32),
        make(
            "ClearingHouse",
            "CycleClaimed",
            cycleId=7,
            partnerId=1,
            payout="0x" + "0a" * 20,
            amount=250,
        ),
    ]
    state = replay(events, fresh_state())
    assert state.cycles[7].status == CycleStatus.FINALIZED
    problems = [a.problem for a in state.anomalies]
    assert all(a.check_id == LIFECYCLE_CHECK for a in state.anomalies)
    assert problems == [
        "claim of cycle 7 in status 3",
        "cycle 7: partner 1 claimed 250 fen, position 300",
    ]


def test_signer_set_in_force_is_the_last_one_before_the_event() -> None:
    make = EventMaker()
    first = make(
        "OracleQuorum", "SignerSetChanged", version=1, signers=["0x" + "01" * 20], threshold=1
    )
    second = make(
        "OracleQuorum", "SignerSetChanged", version=2, signers=["0x" + "02" * 20], threshold=1
    )
    state = replay([first, second], fresh_state())
    assert state.signer_set_at(first.ref.order) is None
    assert state.signer_set_at((second.ref.block, 0)).version == 1  # type: ignore[union-attr]
    assert state.signer_set_at((second.ref.block + 1, 0)).version == 2  # type: ignore[union-attr]
    assert [a.category for a in state.admin_actions] == ["signers", "signers"]


def test_role_grants_and_revocations_track_members_and_admin_actions() -> None:
    make = EventMaker()
    role, account = "0x" + "ab" * 32, "0x" + "0c" * 20
    state = fresh_state()
    state.role_names = {role: "RELAYER_ROLE"}
    replay(
        [
            make(
                "CreditRegistry", "RoleGranted", role=role, account=account, sender="0x" + "0d" * 20
            ),
            make(
                "CreditRegistry", "RoleRevoked", role=role, account=account, sender="0x" + "0d" * 20
            ),
        ],
        state,
    )
    assert state.role_members[("CreditRegistry", role)] == set()
    assert [a.description for a in state.admin_actions] == [
        f"RELAYER_ROLE granted to {account}",
        f"RELAYER_ROLE revoked from {account}",
    ]


def _transfer(source: str, target: str, value: int) -> dict[str, Any]:
    return {"from": source, "to": target, "value": value}


def test_token_transfers_replay_supply_and_balances() -> None:
    make = EventMaker()
    zero, holder, house = "0x" + "00" * 20, "0x" + "0e" * 20, "0x" + "0f" * 20
    state = replay(
        [
            make("SettlementToken", "Transfer", **_transfer(zero, holder, 900)),
            make("SettlementToken", "Transfer", **_transfer(holder, house, 400)),
        ],
        fresh_state(),
    )
    assert state.token_supply_fen == 900
    assert state.token_balances_fen == {holder: 500, house: 400}
    assert [a.category for a in state.admin_actions] == ["mint"]


PAYOUT_2, PAYOUT_3 = "0x" + "0b" * 20, "0x" + "0c" * 20
DEADLINE = 1_750_000_000


def _finalized_cycle_with_one_funder(make: EventMaker) -> list[AuditEvent]:
    """Cycle 9: partner 1 is owed 500 fen; 2 owes 300 and funds, 3 owes 200 and does not."""
    return [
        make("ClearingHouse", "PartnerRegistered", partnerId=2, role=0, payout=PAYOUT_2),
        make("ClearingHouse", "PartnerRegistered", partnerId=3, role=0, payout=PAYOUT_3),
        proposed(make, 9, {1: 500, 2: -300, 3: -200}, funding_deadline=DEADLINE),
        make("ClearingHouse", "CycleFinalized", cycleId=9, entriesRoot="0x" + "cc" * 32),
        make("ClearingHouse", "CycleFunded", cycleId=9, partnerId=2, amount=300),
    ]


def _defaulted(make: EventMaker, defaulters: list[int], unfunded: int, at: int) -> AuditEvent:
    return make(
        "ClearingHouse",
        "CycleDefaulted",
        at=at,
        cycleId=9,
        defaulters=defaulters,
        unfundedFen=unfunded,
    )


def _refunded(make: EventMaker, partner_id: int, amount: int, payout: str) -> AuditEvent:
    return make(
        "ClearingHouse",
        "CycleRefunded",
        cycleId=9,
        partnerId=partner_id,
        payout=payout,
        amount=amount,
    )


def _defaults_problems(state: ReplayedState) -> list[str]:
    return [a.problem for a in state.anomalies if a.check_id == DEFAULTS_CHECK]


def test_default_after_the_deadline_and_the_funders_refund_replay_cleanly() -> None:
    make = EventMaker()
    events = [
        *_finalized_cycle_with_one_funder(make),
        _defaulted(make, [3], 200, DEADLINE),
        _refunded(make, 2, 300, PAYOUT_2),
    ]
    state = replay(events, fresh_state())
    cycle = state.cycles[9]
    assert state.anomalies == []
    assert cycle.status == CycleStatus.DEFAULTED and cycle.funding_deadline == DEADLINE
    assert (cycle.defaulters, cycle.unfunded_fen) == ((3,), 200)
    assert (cycle.total_due_fen, cycle.funded_fen, cycle.claimed_fen, cycle.refunded_fen) == (
        500,
        300,
        0,
        300,
    )
    assert cycle.is_refunded(2) and not cycle.is_refunded(3) and cycle.held_fen == 0


def test_default_before_the_funding_deadline_is_flagged() -> None:
    make = EventMaker()
    events = [*_finalized_cycle_with_one_funder(make), _defaulted(make, [3], 200, DEADLINE - 1)]
    state = replay(events, fresh_state())
    assert _defaults_problems(state) == [
        f"cycle 9: declared defaulted at {DEADLINE - 1}, before its funding deadline {DEADLINE}"
    ]


def test_defaulters_must_be_exactly_the_unfunded_debtors_owing_the_unfunded_amount() -> None:
    make = EventMaker()
    naming_the_funder = [
        *_finalized_cycle_with_one_funder(make),
        _defaulted(make, [2, 3], 200, DEADLINE),
    ]
    assert _defaults_problems(replay(naming_the_funder, fresh_state())) == [
        "cycle 9: defaulter 2 had funded",
        "cycle 9: the defaulters owe 500 fen, not the 200 fen declared",
    ]
    make = EventMaker()
    naming_nobody = [*_finalized_cycle_with_one_funder(make), _defaulted(make, [], 200, DEADLINE)]
    assert _defaults_problems(replay(naming_nobody, fresh_state())) == [
        "cycle 9: unfunded debtors [3] not named as defaulters",
        "cycle 9: the defaulters owe 0 fen, not the 200 fen declared",
    ]
    make = EventMaker()
    wrong_amount = [*_finalized_cycle_with_one_funder(make), _defaulted(make, [3], 150, DEADLINE)]
    assert _defaults_problems(replay(wrong_amount, fresh_state())) == [
        "cycle 9: unfunded 150 fen declared, but 200 fen of 500 due was unfunded"
    ]
    make = EventMaker()
    creditor = [*_finalized_cycle_with_one_funder(make), _defaulted(make, [1, 3], 200, DEADLINE)]
    assert "cycle 9: defaulter 1 is not a listed net debtor" in _defaults_problems(
        replay(creditor, fresh_state())
    )


def test_default_of_a_cycle_that_is_not_finalized_is_flagged() -> None:
    make = EventMaker()
    events = [
        proposed(make, 9, {1: 500, 2: -500}, funding_deadline=DEADLINE),
        _defaulted(make, [2], 500, DEADLINE),
    ]
    assert _defaults_problems(replay(events, fresh_state())) == ["default of cycle 9 in status 1"]


def test_refund_to_a_debtor_that_never_funded_is_flagged() -> None:
    """Impossible on-chain (NothingToRefund): the replay must still catch it."""
    make = EventMaker()
    events = [
        *_finalized_cycle_with_one_funder(make),
        _defaulted(make, [3], 200, DEADLINE),
        _refunded(make, 3, 200, PAYOUT_3),
    ]
    state = replay(events, fresh_state())
    assert _defaults_problems(state) == [
        "cycle 9: refund of 200 fen to partner 3, which never funded"
    ]
    assert state.cycles[9].refunded_fen == 200


def test_refund_twice_of_another_amount_or_to_another_address_is_flagged() -> None:
    make = EventMaker()
    stranger = "0x" + "ee" * 20
    events = [
        *_finalized_cycle_with_one_funder(make),
        _defaulted(make, [3], 200, DEADLINE),
        _refunded(make, 2, 300, PAYOUT_2),
        _refunded(make, 2, 250, stranger),
    ]
    assert _defaults_problems(replay(events, fresh_state())) == [
        "cycle 9: refund of 250 fen to partner 2, which funded 300 fen",
        "cycle 9: refund of 250 fen to partner 2, refunded twice",
        f"cycle 9: refund of 250 fen to partner 2, paid to {stranger}, not its payout",
    ]


def test_refund_before_a_default_and_a_claim_after_one_are_flagged() -> None:
    make = EventMaker()
    early = [*_finalized_cycle_with_one_funder(make), _refunded(make, 2, 300, PAYOUT_2)]
    assert _defaults_problems(replay(early, fresh_state())) == ["refund of cycle 9 in status 3"]
    make = EventMaker()
    late = [*_finalized_cycle_with_one_funder(make), _defaulted(make, [3], 200, DEADLINE)]
    late.append(
        make("ClearingHouse", "CycleClaimed", cycleId=9, partnerId=1, payout=PAYOUT_2, amount=500)
    )
    state = replay(late, fresh_state())
    assert [a.problem for a in state.anomalies if a.check_id == LIFECYCLE_CHECK] == [
        "claim of cycle 9 in status 6"
    ]


def test_renouncing_a_role_is_not_a_privileged_action() -> None:
    make = EventMaker()
    admin = "0x" + "0d" * 20
    role = "0x" + "00" * 32
    state = replay(
        [
            make("ClearingHouse", "RoleRevoked", role=role, account=admin, sender=admin),
            make("ClearingHouse", "RoleRevoked", role=role, account=admin, sender=TIMELOCK),
        ],
        fresh_state(),
    )
    renounce, revoke = state.admin_actions
    assert (renounce.function, renounce.privileged) == ("renounceRole", False)
    assert renounce.description == f"{role} renounced by {admin}"
    assert (revoke.function, revoke.privileged, revoke.sender) == ("revokeRole", True, TIMELOCK)
