"""A funding partner's (or an auditor's) own oracle signer, run on its own machine.

The lender's node asks every signer of the OracleQuorum to sign each cycle report
(`oracles.signers`, remote signer protocol). This signer holds one key of its own
(`keystore/` in its data folder), reads the lender's node only through the partner API
with its partner's key, and keeps its own record in its own SQLite database
(`signer.db` in its data folder, never the lender's). It signs a `CycleReport` only when:

1. its partner's entries and proofs, fetched from the node for that cycle, all prove
   against the report's `entries_root` (salted leaves, `settlement.verify_core`), carry
   the salts derived from the partner's own leaf secret, and sum exactly to the partner's
   net position in the report; a partner the report does not list must have no entries;
2. those entries, and the root, are exactly what this signer recorded the first time it
   saw the cycle. The first sighting is stored; a lender that later serves other entries
   for the same cycle id is refused. `record_new_cycles` polls the node's list of the
   partner's cycles and records each new one as soon as the node shows it, so the record
   predates the signing request. A frozen cycle never changes in the books (a date
   settled again gets a new cycle id, `attempt * 10**8 + yyyymmdd`), so any change is a
   rewrite.

Everything it signs is kept as a row (`signed_report`), and each refused report with its
first reason (`refused_report`). A refusal raises `ReportRefusedError` (HTTP 409 at the
signer's API) naming the cycle and the entry, never personal data.

Line-state reports are refused: the node publishes a cycle's line state only after the
quorum has signed it (`GET /v1/agreements/{id}/line-state`, one agreement at a time), so
there is nothing independent of the report to check it against when it is to be signed.

`fetch_deployment` and `check_deployment` tie the signer to the chain before it serves:
the contracts the node names (`GET /v1/contracts`) must be what the chain shows (chain
id, the ClearingHouse's and the CreditRegistry's `oracleQuorum()`), and this signer must
be one of the OracleQuorum's `signers()`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import httpx
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_hex_address, to_checksum_address
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from node_api.kernel.chain import ContractName, CycleStatus, EntryKind
from node_api.kernel.db import Database
from node_api.kernel.errors import ChainError, ConfigurationError, CreditNetValueError
from node_api.kernel.money import FEN_ZERO, Fen
from oracles.eip712 import sign_digest
from oracles.keystore import load_keystore, load_or_create_signers
from oracles.signers import CycleReport, LineStateReport, ReportRefusedError, SigningDomain
from oracles.tx_sender import JsonRpcClient, RpcFailure
from settlement.clearing_calls import Call
from settlement.entries import SettlementEntry
from settlement.partners import get_utc_now
from settlement.salts import PartnerSalts
from settlement.verifier import EntrySource, parse_entries
from settlement.verify_core import FailureReason, verify_partner_entries

logger = logging.getLogger(__name__)

SIGNER_DB_NAME: Final = "signer.db"
KEYSTORE_DIR_NAME: Final = "keystore"
CYCLE_LIST_LIMIT: Final = 100
CYCLE_KIND: Final = "cycle"
LINE_STATE_KIND: Final = "line_state"

_REASON_TEXT: Final = {
    FailureReason.WRONG_CYCLE: "belongs to another cycle",
    FailureReason.WRONG_PARTNER: "belongs to another partner",
    FailureReason.DUPLICATE_ENTRY: "is served twice",
    FailureReason.MALFORMED_PROOF: "has a malformed proof",
    FailureReason.NOT_IN_ROOT: "does not prove against the entries root",
}


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


# --- keys ------------------------------------------------------------------------------


def create_signer_key(data_dir: Path, password: str) -> LocalAccount:
    """The signer's key in `data_dir/keystore`, created on first call (encrypted with
    `password`); later calls load the same key."""
    if not password:
        raise ConfigurationError("the signer's keystore password is empty")
    return load_or_create_signers(data_dir / KEYSTORE_DIR_NAME, 1, password)[0]


def load_signer_key(data_dir: Path, password: str) -> LocalAccount:
    """The signer's key from `data_dir/keystore`; ConfigurationError when there is none."""
    paths = sorted((data_dir / KEYSTORE_DIR_NAME).glob("signer-*.json"))
    if not paths:
        raise ConfigurationError(
            f"no signer key in {data_dir / KEYSTORE_DIR_NAME}: run `creditnet signer init` first"
        )
    return load_keystore(paths[0], password)


