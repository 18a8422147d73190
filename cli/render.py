"""Readable renderings of domain objects for the terminal (rich)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from nba.channels import CONSENT_CHANNELS
from nba.profile import ChannelEngagement, CustomerProfile

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _top(shares: Mapping[str, float], n: int = 3) -> str:
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v:.0%}" for k, v in ranked) or "-"


def _maybe(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _cart(p: CustomerProfile) -> str:
    if not p.cart_items:
        return "empty"
    return f"{len(p.cart_items)} item(s), {p.cart_value:,.2f}, {_maybe(p.cart_age_hours, ' h old')}"


def _engagement(p: CustomerProfile) -> str:
    parts = []
    for ch in CONSENT_CHANNELS:
        e = p.engagement.get(ch, ChannelEngagement())
        if e.sent or e.opened:
            parts.append(
                f"{ch.value} {e.open_rate:.0%} open / {e.click_rate:.1%} click ({e.sent} sent)"
            )
    return "; ".join(parts) or "no messages yet"


def profile_table(p: CustomerProfile) -> Table:
    """The profile fields that matter to a marketer, one per row."""
    when = f" at {p.as_of:%Y-%m-%d %H:%M} UTC" if p.as_of else ""
    table = Table(title=f"customer {p.customer_id}{when}", show_header=False)
    peak = p.peak_hour_of_week
    recent = ", ".join(p.browsed_products[:3]) or "-"
    consents = [c.value for c in CONSENT_CHANNELS if p.consented(c)]
    rows = {
        "lifecycle / journey": f"{p.lifecycle_state.value} / {p.journey_phase.value}",
        "time zone": p.timezone,
        "purchases 30d / 90d / all": f"{p.purchases_30d} / {p.purchases_90d} / {p.purchases_total}",
        "revenue 90d / all": f"{p.revenue_90d:,.2f} / {p.revenue_total:,.2f}",
        "days since last purchase": _maybe(p.days_since_last_purchase),
        "categories": _top(p.category_affinity),
        "brands": _top(p.brand_affinity),
        "cart": _cart(p),
        "browsing, last 24 h": f"{p.browse_minutes_24h:.0f} min; {recent}",
        "most active": f"{_DAYS[peak // 24]} {peak % 24:02d}:00 local" if peak is not None else "-",
        "promotion sensitivity": f"{p.promo_sensitivity:.0%}",
        "early adopter": f"{p.early_adopter_score:.0%}",
        "seasonal months": ", ".join(map(str, p.seasonal_months)) or "-",
        "days to birthday": _maybe(p.days_to_birthday),
        "loyalty tier": p.loyalty_tier,
        "consents": ", ".join(consents) or "none",
        "engagement": _engagement(p),
        "contacts 1d / 7d": f"{p.contacts.total_1d()} / {p.contacts.total_7d()}",
        "events seen": f"{p.events_seen:,}",
    }
    for label, value in rows.items():
        table.add_row(label, value)
    return table


__all__ = ["profile_table"]
