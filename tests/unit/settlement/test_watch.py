"""The watcher's pieces: it reads server-sent events as the standard says, judges a
proposal by everything but finality, disputes only on entries that do not prove or do not
sum, prints one line per cycle, and keeps its state in a file a restart can trust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import ChainError, CreditNetValueError
from settlement import watch
from settlement.verifier import EntrySource, VerifyOutcome
from settlement.verify_core import EntryFailure, FailureReason, VerificationReport
from settlement.watch import (
    CycleCheck,
    ProposalChecker,
    SseMessage,
    SseParser,
    WatchConfig,
    WatchState,
    has_dispute_grounds,
    judge_as_proposed,
)


def test_the_parser_follows_the_event_stream_format() -> None:
    lines = [
        "retry: 2000",
        "",
        ": heartbeat",
        "",
        "event: cycle",
        'data: {"a":',
        "data:1}",
        "id: 1.2.3",
        "",
        "data: no event name, same id",
        "",
        "id: 4.5.6",
        "",  # an id alone dispatches nothing but moves the cursor
        "event: cycle",
        "id",  # a field without a colon has an empty value
        "data: x",
        "",
    ]
    parser = SseParser()
    messages = list(parser.messages(lines))
    assert messages == [
        SseMessage("cycle", '{"a":\n1}', "1.2.3"),
        SseMessage("message", "no event name, same id", "1.2.3"),
        SseMessage("cycle", "x", ""),
    ]
    assert parser.retry_ms == 2000
    assert json.loads(messages[0].data) == {"a": 1}


def _outcome(
    *,
    failures: tuple[EntryFailure, ...] = (),
    proven_total_fen: int = -500,
    status: CycleStatus = CycleStatus.PROPOSED,
    unreadable: tuple[str, ...] = (),
    stated_root_matches: bool = True,
) -> VerifyOutcome:
    report = VerificationReport(
        partner_id=2,
        cycle_id=20250303,
        cycle_status=status,
        entry_count=3,
        proven_count=3 - len(failures),
        proven_total_fen=proven_total_fen,
        net_position_fen=-500,
        failures=failures,
    )
    return VerifyOutcome(
        report=report,
        chain_status=status,
        chain_root=b"\x01" * 32,
        contract_rejected=(),
        unreadable=unreadable,
        stated_root_matches=stated_root_matches,
    )


def test_a_proposal_is_judged_on_everything_but_finality() -> None:
    honest = _outcome()
    assert not honest.ok  # as `creditnet verify` says: not final yet
    judged = judge_as_proposed(honest)
    assert judged.ok and judged.chain_status is CycleStatus.PROPOSED
    assert not has_dispute_grounds(honest)
    funded = _outcome(status=CycleStatus.FUNDED)
    assert judge_as_proposed(funded) is funded

    altered = _outcome(failures=(EntryFailure(7, FailureReason.NOT_IN_ROOT),))
    short = _outcome(proven_total_fen=-499)
    refused = _outcome(unreadable=("download refused by the lender: HTTP 409",))
    for failing in (altered, short, refused):
        assert not judge_as_proposed(failing).ok
        assert has_dispute_grounds(failing)
    restated = _outcome(stated_root_matches=False)  # the entries prove: no ground to dispute
    assert not judge_as_proposed(restated).ok and not has_dispute_grounds(restated)


def test_one_line_per_cycle_says_ok_or_fail_with_the_reasons_and_the_dispute() -> None:
    ok = CycleCheck(20250303, True, (), "3 entries prove")
    assert ok.line() == "OK cycle 20250303: 3 entries prove" and ok.verdict == "ok"
    failed = CycleCheck(20250304, False, ("entry 7 (X, 1 fen): does not prove", "sum gap"), "")
    assert failed.line() == "FAIL cycle 20250304: entry 7 (X, 1 fen): does not prove; sum gap"
    assert failed.verdict == "fail"
    disputed = CycleCheck(20250304, False, ("sum gap",), "", disputed_tx="0xab")
    assert disputed.line().endswith("; disputed in 0xab") and disputed.verdict == "disputed 0xab"
    late = CycleCheck(20250304, False, ("sum gap",), "", not_disputed="window closed")
    assert late.line().endswith("; not disputed: window closed")


def test_the_state_file_round_trips_and_belongs_to_one_partner(tmp_path: Path) -> None:
    path = tmp_path / "watch.json"
    assert WatchState.load(path, 2) == WatchState(2)
    assert WatchState.load(None, 2) == WatchState(2)
    state = WatchState(2, "17.1751328000000000.20250630", {20250630: "ok", 20250701: "fail"})
    state.save(path)
    assert WatchState.load(path, 2) == state
    assert not path.with_name("watch.json.tmp").exists()
    with pytest.raises(CreditNetValueError, match="partner 2's state"):
        WatchState.load(path, 3)
    path.write_text("{not json")
    with pytest.raises(CreditNetValueError, match="not a watch state file"):
        WatchState.load(path, 2)


def test_a_lender_refusing_the_entries_is_retried_then_fails_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> EntrySource:
        raise CreditNetValueError("partner API answered HTTP 409: entry_tree_mismatch")

    monkeypatch.setattr(watch, "download_entries", refuse)
    config = WatchConfig("http://127.0.0.1:1", "cn_key", 2, "http://127.0.0.1:1", "0x" + "00" * 20)
    checker = ProposalChecker(config)
    try:
        for _ in range(watch.DOWNLOAD_ATTEMPTS - 1):
            with pytest.raises(ChainError, match="refused the entries of cycle 20250303"):
                checker._fetch_entries(20250303)
        source = checker._fetch_entries(20250303)
    finally:
        checker.close()
    assert source.entries == []
    assert source.unreadable == ["download refused by the lender: partner API answered HTTP 409: "
                                 "entry_tree_mismatch"]  # fmt: skip
