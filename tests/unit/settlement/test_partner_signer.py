"""A partner's own signer signs a cycle report only when its partner's entries, fetched
from the lender's node, prove against the report, sum to the partner's position and are
what the signer recorded the first time it saw the cycle; a lender that serves other
entries later is refused, across restarts. The node here is a fake over
httpx.MockTransport serving the partner API as the real one does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from node_api.http.signer_app import create_signer_app
from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import ConfigurationError
from oracles.eip712 import recover_signer
from oracles.signers import (
    CycleReport,
    LineStateReport,
    RemoteSigner,
    ReportRefusedError,
    SigningDomain,
)
from settlement.entries import SettlementEntry
from settlement.netting import ClosedCycle, close_cycle
from settlement.partner_signer import (
    QUORUM_SIGNERS,
    PartnerSigner,
    PublishedDeployment,
    SignerStore,
    check_deployment,
    connect_partner_api,
    fetch_partner_identity,
    recorded_cycle_table,
    refused_report_table,
    signed_report_table,
)
from settlement.proofs import to_json
from settlement.salts import LeafSalts
from settlement.verify_core import ProvenEntry

CYCLE = 20250602
LENDER, BANK, APP = 1, 2, 3
SALTS = LeafSalts(b"test-partner-signer-leaf-salt-secret")
DOMAIN = SigningDomain(
    31337,
    "0x00000000000000000000000000000000000000c1",
    "0x00000000000000000000000000000000000000c2",
)
ROWS = [
    (1, BANK, EntryKind.PRINCIPAL_FUNDED, -70_000),
    (2, LENDER, EntryKind.PRINCIPAL_FUNDED, 70_000),
    (3, BANK, EntryKind.PRINCIPAL_FUNDED, -35_000),
    (4, LENDER, EntryKind.PRINCIPAL_FUNDED, 35_000),
    (5, APP, EntryKind.CHANNEL_COMMISSION, 1_200),
    (6, LENDER, EntryKind.CHANNEL_COMMISSION, -1_200),
    (7, BANK, EntryKind.INTEREST_SHARE, 450),
    (8, LENDER, EntryKind.INTEREST_SHARE, -450),
]


def make_cycle(rows: list[tuple[int, int, EntryKind, int]], cycle_id: int = CYCLE) -> ClosedCycle:
    entries = [
        SettlementEntry(
            cycle_id, entry_id, partner, kind, amount, SALTS.salt(cycle_id, entry_id, partner)
        )
        for entry_id, partner, kind, amount in rows
    ]
    return close_cycle(cycle_id, entries)


def moved(
    rows: list[tuple[int, int, EntryKind, int]], fen: int
) -> list[tuple[int, int, EntryKind, int]]:
    """The lender's rewrite: `fen` moves from the bank's first entry to the lender's."""
    return [
        (
            entry_id,
            partner,
            kind,
            amount - fen if entry_id == 1 else amount + fen if entry_id == 2 else amount,
        )
        for entry_id, partner, kind, amount in rows
    ]


@dataclass
class FakeNode:
    """The partner API of a lender's node for one partner key, from closed cycles."""

    partner_id: int
    cycles: dict[int, ClosedCycle] = field(default_factory=dict)
    dropped: set[int] = field(default_factory=set)
    """Entry ids the node leaves out of what it serves."""
    requests: list[str] = field(default_factory=list)

    def publish(self, cycle: ClosedCycle) -> None:
        self.cycles[cycle.cycle_id] = cycle

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer cn_partner_test_key"
        path = request.url.path
        self.requests.append(path)
        if path == "/v1/partner/leaf-secret":
            secret = SALTS.partner_secret(self.partner_id)
            return httpx.Response(
                200, json={"partner_id": self.partner_id, "leaf_secret": "0x" + secret.hex()}
            )
        if path == "/v1/partner/cycles":
            listed = [
                self._view(cycle) for cycle in self.cycles.values() if self._has_position(cycle)
            ]
            return httpx.Response(200, json=listed)
        parts = path.split("/")
        if path.startswith("/v1/partner/cycles/") and path.endswith("/entries.ndjson"):
            cycle = self.cycles.get(int(parts[4].removesuffix("/entries.ndjson")))
            if cycle is None or not self._has_position(cycle):
                return httpx.Response(404, json={"detail": "you have no position"})
            return httpx.Response(200, content=self._ndjson(cycle))
        return httpx.Response(404, json={"detail": "no such route"})

    def _has_position(self, cycle: ClosedCycle) -> bool:
        return self.partner_id in cycle.partner_ids

    def _view(self, cycle: ClosedCycle) -> dict[str, Any]:
        return {
            "cycle_id": cycle.cycle_id,
            "state": "closed",
            "entries_root": "0x" + cycle.root.hex(),
            "partner_id": self.partner_id,
            "net_position_fen": cycle.net_position_of(self.partner_id),
            "entry_count": sum(1 for e in cycle.entries if e.partner_id == self.partner_id),
        }

    def _ndjson(self, cycle: ClosedCycle) -> bytes:
        header = {**self._view(cycle), "kinds": {kind.name: int(kind) for kind in EntryKind}}
        lines = [json.dumps(header)]
        for entry in cycle.entries:
            if entry.partner_id == self.partner_id and entry.entry_id not in self.dropped:
                proven = ProvenEntry(entry, tuple(cycle.proof_for_entry(entry.entry_id)))
                lines.append(json.dumps(to_json(proven)))
        return ("\n".join(lines) + "\n").encode()


