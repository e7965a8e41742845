"""The collections policy: conduct limits and hardship limits, configurable per node.

Read from the environment with the prefix `CREDITNET_COLLECTIONS_` (for example
`CREDITNET_COLLECTIONS_CONTACT_HOURS_START=09:00`) by the edges that call the domain;
the domain takes the resulting `CollectionsPolicy` as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from node_api.kernel.config import Settings
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.money import Bps
from node_api.lending.products.validation import DEFAULT_COST_CAP_BPS

DEFAULT_TIMEZONE: Final = ZoneInfo("Asia/Shanghai")
DEFAULT_COMPENSATION_DAYS_PAST_DUE: Final = 90
"""M3: the guarantee agreements' usual compensation day, before the charge-off day."""


@dataclass(frozen=True, slots=True)
class CollectionsPolicy:
    """What collections may do. Contact hours are a half-open local window: a contact may
    start at `contact_hours_start` and must start before `contact_hours_end`."""

    contact_hours_start: time = time(8, 0)
    contact_hours_end: time = time(21, 0)
    timezone: ZoneInfo = DEFAULT_TIMEZONE
    contacts_per_day_max: int = 3
    """Contact attempts about one borrower (all lines, both parties) per local day."""
    hardship_plans_max: int = 1
    """Hardship plans (approved or awaiting approval) per line within the window."""
    hardship_window_months: int = 12
    cost_cap_bps: Bps = DEFAULT_COST_CAP_BPS
    """The all-in effective annual cost no hardship plan may exceed (the product cap)."""
    compensation_days_past_due: int = DEFAULT_COMPENSATION_DAYS_PAST_DUE
    """Days past due at which a guaranteed line's guarantor compensates (代偿)."""


class CollectionsSettings(BaseSettings):
    """`CollectionsPolicy` as environment variables (`CREDITNET_COLLECTIONS_<NAME>`)."""

    model_config = SettingsConfigDict(env_prefix="CREDITNET_COLLECTIONS_", extra="ignore")

    contact_hours_start: time = time(8, 0)
    contact_hours_end: time = time(21, 0)
    timezone: str = "Asia/Shanghai"
    contacts_per_day_max: int = Field(default=3, ge=1, le=50)
    hardship_plans_max: int = Field(default=1, ge=0, le=12)
    hardship_window_months: int = Field(default=12, ge=1, le=120)
    compensation_days_past_due: int = Field(
        default=DEFAULT_COMPENSATION_DAYS_PAST_DUE, ge=1, le=3_650
    )


def build_policy(settings: CollectionsSettings, cost_cap_bps: int) -> CollectionsPolicy:
    """The policy from its settings; refuses an empty contact window or an unknown zone."""
    if settings.contact_hours_start >= settings.contact_hours_end:
        raise ConfigurationError(
            "CREDITNET_COLLECTIONS_CONTACT_HOURS_START must be before ..._END",
            field="contact_hours_start",
        )
    try:
        zone = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            "CREDITNET_COLLECTIONS_TIMEZONE is not a known IANA time zone", field="timezone"
        ) from None
    return CollectionsPolicy(
        contact_hours_start=settings.contact_hours_start,
        contact_hours_end=settings.contact_hours_end,
        timezone=zone,
        contacts_per_day_max=settings.contacts_per_day_max,
        hardship_plans_max=settings.hardship_plans_max,
        hardship_window_months=settings.hardship_window_months,
        cost_cap_bps=Bps(cost_cap_bps),
        compensation_days_past_due=settings.compensation_days_past_due,
    )


def load_policy(settings: Settings) -> CollectionsPolicy:
    """The node's policy: the environment's collections settings and the node's cost cap."""
    return build_policy(CollectionsSettings(), settings.product_cost_cap_bps)
