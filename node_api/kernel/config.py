"""Node settings, read from the environment with the prefix `CREDITNET_`.

Outside `dev` and `test` the node refuses to start with any default secret.
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
    dispute_window_s: int = Field(default=0, ge=0)

    node_secret: SecretStr = SecretStr(DEV_NODE_SECRET)
    """HMAC key for borrowerRef and API-key hashing pepper."""
    pii_keys: SecretStr = SecretStr(f"k1:{DEV_PII_KEY}")
    """Comma-separated `key_id:base64(32 bytes)`; the first is the active key."""
    pii_lookup_key: SecretStr = SecretStr(DEV_PII_LOOKUP_KEY)
    keystore_password: SecretStr = SecretStr(DEV_KEYSTORE_PASSWORD)

    signer_count: int = Field(default=3, ge=1, le=32)
    signer_threshold: int = Field(default=2, ge=1, le=32)
    remote_signers: str = ""
    """Comma-separated signer endpoint URLs; empty means run signers in-process."""

    product_cost_cap_bps: int = Field(default=2400, ge=0, le=100_000)
    """Products whose all-in effective annual cost exceeds this are refused (24% default)."""

    max_body_bytes: int = 64 * 1024
    access_log: bool = True
    """One JSON line per request on stderr (method, route template, status, duration)."""
    run_workers: bool = True
    """Run the relayer, indexer and end-of-day scheduler inside `creditnet up`."""
    settlement_interval_s: float = Field(default=30.0, gt=0)
    """Seconds between the settlement scheduler's passes inside `creditnet up`."""

    def check_secrets(self) -> None:
        """Refuse default secrets outside dev and test."""
        if self.env in ("dev", "test"):
            return
        defaults = {
            "node_secret": (self.node_secret, DEV_NODE_SECRET),
            "pii_keys": (self.pii_keys, f"k1:{DEV_PII_KEY}"),
            "pii_lookup_key": (self.pii_lookup_key, DEV_PII_LOOKUP_KEY),
            "keystore_password": (self.keystore_password, DEV_KEYSTORE_PASSWORD),
        }
        for name, (value, default) in defaults.items():
            if value.get_secret_value() == default:
                raise ConfigurationError(
                    f"CREDITNET_{name.upper()} still has its development default; "
                    f"set a real secret for env={self.env}",
                    field=name,
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
        return self.data_dir / "keystore"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags) on top."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.check_secrets()
    return settings
