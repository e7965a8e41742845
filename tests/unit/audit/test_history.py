"""The event replay: state rebuilt from events, and anomalies for what the documented
state machines forbid."""

from __future__ import annotations

from node_api.kernel.chain import CycleStatus, is_legal_agreement_transition
from oracles.audit.history import replay
from oracles.audit.replay_state import LIFECYCLE_CHECK, TRANSITIONS_CHECK
from tests.unit.audit.factory import (
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
    assert legal == {(1, 2), (2, 1), (1, 3), (2, 3), (1, 4), (2, 4), (4, 5), (4, 1)}


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


def test_token_transfers_replay_supply_and_balances() -> None:
    make = EventMaker()
    zero, holder, house = "0x" + "00" * 20, "0x" + "0e" * 20, "0x" + "0f" * 20
    state = replay(
        [
            make("SettlementToken", "Transfer", **{"from": zero, "to": holder, "value": 900}),
            make("SettlementToken", "Transfer", **{"from": holder, "to": house, "value": 400}),
        ],
        fresh_state(),
    )
    assert state.token_supply_fen == 900
    assert state.token_balances_fen == {holder: 500, house: 400}
    assert [a.category for a in state.admin_actions] == ["mint"]