# --- the signer's own database ---------------------------------------------------------

signer_metadata = MetaData()

signer_identity_table = Table(
    "signer_identity",
    signer_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("partner_id", BigInteger, nullable=False),
    Column("signer_address", String(42), nullable=False),
    Column("created_at", DateTime, nullable=False),
)
"""The one partner and key this database records for (a data folder serves one)."""

recorded_cycle_table = Table(
    "recorded_cycle",
    signer_metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("entries_root", String(66), nullable=False),
    Column("net_position_fen", BigInteger, nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("recorded_at", DateTime, nullable=False),
)
"""The first sighting of each cycle: its root and the partner's position and entry count."""

recorded_entry_table = Table(
    "recorded_entry",
    signer_metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_id", BigInteger, primary_key=True, autoincrement=False),
    Column("partner_id", BigInteger, nullable=False),
    Column("kind", Integer, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("salt", String(66), nullable=False),
)
"""The partner's entries of each recorded cycle, as first served."""

signed_report_table = Table(
    "signed_report",
    signer_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_kind", String(16), nullable=False),
    Column("cycle_id", BigInteger, nullable=False),
    Column("digest", String(66), nullable=False),
    Column("report_json", Text, nullable=False),
    Column("signature", String(132), nullable=False),
    Column("signed_at", DateTime, nullable=False),
    UniqueConstraint("report_kind", "digest"),
)
"""Every report this signer signed, once per digest (a retried request signs the same)."""

refused_report_table = Table(
    "refused_report",
    signer_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_kind", String(16), nullable=False),
    Column("cycle_id", BigInteger, nullable=False),
    Column("digest", String(66), nullable=False),
    Column("reason", Text, nullable=False),
    Column("refused_at", DateTime, nullable=False),
    UniqueConstraint("report_kind", "digest"),
)
"""Every report this signer refused, once per digest, with the first reason."""


@dataclass(frozen=True, slots=True)
class RecordedCycle:
    """A cycle as this signer first saw it: the root and its partner's entries."""

    cycle_id: int
    entries_root: bytes
    net_position_fen: Fen
    entries: tuple[SettlementEntry, ...]


def _entry_of(cycle_id: int, row: RowMapping) -> SettlementEntry:
    return SettlementEntry(
        cycle_id,
        int(row["entry_id"]),
        int(row["partner_id"]),
        EntryKind(int(row["kind"])),
        Fen(int(row["amount_fen"])),
        bytes.fromhex(str(row["salt"])[2:]),
    )


class SignerStore:
    """The signer's own SQLite database (`signer.db` in its data folder; tables are created
    on open). It records for one partner and one signer key only."""

    def __init__(self, path: Path, *, partner_id: int, signer_address: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.database = Database(f"sqlite:///{path}")
        signer_metadata.create_all(self.database.engine)
        self._check_identity(partner_id, signer_address)

    @classmethod
    def open(cls, data_dir: Path, *, partner_id: int, signer_address: str) -> SignerStore:
        return cls(data_dir / SIGNER_DB_NAME, partner_id=partner_id, signer_address=signer_address)

    def close(self) -> None:
        self.database.dispose()

    def _check_identity(self, partner_id: int, signer_address: str) -> None:
        with self.database.engine.begin() as conn:
            row = conn.execute(select(signer_identity_table)).first()
            if row is None:
                conn.execute(
                    signer_identity_table.insert().values(
                        id=1,
                        partner_id=partner_id,
                        signer_address=signer_address,
                        created_at=get_utc_now(),
                    )
                )
                return
        recorded_partner, recorded_address = int(row.partner_id), str(row.signer_address)
        if (recorded_partner, recorded_address.lower()) != (partner_id, signer_address.lower()):
            raise ConfigurationError(
                f"{self.path} records for partner {recorded_partner} with signer "
                f"{recorded_address}, not partner {partner_id} with {signer_address}"
            )

    def fetch_recorded(self, cycle_id: int) -> RecordedCycle | None:
        """The record of `cycle_id`, or None when this signer never saw it."""
        with self.database.engine.connect() as conn:
            row = (
                conn.execute(
                    select(recorded_cycle_table).where(recorded_cycle_table.c.cycle_id == cycle_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            entries = tuple(
                _entry_of(cycle_id, entry)
                for entry in conn.execute(
                    select(recorded_entry_table)
                    .where(recorded_entry_table.c.cycle_id == cycle_id)
                    .order_by(recorded_entry_table.c.entry_id)
                ).mappings()
            )
        return RecordedCycle(
            cycle_id=cycle_id,
            entries_root=bytes.fromhex(str(row["entries_root"])[2:]),
            net_position_fen=Fen(int(row["net_position_fen"])),
            entries=entries,
        )

    def recorded_cycle_ids(self) -> set[int]:
        with self.database.engine.connect() as conn:
            ids = conn.execute(select(recorded_cycle_table.c.cycle_id)).scalars()
            return {int(cycle_id) for cycle_id in ids}

    def record_first(
        self, cycle_id: int, root: bytes, net_position_fen: Fen, entries: Sequence[SettlementEntry]
    ) -> tuple[RecordedCycle, bool]:
        """Store this sighting of `cycle_id` unless one is stored already; returns the stored
        record and whether it is the one just written."""
        existing = self.fetch_recorded(cycle_id)
        if existing is not None:
            return existing, False
        rows = [
            {
                "cycle_id": cycle_id,
                "entry_id": entry.entry_id,
                "partner_id": entry.partner_id,
                "kind": int(entry.kind),
                "amount_fen": entry.amount_fen,
                "salt": _hex(entry.salt),
            }
            for entry in entries
        ]
        try:
            with self.database.engine.begin() as conn:
                conn.execute(
                    recorded_cycle_table.insert().values(
                        cycle_id=cycle_id,
                        entries_root=_hex(root),
                        net_position_fen=net_position_fen,
                        entry_count=len(rows),
                        recorded_at=get_utc_now(),
                    )
                )
                if rows:
                    conn.execute(recorded_entry_table.insert(), rows)
        except IntegrityError:  # recorded meanwhile by another process: the first stands
            found = self.fetch_recorded(cycle_id)
            assert found is not None
            return found, False
        ordered = tuple(sorted(entries, key=lambda entry: entry.entry_id))
        return RecordedCycle(cycle_id, root, net_position_fen, ordered), True

    def log_signed(
        self, kind: str, cycle_id: int, digest: bytes, report: dict[str, Any], signature: bytes
    ) -> None:
        with self.database.engine.begin() as conn:
            conn.execute(
                sqlite_insert(signed_report_table)
                .values(
                    report_kind=kind,
                    cycle_id=cycle_id,
                    digest=_hex(digest),
                    report_json=json.dumps(report, sort_keys=True),
                    signature=_hex(signature),
                    signed_at=get_utc_now(),
                )
                .on_conflict_do_nothing()
            )

    def log_refused(self, kind: str, cycle_id: int, digest: bytes, reason: str) -> None:
        with self.database.engine.begin() as conn:
            conn.execute(
                sqlite_insert(refused_report_table)
                .values(
                    report_kind=kind,
                    cycle_id=cycle_id,
                    digest=_hex(digest),
                    reason=reason,
                    refused_at=get_utc_now(),
                )
                .on_conflict_do_nothing()
            )


# --- the lender's node, as the partner API shows it ------------------------------------


def connect_partner_api(
    node_url: str,
    api_key: str,
    *,
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An HTTP client of the lender's node authenticated with the partner's API key (the
    key goes in the `Authorization` header only, never in a URL or a log line)."""
    return httpx.Client(
        base_url=node_url.rstrip("/"),
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout_s,
        transport=transport,
    )


@dataclass(frozen=True)
class PartnerIdentity:
    """Whose key the signer holds, and that partner's leaf secret (never logged)."""

    partner_id: int
    salts: PartnerSalts


def fetch_partner_identity(node: httpx.Client) -> PartnerIdentity:
    """The partner the API key belongs to, and its leaf secret (`/v1/partner/leaf-secret`)."""
    body = _get_json(node, "/v1/partner/leaf-secret")
    try:
        secret = bytes.fromhex(str(body["leaf_secret"]).removeprefix("0x"))
        return PartnerIdentity(int(body["partner_id"]), PartnerSalts(secret))
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError("the node's leaf-secret answer is malformed") from None


@dataclass(frozen=True)
class PublishedDeployment:
    """What the node says the deployment is (`GET /v1/contracts`)."""

    chain_id: int
    clearing_house: str
    credit_registry: str
    oracle_quorum: str

    @property
    def domain(self) -> SigningDomain:
        return SigningDomain(self.chain_id, self.clearing_house, self.credit_registry)


def _get_json(node: httpx.Client, path: str) -> Any:
    try:
        response = node.get(path)
    except httpx.HTTPError as error:
        raise ChainError(
            f"the node at {node.base_url} is unreachable: {type(error).__name__}"
        ) from None
    if response.status_code != 200:
        raise ConfigurationError(f"the node answered GET {path} with HTTP {response.status_code}")
    return response.json()


def fetch_deployment(node: httpx.Client) -> PublishedDeployment:
    """The chain id and contract addresses the node publishes."""
    body = _get_json(node, "/v1/contracts")
    addresses = {str(item.get("name")): item.get("address") for item in body.get("contracts") or []}
    wanted = (ContractName.CLEARING_HOUSE, ContractName.CREDIT_REGISTRY, ContractName.ORACLE_QUORUM)
    found = [addresses.get(name.value) for name in wanted]
    chain_id = body.get("chain_id")
    if not isinstance(chain_id, int) or not all(
        isinstance(address, str) and is_hex_address(address) for address in found
    ):
        raise ConfigurationError("the node publishes no deployed contracts (GET /v1/contracts)")
    clearing_house, credit_registry, quorum = (to_checksum_address(str(a)) for a in found)
    return PublishedDeployment(chain_id, clearing_house, credit_registry, quorum)


ORACLE_QUORUM_OF: Final = Call("oracleQuorum()", ("address",))
QUORUM_SIGNERS: Final = Call("signers()", ("address[]",))


def _call(rpc: JsonRpcClient, to: str, call: Call) -> tuple[Any, ...]:
    result = rpc.call("eth_call", [{"to": to, "data": _hex(call.encode())}, "latest"])
    if isinstance(result, RpcFailure):
        raise ChainError(f"{call.signature} on {to} failed: {result.message}")
    try:
        return call.decode(bytes.fromhex(str(result)[2:]))
    except (DecodingError, ValueError):
        raise ConfigurationError(f"{to} answers no {call.signature}: not the contract") from None


def check_deployment(
    rpc: JsonRpcClient, deployment: PublishedDeployment, signer_address: str
) -> SigningDomain:
    """The signing domain, once the chain confirms what the node published: the chain id,
    the quorum both verifying contracts use, and this signer among the quorum's signers.
    ConfigurationError (one line) otherwise."""
    chain_id = int(str(rpc.call("eth_chainId", [])), 16)
    if chain_id != deployment.chain_id:
        raise ConfigurationError(
            f"the chain at --rpc has id {chain_id}, the node publishes {deployment.chain_id}"
        )
    for name, address in (
        (ContractName.CLEARING_HOUSE, deployment.clearing_house),
        (ContractName.CREDIT_REGISTRY, deployment.credit_registry),
    ):
        (quorum,) = _call(rpc, address, ORACLE_QUORUM_OF)
        if str(quorum).lower() != deployment.oracle_quorum.lower():
            raise ConfigurationError(
                f"the {name.value}'s oracleQuorum() is {to_checksum_address(quorum)}, "
                f"not the OracleQuorum the node names ({deployment.oracle_quorum})"
            )
    (signers,) = _call(rpc, deployment.oracle_quorum, QUORUM_SIGNERS)
    if signer_address.lower() not in {str(address).lower() for address in signers}:
        raise ConfigurationError(
            f"this signer {signer_address} is not one of the OracleQuorum's {len(signers)} "
            f"signers at {deployment.oracle_quorum}"
        )
    return deployment.domain


# --- the signer --------------------------------------------------------------------------


class PartnerSigner:
    """One partner's signer (`oracles.signers.OracleSigner`): its own key, its partner's
    view of the node, its own record (module doc)."""

    def __init__(
        self,
        account: LocalAccount,
        *,
        partner_id: int,
        node: httpx.Client,
        domain: SigningDomain,
        store: SignerStore,
        salts: PartnerSalts | None = None,
    ) -> None:
        self._account = account
        self.partner_id = partner_id
        self._node = node
        self.domain = domain
        self.store = store
        self._salts = salts
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PartnerSigner({self.address}, partner {self.partner_id})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    # The OracleSigner protocol.

    def sign_cycle_report(self, report: CycleReport) -> bytes:
        """Sign `report` if the partner's entries prove, sum and match the record."""
        digest = self.domain.digest_cycle_report(report)
        try:
            with self._lock:
                self._check_cycle_report(report)
        except ReportRefusedError as refusal:
            self._log_refusal(CYCLE_KIND, report.cycle_id, digest, refusal)
            raise
        signature = sign_digest(self._account, digest)
        report_json: dict[str, Any] = dict(report.to_json())
        self.store.log_signed(CYCLE_KIND, report.cycle_id, digest, report_json, signature)
        logger.info(
            "report signed",
            extra={"signer": self.address, "cycle_id": report.cycle_id, "digest": _hex(digest)},
        )
        return signature

    def sign_line_state_report(self, report: LineStateReport) -> bytes:
        """Refused (module doc): nothing independent to check a line state against."""
        refusal = ReportRefusedError(
            f"line-state report for cycle {report.cycle_id} refused: this partner signer "
            "checks cycle reports only (the node publishes no line state before it is signed)",
            field="report",
            cycle_id=report.cycle_id,
        )
        digest = self.domain.digest_line_state_report(report)
        self._log_refusal(LINE_STATE_KIND, report.cycle_id, digest, refusal)
        raise refusal

    # The poll.

    def record_new_cycles(self) -> list[int]:
        """Record every cycle the node lists for the partner that this signer has not
        recorded yet (its entries checked against the node's stated root and position
        first); returns the ids recorded. A cycle that fails its check is logged, not
        recorded, and tried again next time."""
        listed = self._list_cycles()
        known = self.store.recorded_cycle_ids()
        recorded: list[int] = []
        listed_ids = {
            item["cycle_id"]: item for item in listed if isinstance(item.get("cycle_id"), int)
        }
        for cycle_id in sorted(listed_ids.keys() - known):
            try:
                with self._lock:
                    if self._record_listed(cycle_id, listed_ids[cycle_id]):
                        recorded.append(cycle_id)
            except ReportRefusedError as problem:
                self._not_recorded(cycle_id, problem.detail)
            except (KeyError, TypeError, ValueError) as error:
                self._not_recorded(cycle_id, f"malformed cycle listing: {type(error).__name__}")
        return recorded

    def _not_recorded(self, cycle_id: int, reason: str) -> None:
        logger.warning(
            "cycle not recorded",
            extra={"signer": self.address, "cycle_id": cycle_id, "reason": reason},
        )

    def _list_cycles(self) -> list[dict[str, Any]]:
        try:
            response = self._node.get("/v1/partner/cycles", params={"limit": CYCLE_LIST_LIMIT})
        except httpx.HTTPError as error:
            logger.warning(
                "node unreachable", extra={"signer": self.address, "error": type(error).__name__}
            )
            return []
        if response.status_code != 200:
            logger.warning(
                "node refused the cycle list",
                extra={"signer": self.address, "status": response.status_code},
            )
            return []
        body = response.json()
        return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []

    def _record_listed(self, cycle_id: int, item: dict[str, Any]) -> bool:
        root = bytes.fromhex(str(item["entries_root"]).removeprefix("0x"))
        position = Fen(int(item["net_position_fen"]))
        source = self._fetch_entries(cycle_id)
        if source is None:
            return False
        entries = self._check_served(cycle_id, root, position, None, source)
        _record, written = self.store.record_first(cycle_id, root, position, entries)
        if written:
            logger.info(
                "cycle recorded",
                extra={"signer": self.address, "cycle_id": cycle_id, "entries": len(entries)},
            )
        return written

    # The checks.

    def _refuse(
        self, detail: str, field: str, *, cycle_id: int, entry_id: int | None = None
    ) -> NoReturn:
        if entry_id is None:
            raise ReportRefusedError(detail, field=field, cycle_id=cycle_id)
        raise ReportRefusedError(detail, field=field, cycle_id=cycle_id, entry_id=entry_id)

    def _log_refusal(
        self, kind: str, cycle_id: int, digest: bytes, refusal: ReportRefusedError
    ) -> None:
        logger.warning(
            "report refused",
            extra={"signer": self.address, "cycle_id": cycle_id, "reason": refusal.detail},
        )
        self.store.log_refused(kind, cycle_id, digest, refusal.detail)

    def _fetch_entries(self, cycle_id: int) -> EntrySource | None:
        """The partner's entries of `cycle_id` with proofs as the node streams them; None
        when the node says the partner has no position in the cycle (HTTP 404)."""
        path = f"/v1/partner/cycles/{cycle_id}/entries.ndjson"
        try:
            with self._node.stream("GET", path) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    self._refuse(
                        f"the node does not serve the entries of cycle {cycle_id} "
                        f"(HTTP {response.status_code})",
                        "cycle_id",
                        cycle_id=cycle_id,
                    )
                return parse_entries(response.iter_lines())
        except httpx.HTTPError as error:
            self._refuse(
                f"the node is unreachable for the entries of cycle {cycle_id}: "
                f"{type(error).__name__}",
                "cycle_id",
                cycle_id=cycle_id,
            )

    def _check_served(
        self,
        cycle_id: int,
        root: bytes,
        position_fen: Fen,
        entry_count: int | None,
        source: EntrySource,
    ) -> list[SettlementEntry]:
        """The served entries, once they prove against `root`, carry the partner's salts,
        fit `entry_count` (the report's) and sum to `position_fen`; refused otherwise."""
        if source.unreadable:
            self._refuse(
                f"the node served an unreadable entry of cycle {cycle_id}: {source.unreadable[0]}",
                "entries",
                cycle_id=cycle_id,
            )
        checked = verify_partner_entries(
            partner_id=self.partner_id,
            cycle_id=cycle_id,
            root=root,
            net_position_fen=position_fen,
            cycle_status=CycleStatus.NONE,
            proven_entries=source.entries,
        )
        if checked.failures:
            failure = checked.failures[0]
            self._refuse(
                f"entry {failure.entry_id} of cycle {cycle_id} {_REASON_TEXT[failure.reason]}",
                "entries_root",
                cycle_id=cycle_id,
                entry_id=failure.entry_id,
            )
        entries = [proven.entry for proven in source.entries]
        for entry in entries:
            if entry_count is not None and entry.entry_id > entry_count:
                self._refuse(
                    f"entry {entry.entry_id} of cycle {cycle_id} is beyond the report's "
                    f"{entry_count} entries",
                    "entry_count",
                    cycle_id=cycle_id,
                    entry_id=entry.entry_id,
                )
            if self._salts is not None and entry.salt != self._salts.salt(cycle_id, entry.entry_id):
                self._refuse(
                    f"entry {entry.entry_id} of cycle {cycle_id} carries a salt not derived "
                    "from this partner's leaf secret",
                    "entries",
                    cycle_id=cycle_id,
                    entry_id=entry.entry_id,
                )
        if not checked.sum_matches:
            self._refuse(
                f"the {len(entries)} entries of partner {self.partner_id} in cycle {cycle_id} "
                f"sum to {checked.proven_total_fen} fen, not to its net position of "
                f"{position_fen} fen",
                "net_positions_fen",
                cycle_id=cycle_id,
            )
        return entries

    def _position_in(self, report: CycleReport) -> Fen | None:
        if self.partner_id in report.partner_ids:
            return report.net_positions_fen[report.partner_ids.index(self.partner_id)]
        return None

    def _check_cycle_report(self, report: CycleReport) -> None:
        cycle_id = report.cycle_id
        position = self._position_in(report)
        source = self._fetch_entries(cycle_id)
        if position is None:
            if source is not None and source.entries:
                self._refuse(
                    f"the report of cycle {cycle_id} lists no position for partner "
                    f"{self.partner_id}, but the node serves {len(source.entries)} entries",
                    "partner_ids",
                    cycle_id=cycle_id,
                )
            served: list[SettlementEntry] = []
        else:
            if source is None:
                self._refuse(
                    f"the report of cycle {cycle_id} lists partner {self.partner_id}, but the "
                    "node serves it no entries",
                    "partner_ids",
                    cycle_id=cycle_id,
                )
            served = self._check_served(
                cycle_id, report.entries_root, position, report.entry_count, source
            )
        record, _written = self.store.record_first(
            cycle_id, report.entries_root, position or FEN_ZERO, served
        )
        self._require_recorded(report, record, served)

    def _require_recorded(
        self, report: CycleReport, record: RecordedCycle, served: Sequence[SettlementEntry]
    ) -> None:
        """Refuse unless `served` and the report's root are exactly the record."""
        cycle_id = report.cycle_id
        was = {entry.entry_id: entry for entry in record.entries}
        now = {entry.entry_id: entry for entry in served}
        for entry_id in sorted(was.keys() | now.keys()):
            before, after = was.get(entry_id), now.get(entry_id)
            if before == after:
                continue
            if after is None:
                change = "is no longer served"
            elif before is None:
                change = "was not among the entries recorded"
            else:
                change = "differs from the entry recorded"
            self._refuse(
                f"entry {entry_id} of cycle {cycle_id} {change} when this signer first saw "
                "the cycle",
                "entries",
                cycle_id=cycle_id,
                entry_id=entry_id,
            )
        if report.entries_root != record.entries_root:
            self._refuse(
                f"the entries root of cycle {cycle_id} differs from the root this signer "
                "recorded when it first saw the cycle",
                "entries_root",
                cycle_id=cycle_id,
            )


def run_recording(signer: PartnerSigner, stop: threading.Event, interval_s: float) -> None:
    """`record_new_cycles` every `interval_s` seconds until `stop` is set (a thread of
    `creditnet signer serve`); a failing pass is logged and retried."""
    while not stop.is_set():
        try:
            signer.record_new_cycles()
        except (CreditNetValueError, ChainError, ConfigurationError) as error:
            logger.warning("recording pass failed", extra={"error": error.detail})
        except Exception:  # logged with its traceback; the signer keeps serving
            logger.exception("recording pass crashed")
        stop.wait(interval_s)
