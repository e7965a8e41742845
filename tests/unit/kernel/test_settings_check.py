"""A production node refuses a weak configuration, naming the setting (kernel/config.py)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from node_api.kernel.config import DEV_PII_KEY, Settings
from node_api.kernel.errors import ConfigurationError

STRONG: dict[str, Any] = {
    "env": "prod",
    "api_key_pepper": "pepper-0123456789-abcdefghijklmnopqrstuv",
    "borrower_ref_secret": "borrower-0123456789-abcdefghijklmnopqrst",
    "leaf_salt_secret": "leafsalt-0123456789-abcdefghijklmnopqrst",
    "pii_keys": "k1:" + base64.b64encode(b"a-real-32-byte-key-for-the-tests").decode(),
    "pii_lookup_key": "lookup-0123456789-abcdefghijklmnopqrstuvw",
    "keystore_password": "keystore-password-0123",
    "signer_threshold": 2,
    "dispute_window_s": 6 * 3600,
    "governance_delay_s": 2 * 86_400,
    "governance_cancellers": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
}


def test_a_strong_production_configuration_passes() -> None:
    Settings(**STRONG).check_secrets()


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("api_key_pepper", "dev-api-key-pepper-not-for-production", "development default"),
        ("leaf_salt_secret", "dev-node-secret-not-for-production", "development default"),
        ("borrower_ref_secret", "short-but-varied-123", "shorter than 32 bytes"),
        ("pii_lookup_key", "a" * 40, "too little entropy"),
        ("leaf_salt_secret", STRONG["api_key_pepper"], "reuses the value"),
        ("pii_keys", STRONG["pii_keys"] + f",k9:{DEV_PII_KEY}", "development key"),
        ("keystore_password", "", "shorter than"),
        ("keystore_password", "dev-keystore-password", "development default"),
        ("signer_threshold", 1, "one key alone"),
        ("dispute_window_s", 0, "under the minimum"),
        ("dispute_window_s", 6 * 3600 - 1, "under the minimum"),
        ("governance_delay_s", 60, "under the minimum"),
        ("governance_cancellers", "", "is empty"),
        ("funding_window_s", 3600, "under the minimum"),
    ],
)
def test_a_weak_setting_is_refused_by_name(field: str, value: Any, why: str) -> None:
    with pytest.raises(ConfigurationError, match=why) as caught:
        Settings(**{**STRONG, field: value}).check_secrets()
    assert caught.value.field == field
    assert f"CREDITNET_{field.upper()}" in caught.value.detail
    if isinstance(value, str) and len(value) > 8:
        assert value not in caught.value.detail  # never echo a secret


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_keep_their_defaults(env: str) -> None:
    Settings(env=env).check_secrets()
