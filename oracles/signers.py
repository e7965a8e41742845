"""Oracle signers: sign EIP-712 reports only after recomputing them from the books.

A signer is handed a report (a settlement cycle's root and net positions, or a
cycle's credit-line state) and signs it only if its own recomputation from the
books, through a `ReportSources` callback, gives exactly the same report; anything
else is refused with `ReportRefusedError`. A node runs N signers in-process from
encrypted keystores (default 3, threshold 2) or asks remote signer endpoints over
HTTP; either way `SignerSet` gathers the signatures in the order OracleQuorum wants
(ascending signer address). Keys never leave `LocalAccount` and never reach a log.

Remote signer protocol (what `RemoteSigner` speaks and `handle_sign_request` serves):
`POST <url>/v1/signer/cycle-report` or `/v1/signer/line-state-report` with the report
as JSON (`CycleReport.to_json`), answered `{"address": "0x..", "signature": "0x.."}`;
a refusal is HTTP 409 with a problem+json body; `GET <url>/v1/signer` returns
`{"address": "0x.."}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, TypedDict, cast

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from node_api.kernel.config import Settings
from node_api.kernel.errors import ChainError, CreditNetError, CreditNetValueError
from node_api.kernel.money import Fen
from oracles.eip712 import (
    cycle_report_digest,
    line_state_report_digest,
    recover_signer,
    sign_digest,
)
from oracles.keystore import load_or_create_signers

logger = logging.getLogger(__name__)

CYCLE_REPORT_PATH: Final = "/v1/signer/cycle-report"
LINE_STATE_REPORT_PATH: Final = "/v1/signer/line-state-report"
SIGNER_INFO_PATH: Final = "/v1/signer"


class ReportRefusedError(CreditNetError):
    """A signer refused to sign: the report does not match its own view of the books."""

    code = "report_refused"


class QuorumNotReachedError(CreditNetError):
    """Fewer signers than the threshold signed a report."""

    code = "quorum_not_reached"


class SignerUnavailableError(ChainError):
    """A remote signer did not answer, or answered with an invalid signature."""

    code = "signer_unavailable"


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _bytes32(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise CreditNetValueError(f"{name} must be 0x + 64 hex digits", field=name)
    return bytes.fromhex(value[2:])


class CycleReportJson(TypedDict):
    """The JSON form of a `CycleReport` (what remote signers receive)."""

    cycle_id: int
    entries_root: str
    entry_count: int
    partner_ids: list[int]
    net_positions_fen: list[Fen]


class LineStateReportJson(TypedDict):
    """The JSON form of a `LineStateReport`."""

    cycle_id: int
    root: str
    leaf_count: int
    total_outstanding_fen: Fen


class SignerInfoJson(TypedDict):
    """`GET /v1/signer`: the signer's address."""

    address: str


class SignatureJson(SignerInfoJson):
    """A remote signer's answer to a report: its address and 0x-hex signature."""

    signature: str


