"""The node's PII vault, built from its settings (keys never leave `Settings` otherwise)."""

from __future__ import annotations

from node_api.kernel.config import Settings
from node_api.onboarding.pii import PiiVault


def build_vault(settings: Settings) -> PiiVault:
    """A vault over every configured key; the first key of `CREDITNET_PII_KEYS` encrypts."""
    return PiiVault(
        settings.pii_key_ring,
        settings.pii_active_key_id,
        settings.pii_lookup_key.get_secret_value().encode("utf-8"),
        node_secret=settings.borrower_ref_secret.get_secret_value().encode("utf-8"),
    )
