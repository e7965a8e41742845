"""Node settings, read from the environment with the prefix `CREDITNET_`.

Outside `dev` and `test` the node refuses to start with a weak configuration: any
development secret (under any key id), a secret shorter than 32 bytes or reused for another
purpose, an empty keystore password, a signer threshold of 1, a dispute window or a
governance delay under its configured minimum.
"""

from __future__ import annotations

import base64
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from node_api.kernel.errors import ConfigurationError

DEV_NODE_SECRET = "dev-node-secret-not-for-production"
DEV_PII_KEY = base64.b64encode(b"creditnet-dev-pii-key-32-bytes!!").decode()
DEV_PII_LOOKUP_KEY = "dev-pii-lookup-key-not-for-production"
DEV_KEYSTORE_PASSWORD = "dev-keystore-password"
DEV_API_KEY_PEPPER = "dev-api-key-pepper-not-for-production"
DEV_BORROWER_REF_SECRET = "dev-borrower-ref-secret-not-for-production"
DEV_LEAF_SALT_SECRET = "dev-leaf-salt-secret-not-for-production"
SECRET_MIN_BYTES = 32
"""The shortest secret a production node accepts (256 bits of key material at most)."""
KEYSTORE_PASSWORD_MIN_CHARS = 12


class Settings(BaseSettings):
    """Everything the node can be told. Field names map to `CREDITNET_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="CREDITNET_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, le=64)

    database_url: str | None = None
    """SQLAlchemy URL; default is a SQLite file in the data folder."""

    rpc_url: str | None = None
    """Attach to this EVM JSON-RPC instead of starting anvil."""
    chain_id: int | None = None
    """Expected chain id when attaching (refuse to start on a different chain)."""
    anvil_port: int = 8545
    confirmations: int = Field(default=0, ge=0)
    dispute_window_s: int = Field(default=10, ge=0, le=365 * 86_400)
    """Seconds after a proposal during which a partner may dispute a cycle. Short in dev (the
    demo moves anvil's clock); outside dev and test at least `dispute_window_min_s`."""
    dispute_window_min_s: int = Field(default=6 * 3600, ge=0)
    """The shortest dispute window a node outside dev and test accepts (6 hours)."""
    funding_window_s: int = Field(default=86_400, ge=1, le=365 * 86_400)
    """Seconds after the dispute deadline for the debtors to fund a cycle; then anyone may
    declare it defaulted and the funders take their deposits back."""
    funding_window_min_s: int = Field(default=86_400, ge=0)
    """The shortest funding window a node outside dev and test accepts (1 day)."""
    governance_delay_s: int = Field(default=60, ge=0)
    """The NetworkTimelock's minimum delay for admin changes (signers, roles, disputes,
    pausing). Outside dev and test at least `governance_delay_min_s`."""
    governance_delay_min_s: int = Field(default=2 * 86_400, ge=0)
    """The shortest governance delay a node outside dev and test accepts (2 days)."""
    governance_proposers: str = ""
    """Comma-separated addresses that may schedule (and cancel) timelocked admin changes,
    besides the deployer, which proposes on the lender's behalf."""
    governance_cancellers: str = ""
    """Comma-separated addresses of the funding partners and auditors who may cancel any
    scheduled admin change during its delay (but never schedule one)."""
    governance_executors: str = ""
    """Comma-separated addresses that may execute ready admin changes; empty: anyone."""
    settlement_token: str = ""
    """Address of an existing ERC-20 settlement asset (1 unit = 1 fen). Required outside a
    local dev chain; on a local dev chain an empty value deploys a dev SettlementToken."""

    node_secret: SecretStr = SecretStr(DEV_NODE_SECRET)
    """Legacy name, kept for old data folders: no longer keys anything by itself."""
    api_key_pepper: SecretStr = SecretStr(DEV_API_KEY_PEPPER)
    """HMAC pepper of the stored API-key hashes."""
    borrower_ref_secret: SecretStr = SecretStr(DEV_BORROWER_REF_SECRET)
    """HMAC key of `borrowerRef`, the only trace of a borrower on-chain."""
    leaf_salt_secret: SecretStr = SecretStr(DEV_LEAF_SALT_SECRET)
    """Root of the per-partner secrets that salt each settlement leaf (a partner gets its own
    derived secret, never this one)."""
    pii_keys: SecretStr = SecretStr(f"k1:{DEV_PII_KEY}")
    """Comma-separated `key_id:base64(32 bytes)`; the first is the active key."""
    pii_lookup_key: SecretStr = SecretStr(DEV_PII_LOOKUP_KEY)
    keystore_password: SecretStr = SecretStr(DEV_KEYSTORE_PASSWORD)

    signer_count: int = Field(default=3, ge=1, le=32)
    signer_threshold: int = Field(default=2, ge=1, le=32)
    remote_signers: str = ""
    """Comma-separated signer endpoint URLs; empty means run signers in-process."""

    product_cost_cap_bps: int = Field(default=2400, ge=0, le=100_000)
    """The all-in annual cost cap (24% default): products above it are refused when
    published, and every obligation above it (plan conversion, cash drawdown) when booked."""
    cost_cap_annualization: Literal["nominal", "effective"] = "effective"
    """How a monthly IRR becomes the annual rate compared with the cap and stated in quotes:
    `nominal` = IRR × 12 (the figure disclosures commonly state), `effective` =
    (1 + IRR)^12 − 1 (stricter)."""
    business_date_max_ahead_days: int = Field(default=3, ge=0, le=366)
    """How far ahead of the server's calendar date (in the end-of-day time zone,
    `CREDITNET_EOD_TIMEZONE`) an operator may move the business date
    (`POST /v1/ledger/business-date`, `creditnet business-date --set`)."""
    backdate_window_days: int = Field(default=0, ge=0, le=366)
    """How many days before the business date a purchase, drawdown, refund or repayment
    may be dated (0: only the business date itself); later is always refused. A back-dated
    transaction lands in an already-closed day: end of day does not redo that day's
    accrual, and a bill already cut does not list it (it is in the next one)."""

    liveness_provider_keys: str = ""
    """Comma-separated `provider_id:base64(32-byte Ed25519 public key)` of the liveness
    providers whose signed results the node accepts (the embedded `creditnet-test`
    provider is trusted in dev and test only)."""
    liveness_challenge_ttl_s: int = Field(default=600, ge=10, le=86_400)
    """Seconds a liveness nonce stays usable after the node issues it."""
    risk_psi_alert: float = Field(default=0.25, gt=0)
    """Population stability index above which a characteristic or the score raises an
    alert (0.10-0.25 is commonly read as a shift worth watching, above 0.25 as major)."""
    risk_gini_drop_alert: float = Field(default=0.10, gt=0, le=2)
    """How far a week's matured Gini may fall below the model's training Gini before it
    raises an alert."""
    risk_gini_min_bads: int = Field(default=5, ge=1)
    """A week's Gini is computed only once this many of its lines turned bad."""

    max_body_bytes: int = 64 * 1024
    max_model_body_bytes: int = 8 * 1024 * 1024
    """The body limit of `POST /v1/risk/models` only: a gradient-boosted card with hundreds
    of trees is several hundred kilobytes."""
    access_log: bool = True
    """One JSON line per request on stderr (method, route template, status, duration)."""
    run_workers: bool = True
    """Run the relayer, indexer and end-of-day scheduler inside `creditnet up`."""
    settlement_interval_s: float = Field(default=30.0, gt=0)
    """Seconds between the settlement scheduler's passes inside `creditnet up`."""

    node_id: str = ""
    """This node's name in the worker leases (empty: `<hostname>:<pid>`)."""
    lease_ttl_s: float = Field(default=10.0, gt=0, le=600)
    """A background worker's lease lasts this long unless renewed (every third of it): a
    node that dies without releasing its leases is replaced within about this time."""
    drain_timeout_s: float = Field(default=20.0, gt=0, le=600)
    """On SIGTERM, how long `creditnet up` waits for in-flight requests and batches."""
    relayer_reprice_after_s: float = Field(default=30.0, gt=0)
    """A relayed transaction still unmined this long after its latest attempt is signed
    again with the same nonce at higher fees."""
    relayer_reprice_bump_bps: int = Field(default=1_250, ge=1_000, le=100_000)
    """Each replacement raises both EIP-1559 fees by at least this (10% is the minimum
    nodes accept)."""
    relayer_fee_ceiling_gwei: int = Field(default=500, ge=1)
    """No relayed transaction offers a max fee per gas above this."""
    events_url: str = ""
    """NATS server with JetStream (`nats://127.0.0.1:4222`): publish the business events
    there (docs/EVENTS.md). Empty: no event stream."""
    events_stream: str = "CREDITNET_EVENTS"
    """The JetStream stream the node publishes to (created when absent)."""
    events_subject_prefix: str = "creditnet"
    """Events go to `<prefix>.<type>`, e.g. `creditnet.purchase.authorized`."""

    def check_secrets(self) -> None:
        """Refuse a weak configuration outside dev and test (see the module docstring)."""
        if self.env in ("dev", "test"):
            return
        secrets = {
            "api_key_pepper": (self.api_key_pepper, DEV_API_KEY_PEPPER),
            "borrower_ref_secret": (self.borrower_ref_secret, DEV_BORROWER_REF_SECRET),
            "leaf_salt_secret": (self.leaf_salt_secret, DEV_LEAF_SALT_SECRET),
            "pii_lookup_key": (self.pii_lookup_key, DEV_PII_LOOKUP_KEY),
        }
        dev_values = {DEV_NODE_SECRET, DEV_PII_KEY, DEV_KEYSTORE_PASSWORD} | {
            default for _, default in secrets.values()
        }
        seen: dict[str, str] = {}
        for name, (value, _default) in secrets.items():
            raw = value.get_secret_value()
            if raw in dev_values:
                raise self._weak(name, "still has a development default")
            if len(raw.encode()) < SECRET_MIN_BYTES:
                raise self._weak(name, f"is shorter than {SECRET_MIN_BYTES} bytes")
            if len(set(raw)) < 8:
                raise self._weak(name, "has too little entropy (fewer than 8 distinct characters)")
            if raw in seen:
                raise self._weak(name, f"reuses the value of CREDITNET_{seen[raw].upper()}")
            seen[raw] = name
        for key_id, key in self.pii_key_ring.items():
            if base64.b64encode(key).decode() == DEV_PII_KEY:
                raise self._weak("pii_keys", f"key {key_id} is the development key")
        password = self.keystore_password.get_secret_value()
        if password in dev_values or len(password) < KEYSTORE_PASSWORD_MIN_CHARS:
            raise self._weak(
                "keystore_password",
                f"is empty, a development default or shorter than {KEYSTORE_PASSWORD_MIN_CHARS}",
            )
        if self.signer_threshold < 2:
            raise self._weak("signer_threshold", "is 1: one key alone would settle a cycle")
        if self.dispute_window_s < self.dispute_window_min_s:
            raise self._weak(
                "dispute_window_s", f"is under the minimum of {self.dispute_window_min_s} s"
            )
        if not self.governance_cancellers.strip():
            raise self._weak(
                "governance_cancellers",
                "is empty: name the partners who may cancel an admin change during its delay",
            )
        if self.funding_window_s < self.funding_window_min_s:
            raise self._weak(
                "funding_window_s", f"is under the minimum of {self.funding_window_min_s} s"
            )
        if self.governance_delay_s < self.governance_delay_min_s:
            raise self._weak(
                "governance_delay_s", f"is under the minimum of {self.governance_delay_min_s} s"
            )

    def _weak(self, name: str, why: str) -> ConfigurationError:
        return ConfigurationError(
            f"CREDITNET_{name.upper()} {why}; env={self.env} needs a real value", field=name
        )

    @cached_property
    def pii_key_ring(self) -> dict[str, bytes]:
        """The PII encryption keys by id; the first listed is the active one."""
        ring: dict[str, bytes] = {}
        for item in self.pii_keys.get_secret_value().split(","):
            key_id, _, encoded = item.strip().partition(":")
            key = base64.b64decode(encoded)
            if not key_id or len(key) != 32:
                raise ConfigurationError(
                    "CREDITNET_PII_KEYS must be `id:base64(32 bytes)`[,...]", field="pii_keys"
                )
            ring[key_id] = key
        return ring

    @property
    def pii_active_key_id(self) -> str:
        return next(iter(self.pii_key_ring))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'creditnet.db').resolve()}"

    @property
    def deployments_dir(self) -> Path:
        return self.data_dir / "deployments"

    @property
    def keystore_dir(self) -> Path:
        """The one keystore layout every command uses: `deployer.json`, `relayer.json`
        and `treasury.json` (chains other than the dev anvil), and `signers/` (the node's
        own oracle signers), each encrypted with `keystore_password`."""
        return self.data_dir / "keystore"

    @property
    def signer_keystore_dir(self) -> Path:
        """Where the node's own oracle signers' keystores are (see `keystore_dir`)."""
        return self.keystore_dir / "signers"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags) on top."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.check_secrets()
    return settings