@dataclass(frozen=True)
class CycleReport:
    """A settlement cycle as the ClearingHouse's `CycleReport` struct (amounts in fen)."""

    cycle_id: int
    entries_root: bytes
    entry_count: int
    partner_ids: tuple[int, ...]
    net_positions_fen: tuple[Fen, ...]

    def to_json(self) -> CycleReportJson:
        return {
            "cycle_id": self.cycle_id,
            "entries_root": _hex(self.entries_root),
            "entry_count": self.entry_count,
            "partner_ids": list(self.partner_ids),
            "net_positions_fen": list(self.net_positions_fen),
        }

    @classmethod
    def from_json(cls, body: CycleReportJson) -> CycleReport:
        """Parse a report received as JSON (checked: CreditNetValueError when malformed)."""
        try:
            return cls(
                cycle_id=int(body["cycle_id"]),
                entries_root=_bytes32(body["entries_root"], "entries_root"),
                entry_count=int(body["entry_count"]),
                partner_ids=tuple(int(p) for p in body["partner_ids"]),
                net_positions_fen=tuple(Fen(int(n)) for n in body["net_positions_fen"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CreditNetValueError(f"malformed cycle report: {error}", field="report") from None


@dataclass(frozen=True)
class LineStateReport:
    """A cycle's credit-line state as the CreditRegistry's `LineStateReport` struct."""

    cycle_id: int
    root: bytes
    leaf_count: int
    total_outstanding_fen: Fen

    def to_json(self) -> LineStateReportJson:
        return {
            "cycle_id": self.cycle_id,
            "root": _hex(self.root),
            "leaf_count": self.leaf_count,
            "total_outstanding_fen": self.total_outstanding_fen,
        }

    @classmethod
    def from_json(cls, body: LineStateReportJson) -> LineStateReport:
        """Parse a report received as JSON (checked: CreditNetValueError when malformed)."""
        try:
            return cls(
                cycle_id=int(body["cycle_id"]),
                root=_bytes32(body["root"], "root"),
                leaf_count=int(body["leaf_count"]),
                total_outstanding_fen=Fen(int(body["total_outstanding_fen"])),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CreditNetValueError(
                f"malformed line-state report: {error}", field="report"
            ) from None


@dataclass(frozen=True)
class SigningDomain:
    """Where signatures are valid: the chain and the two verifying contracts."""

    chain_id: int
    clearing_house: str
    credit_registry: str

    def digest_cycle_report(self, report: CycleReport) -> bytes:
        return cycle_report_digest(
            self.chain_id,
            self.clearing_house,
            report.cycle_id,
            report.entries_root,
            report.entry_count,
            report.partner_ids,
            report.net_positions_fen,
        )

    def digest_line_state_report(self, report: LineStateReport) -> bytes:
        return line_state_report_digest(
            self.chain_id,
            self.credit_registry,
            report.cycle_id,
            report.root,
            report.leaf_count,
            report.total_outstanding_fen,
        )


@dataclass(frozen=True)
class ReportSources:
    """The books' recomputation of each report type by cycle id (None: not in the books).

    A signer without a source for a report type refuses every report of that type.
    """

    cycle: Callable[[int], CycleReport | None] | None = None
    line_state: Callable[[int], LineStateReport | None] | None = None


class OracleSigner(Protocol):
    """Anything that signs reports for one signer address."""

    @property
    def address(self) -> str: ...

    def sign_cycle_report(self, report: CycleReport) -> bytes: ...

    def sign_line_state_report(self, report: LineStateReport) -> bytes: ...


def _first_difference(claimed: Any, own: Any) -> str:
    """The name of the first field where two reports differ (never the values)."""
    for name in claimed.__dataclass_fields__:
        if getattr(claimed, name) != getattr(own, name):
            return str(name)
    return "report"


class LocalSigner:
    """A signer whose key is in this process (decrypted from its keystore)."""

    def __init__(self, account: LocalAccount, sources: ReportSources, domain: SigningDomain):
        self._account = account
        self._sources = sources
        self.domain = domain

    def __repr__(self) -> str:
        return f"LocalSigner({self.address})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_cycle_report(self, report: CycleReport) -> bytes:
        """Sign `report` if the books give exactly the same cycle; else ReportRefusedError."""
        own = self._sources.cycle(report.cycle_id) if self._sources.cycle else None
        self._require_same(report, own, "cycle")
        return sign_digest(self._account, self.domain.digest_cycle_report(report))

    def sign_line_state_report(self, report: LineStateReport) -> bytes:
        """Sign `report` if the books give exactly the same line state; else refuse."""
        own = self._sources.line_state(report.cycle_id) if self._sources.line_state else None
        self._require_same(report, own, "line state")
        return sign_digest(self._account, self.domain.digest_line_state_report(report))

    def _require_same(self, claimed: Any, own: Any, what: str) -> None:
        if own is None:
            self._refuse(f"the books have no {what} for cycle {claimed.cycle_id}", "cycle_id")
        if own != claimed:
            where = _first_difference(claimed, own)
            self._refuse(
                f"{what} report for cycle {claimed.cycle_id} does not match the books ({where})",
                where,
            )

    def _refuse(self, detail: str, field_name: str) -> None:
        logger.warning("report refused", extra={"signer": self.address, "reason": detail})
        raise ReportRefusedError(detail, field=field_name)


def handle_sign_request(
    signer: OracleSigner, path: str, body: CycleReportJson | LineStateReportJson
) -> SignatureJson:
    """Serve one remote-signer request (the server side of `RemoteSigner`); `body` is the
    report's JSON for `path`, checked as it is parsed.

    Raises ReportRefusedError (HTTP 409) or CreditNetValueError (422) like the local call.
    """
    if path == CYCLE_REPORT_PATH:
        signature = signer.sign_cycle_report(CycleReport.from_json(cast(CycleReportJson, body)))
    elif path == LINE_STATE_REPORT_PATH:
        report = LineStateReport.from_json(cast(LineStateReportJson, body))
        signature = signer.sign_line_state_report(report)
    else:
        raise CreditNetValueError(f"unknown signer path {path}", field="path")
    return {"address": signer.address, "signature": _hex(signature)}


class RemoteSigner:
    """A signer behind an HTTP endpoint; every signature is checked before it is used."""

    def __init__(
        self,
        url: str,
        domain: SigningDomain,
        *,
        expected_address: str | None = None,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.domain = domain
        self._client = client or httpx.Client(timeout=timeout_s)
        self._address: str | None = (
            None if expected_address is None else str(to_checksum_address(expected_address))
        )

    def __repr__(self) -> str:
        return f"RemoteSigner({self.url})"

    @property
    def address(self) -> str:
        """The signer's address: as configured, else as the endpoint reports it."""
        if self._address is None:
            self._address = str(self._request("GET", SIGNER_INFO_PATH, None)["address"])
        return self._address

    def sign_cycle_report(self, report: CycleReport) -> bytes:
        answer = self._request("POST", CYCLE_REPORT_PATH, report.to_json())
        return self._checked(answer, self.domain.digest_cycle_report(report))

    def sign_line_state_report(self, report: LineStateReport) -> bytes:
        answer = self._request("POST", LINE_STATE_REPORT_PATH, report.to_json())
        return self._checked(answer, self.domain.digest_line_state_report(report))

    def _request(
        self, method: str, path: str, body: CycleReportJson | LineStateReportJson | None
    ) -> SignatureJson:
        """The endpoint's JSON answer (a `SignerInfoJson` for GET; unchecked here)."""
        try:
            response = self._client.request(method, self.url + path, json=body)
        except httpx.HTTPError as error:
            raise SignerUnavailableError(
                f"signer {self.url} unreachable: {type(error).__name__}"
            ) from None
        if response.status_code == 409:
            detail = str(response.json().get("detail", "refused"))
            raise ReportRefusedError(f"signer {self.url} refused: {detail}", field="report")
        if response.status_code != 200:
            raise SignerUnavailableError(f"signer {self.url} answered HTTP {response.status_code}")
        answer: SignatureJson = response.json()
        return answer

    def _checked(self, answer: SignatureJson, digest: bytes) -> bytes:
        """The signature, if it recovers to this signer's address over `digest`."""
        try:
            signature = bytes.fromhex(str(answer["signature"]).removeprefix("0x"))
            recovered = recover_signer(digest, signature)
        except (KeyError, ValueError):
            raise SignerUnavailableError(f"signer {self.url} sent a malformed signature") from None
        if recovered.lower() != self.address.lower():
            raise SignerUnavailableError(
                f"signer {self.url} signed as {recovered}, expected {self.address}"
            )
        return signature


@dataclass
class SignatureGathering:
    """Signatures in ascending signer-address order, and who refused or failed and why."""

    signatures: list[bytes]
    signers: list[str]
    refusals: dict[str, str] = field(default_factory=dict)


class SignerSet:
    """N signers and the threshold of signatures a report needs."""

    def __init__(self, signers: Sequence[OracleSigner], threshold: int) -> None:
        if not 1 <= threshold <= len(signers):
            raise CreditNetValueError(
                f"threshold {threshold} outside 1..{len(signers)}", field="signer_threshold"
            )
        self.signers = list(signers)
        self.threshold = threshold

    @property
    def addresses(self) -> list[str]:
        return [signer.address for signer in self.signers]

    def gather_cycle_signatures(
        self, report: CycleReport, *, require_quorum: bool = True
    ) -> SignatureGathering:
        """Every willing signer's signature of `report`; QuorumNotReachedError when fewer
        than the threshold sign (unless `require_quorum` is False)."""
        return self._gather(lambda signer: signer.sign_cycle_report(report), require_quorum)

    def gather_line_state_signatures(
        self, report: LineStateReport, *, require_quorum: bool = True
    ) -> SignatureGathering:
        return self._gather(lambda signer: signer.sign_line_state_report(report), require_quorum)

    def _gather(
        self, sign: Callable[[OracleSigner], bytes], require_quorum: bool
    ) -> SignatureGathering:
        by_address: dict[int, tuple[str, bytes]] = {}
        refusals: dict[str, str] = {}
        for signer in self.signers:
            try:
                signature = sign(signer)
            except (ReportRefusedError, SignerUnavailableError) as error:
                refusals[str(signer.address)] = error.detail
                continue
            by_address[int(signer.address, 16)] = (signer.address, signature)
        ordered = [by_address[key] for key in sorted(by_address)]
        gathering = SignatureGathering(
            signatures=[signature for _, signature in ordered],
            signers=[address for address, _ in ordered],
            refusals=refusals,
        )
        if require_quorum and len(ordered) < self.threshold:
            raise QuorumNotReachedError(
                f"{len(ordered)} of {len(self.signers)} signers signed; {self.threshold} needed",
                field="signatures",
                refusals=refusals,
            )
        return gathering


def parse_remote_signers(setting: str) -> list[tuple[str, str | None]]:
    """`CREDITNET_REMOTE_SIGNERS`: comma-separated `URL` or `0xADDRESS=URL` items."""
    entries: list[tuple[str, str | None]] = []
    for raw in setting.split(","):
        item = raw.strip()
        if not item:
            continue
        address, separator, url = item.partition("=")
        if separator and address.startswith("0x"):
            entries.append((url.strip(), address.strip()))
        else:
            entries.append((item, None))
    return entries


def load_node_signer_accounts(settings: Settings) -> list[LocalAccount]:
    """The node's own `signer_count` signer keys, from the one keystore layout
    (`Settings.signer_keystore_dir`; created on first start)."""
    return load_or_create_signers(
        settings.signer_keystore_dir,
        settings.signer_count,
        settings.keystore_password.get_secret_value(),
    )


def build_signer_set(
    settings: Settings,
    sources: ReportSources,
    domain: SigningDomain,
    accounts: Sequence[LocalAccount] | None = None,
) -> SignerSet:
    """The quorum as the deployment knows it: the node's own `signer_count` in-process
    signers (`accounts`, else from the keystores) and every `CREDITNET_REMOTE_SIGNERS`
    endpoint (partners' and auditors' `creditnet signer serve`), with the configured
    threshold. The lender's node is one party among them."""
    own = load_node_signer_accounts(settings) if accounts is None else list(accounts)
    signers: list[OracleSigner] = [LocalSigner(account, sources, domain) for account in own]
    signers += [
        RemoteSigner(url, domain, expected_address=address)
        for url, address in parse_remote_signers(settings.remote_signers)
    ]
    return SignerSet(signers, settings.signer_threshold)


def fetch_keystore_addresses(directory: Path) -> list[str]:
    """Signer addresses from the keystore files, without decrypting them (for status)."""
    addresses: list[str] = []
    for path in sorted(directory.glob("signer-*.json")):
        try:
            address = json.loads(path.read_text()).get("address")
        except (OSError, ValueError):
            continue
        if isinstance(address, str):
            addresses.append(to_checksum_address("0x" + address.removeprefix("0x")))
    return addresses