ACCOUNT: LocalAccount = Account.from_key(b"\x42" * 32)


@dataclass
class Partner:
    """A partner's signer against the fake node, with its own database file."""

    node: FakeNode
    db_dir: Path
    signer: PartnerSigner
    store: SignerStore

    def restart(self) -> Partner:
        """A new process: the same data folder, a fresh signer and HTTP client."""
        self.store.close()
        return start_partner(self.node, self.db_dir)

    def count(self, table: Any) -> int:
        with self.store.database.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def start_partner(node: FakeNode, db_dir: Path, *, salts: bool = True) -> Partner:
    client = connect_partner_api(
        "http://lender.test", "cn_partner_test_key", transport=httpx.MockTransport(node.handle)
    )
    identity = fetch_partner_identity(client)
    store = SignerStore.open(db_dir, partner_id=node.partner_id, signer_address=ACCOUNT.address)
    signer = PartnerSigner(
        ACCOUNT,
        partner_id=identity.partner_id,
        node=client,
        domain=DOMAIN,
        store=store,
        salts=identity.salts if salts else None,
    )
    return Partner(node, db_dir, signer, store)


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Partner]:
    node = FakeNode(BANK)
    node.publish(make_cycle(ROWS))
    partner = start_partner(node, tmp_path / "bank-signer")
    yield partner
    partner.store.close()


def refusal(partner: Partner, report: CycleReport) -> str:
    with pytest.raises(ReportRefusedError) as refused:
        partner.signer.sign_cycle_report(report)
    return refused.value.detail


def test_it_signs_a_consistent_report_and_keeps_a_row_of_it(bank: Partner) -> None:
    report = bank.node.cycles[CYCLE].report

    signature = bank.signer.sign_cycle_report(report)

    assert recover_signer(DOMAIN.digest_cycle_report(report), signature) == ACCOUNT.address
    assert bank.count(signed_report_table) == 1
    assert bank.count(recorded_cycle_table) == 1
    assert bank.signer.sign_cycle_report(report) == signature  # a retry signs the same, once
    assert bank.count(signed_report_table) == 1


def test_it_refuses_a_report_whose_root_its_entries_do_not_prove(bank: Partner) -> None:
    report = replace(bank.node.cycles[CYCLE].report, entries_root=b"\x07" * 32)

    reason = refusal(bank, report)

    assert reason == f"entry 1 of cycle {CYCLE} does not prove against the entries root"
    assert bank.count(signed_report_table) == 0
    assert bank.count(refused_report_table) == 1
    assert bank.count(recorded_cycle_table) == 0  # nothing unproven is recorded


def test_it_refuses_when_the_entries_do_not_sum_to_the_position(bank: Partner) -> None:
    report = bank.node.cycles[CYCLE].report
    bank.node.dropped = {7}  # the node keeps the bank's interest entry back

    reason = refusal(bank, report)

    position = bank.node.cycles[CYCLE].net_position_of(BANK)
    assert reason == (
        f"the 2 entries of partner {BANK} in cycle {CYCLE} sum to {position - 450} fen, "
        f"not to its net position of {position} fen"
    )


def test_a_partner_absent_from_the_report_must_have_no_entries(bank: Partner) -> None:
    cycle = bank.node.cycles[CYCLE]
    index = cycle.partner_ids.index(BANK)
    hidden = replace(
        cycle.report,
        partner_ids=cycle.partner_ids[:index] + cycle.partner_ids[index + 1 :],
        net_positions_fen=cycle.net_positions_fen[:index] + cycle.net_positions_fen[index + 1 :],
    )
    assert "lists no position for partner 2, but the node serves 3 entries" in refusal(bank, hidden)

    others = make_cycle(
        [
            (1, APP, EntryKind.CHANNEL_COMMISSION, 1_200),
            (2, LENDER, EntryKind.CHANNEL_COMMISSION, -1_200),
        ],
        cycle_id=CYCLE + 1,
    )
    bank.node.publish(others)
    assert bank.signer.sign_cycle_report(others.report)  # nothing of the bank's to check


def test_it_refuses_a_rewrite_of_entries_it_recorded_before_the_signing_request(
    bank: Partner, tmp_path: Path
) -> None:
    assert bank.signer.record_new_cycles() == [CYCLE]
    assert bank.signer.record_new_cycles() == []
    rewritten = make_cycle(moved(ROWS, 1_000))
    bank.node.publish(rewritten)  # the lender rewrites the frozen cycle, consistently

    reason = refusal(bank, rewritten.report)

    assert reason == (
        f"entry 1 of cycle {CYCLE} differs from the entry recorded when this signer first "
        "saw the cycle"
    )
    assert bank.count(signed_report_table) == 0
    # The rewrite is consistent: only the record tells it apart. A signer that never saw
    # the cycle before signs it.
    fresh = start_partner(bank.node, tmp_path / "fresh-signer")
    assert fresh.signer.sign_cycle_report(rewritten.report)
    fresh.store.close()


