"""The outbox is written in the caller's transaction, once per business key."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlmodel import select

from node_api.auth.keys import ApiKey, Role, create_api_key
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.outbox import (
    AgreementChange,
    AgreementOpening,
    CycleProposal,
    LineStateCommitment,
    OutboxKind,
    PartnerRegistration,
    enqueue,
    enqueue_async,
    enqueue_core,
    fetch_depth_by_status,
    fetch_item,
)
from node_api.kernel.outbox_table import OutboxItem, OutboxStatus


def _opening(number: int, limit_fen: int = 500_000) -> AgreementOpening:
    return AgreementOpening(
        agreement_id=number.to_bytes(32, "big"),
        borrower_ref=(number + 10_000).to_bytes(32, "big"),
        terms_hash=bytes(31) + b"\x07",
        product_code=3,
        limit_fen=limit_fen,
        apr_bps=1_800,
        opened_at=1_735_689_600,
    )


class _Boom(Exception):
    pass


def test_outbox_row_commits_with_the_business_change(database: Database) -> None:
    with database.session() as session:
        create_api_key(session, Role.AUDITOR, pepper=b"p")
        enqueue(session, _opening(1))
    with database.session() as session:
        assert len(session.exec(select(ApiKey)).all()) == 1
        row = fetch_item(session, _opening(1).business_key)
        assert row is not None
        assert row.status == OutboxStatus.PENDING
        assert row.kind == OutboxKind.AGREEMENT_OPEN
        assert row.attempts == 0
        assert row.payload == _opening(1).to_payload()
        assert row.payload["limit_fen"] == 500_000  # type: ignore[typeddict-item]


def test_outbox_row_rolls_back_with_the_business_change(database: Database) -> None:
    with pytest.raises(_Boom), database.session() as session:
        create_api_key(session, Role.AUDITOR, pepper=b"p")
        enqueue(session, _opening(1))
        raise _Boom
    with database.session() as session:
        assert session.exec(select(ApiKey)).all() == []
        assert session.exec(select(OutboxItem)).all() == []


def test_enqueue_same_key_and_payload_again_returns_the_first_row(database: Database) -> None:
    with database.session() as session:
        first = enqueue(session, _opening(1))
    with database.session() as session:
        again = enqueue(session, _opening(1))
        assert again.id == first.id
        assert len(session.exec(select(OutboxItem)).all()) == 1


def test_RevertWhen_same_business_key_carries_a_different_payload(database: Database) -> None:
    with database.session() as session:
        enqueue(session, _opening(1, limit_fen=100))
    with pytest.raises(ConflictError) as caught, database.session() as session:
        enqueue(session, _opening(1, limit_fen=200))
    assert caught.value.code == "outbox_conflict"
    assert caught.value.field == "business_key"


def test_core_enqueue_joins_the_callers_transaction(database: Database) -> None:
    with pytest.raises(_Boom), database.engine.begin() as conn:
        enqueue_core(conn, [_opening(1), _opening(2)])
        raise _Boom
    with database.engine.begin() as conn:
        enqueue_core(conn, [_opening(3), _opening(4)])
    with database.session() as session:
        keys = sorted(row.business_key for row in session.exec(select(OutboxItem)))
    assert keys == sorted([_opening(3).business_key, _opening(4).business_key])


def test_async_enqueue_joins_the_callers_transaction(database: Database) -> None:
    async def scenario() -> None:
        async with database.async_engine.begin() as conn:
            await enqueue_async(conn, [_opening(5)])
        with pytest.raises(_Boom):
            async with database.async_engine.begin() as conn:
                await enqueue_async(conn, [_opening(6)])
                raise _Boom
        await database.dispose_async()

    asyncio.run(scenario())
    with database.session() as session:
        keys = [row.business_key for row in session.exec(select(OutboxItem))]
    assert keys == [_opening(5).business_key]


def test_core_enqueue_of_a_duplicate_key_fails_the_transaction(database: Database) -> None:
    with database.engine.begin() as conn:
        enqueue_core(conn, [_opening(1)])
    with pytest.raises(sa.exc.IntegrityError), database.engine.begin() as conn:
        enqueue_core(conn, [_opening(1)])


def test_depth_by_status_counts_each_kind_and_status(database: Database) -> None:
    with database.session() as session:
        for number in range(3):
            enqueue(session, _opening(number + 1))
        enqueue(session, PartnerRegistration(partner_id=7, role=1, payout="0x" + "ab" * 20))
        row = fetch_item(session, _opening(1).business_key)
        assert row is not None
        row.status = OutboxStatus.PARKED.value
        session.add(row)
    with database.session() as session:
        depth = fetch_depth_by_status(session)
    assert depth == {
        "agreement_open": {"parked": 1, "pending": 2},
        "partner_register": {"pending": 1},
    }


def test_RevertWhen_agreement_id_is_not_32_bytes() -> None:
    bad = AgreementOpening(
        agreement_id=b"\x01" * 31,
        borrower_ref=b"\x02" * 32,
        terms_hash=b"\x03" * 32,
        product_code=1,
        limit_fen=1,
        apr_bps=1,
        opened_at=1,
    )
    with pytest.raises(CreditNetValueError) as caught:
        bad.to_payload()
    assert caught.value.field == "agreement_id"


def test_RevertWhen_limit_is_negative() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        _opening(1, limit_fen=-1).to_payload()
    assert caught.value.field == "limit_fen"


def test_RevertWhen_change_has_both_or_neither_of_limit_and_status() -> None:
    agreement_id = b"\x01" * 32
    with pytest.raises(CreditNetValueError):
        AgreementChange(agreement_id, 1, 0).to_payload()
    with pytest.raises(CreditNetValueError):
        AgreementChange(agreement_id, 1, 0, new_limit_fen=5, new_status=2).to_payload()


def test_change_business_key_is_per_agreement_and_sequence() -> None:
    limit = AgreementChange(b"\x01" * 32, 1, 9, new_limit_fen=5)
    status = AgreementChange(b"\x01" * 32, 2, 9, new_status=2)
    assert limit.business_key != status.business_key
    assert limit.to_payload()["change"] == "limit"
    assert status.to_payload()["change"] == "status"


def test_cycle_and_line_state_payloads_are_plain_json() -> None:
    proposal = CycleProposal(
        cycle_id=20250131,
        entries_root=b"\x11" * 32,
        entry_count=4,
        partner_ids=[1, 2],
        net_positions_fen=[-500, 500],
        signatures=[b"\x01" * 65],
    )
    payload = proposal.to_payload()
    assert payload["signatures"] == ["0x" + "01" * 65]
    assert payload["net_positions_fen"] == [-500, 500]
    line_state = LineStateCommitment(20250131, b"\x22" * 32, 10, 1_000, [b"\x02" * 65])
    assert line_state.business_key == "line_state:20250131"
    assert line_state.to_payload()["signatures"] == ["0x" + "02" * 65]
    with pytest.raises(CreditNetValueError):
        LineStateCommitment(20250131, b"\x22" * 32, 10, 1_000, []).to_payload()
    with pytest.raises(CreditNetValueError):
        CycleProposal(1, b"\x11" * 32, 1, [1], [1, -1], []).to_payload()