def test_it_refuses_a_root_changed_elsewhere_after_recording(bank: Partner) -> None:
    bank.signer.record_new_cycles()
    others_moved = [
        (entry_id, partner, kind, amount + (-500 if entry_id == 5 else 500 if entry_id == 6 else 0))
        for entry_id, partner, kind, amount in ROWS
    ]
    rewritten = make_cycle(others_moved)  # the bank's own entries are untouched
    bank.node.publish(rewritten)

    assert refusal(bank, rewritten.report) == (
        f"the entries root of cycle {CYCLE} differs from the root this signer recorded when it "
        "first saw the cycle"
    )


def test_it_keeps_its_record_across_restarts(bank: Partner) -> None:
    original = bank.node.cycles[CYCLE]
    bank.signer.sign_cycle_report(original.report)
    restarted = bank.restart()
    rewritten = make_cycle(moved(ROWS, 1_000))
    restarted.node.publish(rewritten)

    assert "entry 1 of cycle" in refusal(restarted, rewritten.report)
    assert restarted.count(signed_report_table) == 1
    restarted.node.publish(original)
    assert restarted.signer.sign_cycle_report(original.report)  # the honest one still signs
    restarted.store.close()

    with pytest.raises(ConfigurationError, match="records for partner 2"):
        SignerStore.open(bank.db_dir, partner_id=APP, signer_address=ACCOUNT.address)


def test_it_refuses_entries_whose_salt_is_not_the_partners(bank: Partner) -> None:
    foreign = LeafSalts(b"another node secret")
    entries = [
        SettlementEntry(
            CYCLE, entry_id, partner, kind, amount, foreign.salt(CYCLE, entry_id, partner)
        )
        for entry_id, partner, kind, amount in ROWS
    ]
    bank.node.publish(close_cycle(CYCLE, entries))

    reason = refusal(bank, bank.node.cycles[CYCLE].report)

    assert (
        reason
        == f"entry 1 of cycle {CYCLE} carries a salt not derived from this partner's leaf secret"
    )


def test_the_signer_app_serves_the_remote_signer_protocol(bank: Partner) -> None:
    app = create_signer_app(bank.signer)
    report = bank.node.cycles[CYCLE].report
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok", "address": ACCOUNT.address}
        remote = RemoteSigner("http://testserver", DOMAIN, client=client)
        assert remote.address == ACCOUNT.address
        assert (
            recover_signer(DOMAIN.digest_cycle_report(report), remote.sign_cycle_report(report))
            == ACCOUNT.address
        )

        bad = client.post(
            "/v1/signer/cycle-report", json={**report.to_json(), "entries_root": "0x" + "07" * 32}
        )
        assert bad.status_code == 409
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["code"] == "report_refused"
        assert bad.json()["entry_id"] == 1

        line_state = LineStateReport(CYCLE, b"\x01" * 32, 3, 123_456)
        refused = client.post("/v1/signer/line-state-report", json=line_state.to_json())
        assert refused.status_code == 409
        assert "checks cycle reports only" in refused.json()["detail"]
        assert client.post("/v1/signer/cycle-report", json={"cycle_id": 1}).status_code == 422


class FakeRpc:
    """eth_chainId and eth_call answers of a chain whose quorum has `signers`."""

    def __init__(self, quorum: str, signers: list[str]) -> None:
        self.quorum, self.signers = quorum, signers

    def call(self, method: str, params: list[Any]) -> str:
        from eth_abi.abi import encode

        if method == "eth_chainId":
            return hex(DOMAIN.chain_id)
        data = params[0]["data"]
        if data == "0x" + QUORUM_SIGNERS.selector.hex():
            return "0x" + encode(["address[]"], [self.signers]).hex()
        return "0x" + encode(["address"], [self.quorum]).hex()


def test_it_refuses_to_start_unless_the_chain_names_it_a_quorum_signer() -> None:
    quorum = "0x00000000000000000000000000000000000000Aa"
    deployment = PublishedDeployment(
        DOMAIN.chain_id, DOMAIN.clearing_house, DOMAIN.credit_registry, quorum
    )
    other = Account.from_key(b"\x43" * 32).address

    rpc: Any = FakeRpc(quorum, [other, ACCOUNT.address])
    assert check_deployment(rpc, deployment, ACCOUNT.address) == DOMAIN
    with pytest.raises(ConfigurationError, match=r"is not one of the OracleQuorum's 1 signers"):
        check_deployment(FakeRpc(quorum, [other]), deployment, ACCOUNT.address)  # type: ignore[arg-type]
    elsewhere = replace(deployment, oracle_quorum="0x00000000000000000000000000000000000000bB")
    with pytest.raises(ConfigurationError, match=r"oracleQuorum\(\) is .*not the OracleQuorum"):
        check_deployment(rpc, elsewhere, ACCOUNT.address)
