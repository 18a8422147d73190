"""The retailer simulator: determinism, contract, statistics and recoverable ground truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.typing import ArrayLike

from features.dataset import load_dataset
from nba.channels import CONSENT_CHANNELS, Channel
from simulator import (
    Campaign,
    ConsentRates,
    MarketingEffects,
    PersonaMix,
    SimulatedRetailer,
    SimulatorConfig,
    simulate,
    stream_simulation,
    write_simulation,
)
from simulator.config import SOURCED_MAX_AFFINITY
from simulator.response import ResponseModel
from simulator.spread import option_spread

WITHDRAWALS = ("unsubscribe", "complaint", "sms_stop")
STATS_CONFIG = SimulatorConfig(n_customers=4000, days=90, seed=11, chunk_size=1500)


@pytest.fixture(scope="module")
def sim() -> SimulatedRetailer:
    return simulate(STATS_CONFIG)


@pytest.fixture(scope="module")
def events(sim: SimulatedRetailer) -> pd.DataFrame:
    return sim.events


def _local_hours(events: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Events with their local hour and weekday in the customer's own time zone."""
    tz = events["customer_id"].map(customers.set_index("customer_id")["timezone"])
    hour = pd.Series(np.nan, index=events.index)
    day = pd.Series(-1, index=events.index)
    for zone in tz.unique():
        at = tz == zone
        local = events.loc[at, "timestamp"].dt.tz_convert(zone)
        hour[at] = local.dt.hour + local.dt.minute / 60.0
        day[at] = local.dt.day_of_week
    return events.assign(local_hour=hour, local_weekday=day)


def _circular_mean_hour(hours: pd.Series) -> float:
    angle = hours.to_numpy() / 24.0 * 2 * np.pi
    return float(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean()) / (2 * np.pi) * 24.0 % 24.0)


def _circular_distance(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    d = np.abs(np.asarray(a) - np.asarray(b)) % 24.0
    return np.minimum(d, 24.0 - d)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_customers": 0}, "n_customers must be at least 1"),
        ({"days": -3}, "days must be at least 1"),
        ({"start": dt.datetime(2026, 1, 5)}, "time-zone aware"),
        ({"start": dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)}, "midnight in UTC"),
        ({"persona_mix": PersonaMix(loyal=0.5)}, "persona_mix shares must be >= 0 and sum to 1"),
        ({"consent_rates": ConsentRates(sms=1.4)}, "consent_rates.sms must be in [0, 1]"),
        ({"cart_return_within_12h": 2.0}, "cart_return_within_12h must be in [0, 1]"),
        ({"new_collection_days": (200,)}, "new_collection_days must be days of the window"),
        ({"chunk_size": 10}, "chunk_size must be at least 100"),
    ],
)
def test_config_rejects_bad_values_with_a_message_saying_what_to_fix(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SimulatorConfig(**changes)  # type: ignore[arg-type]


def test_marketing_effects_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="birthday_window_days must contain the birthday"):
        MarketingEffects(birthday_window_days=(3, 7))
    with pytest.raises(ValueError, match="0 < 24 h <= 1 h"):
        MarketingEffects(cart_conversion_1h=0.01, cart_conversion_24h=0.02)


def test_campaign_rejects_channels_without_consent_and_bad_hours() -> None:
    with pytest.raises(ValueError, match="must be one of the consent channels"):
        Campaign("banner", Channel.WEB, "promo", local_hours=(10,))
    with pytest.raises(ValueError, match="local_hours must be a non-empty tuple of hours 0-23"):
        Campaign("late", Channel.EMAIL, "promo", local_hours=(25,))
    with pytest.raises(ValueError, match="unknown kind 'spam'"):
        Campaign("x", Channel.EMAIL, "spam", local_hours=(9,))


def test_config_serialises_to_json() -> None:
    data = json.loads(SimulatorConfig(n_customers=10).to_json())
    assert data["n_customers"] == 10
    assert data["start"] == "2026-01-05T00:00:00+00:00"
    assert data["campaigns"][0]["channel"] == "email"


# ---------------------------------------------------------------- determinism and contract


def test_same_seed_gives_identical_tables_and_another_seed_does_not() -> None:
    config = SimulatorConfig(n_customers=400, days=30, seed=5, chunk_size=150, n_products=300)
    first, second = simulate(config), simulate(config)
    other = simulate(dataclasses.replace(config, seed=6))
    for name in ("customers", "products", "offers", "events"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    pd.testing.assert_frame_equal(first.truth.customers, second.truth.customers)
    assert not first.events.equals(other.events)
    assert not first.truth.customers["persona"].equals(other.truth.customers["persona"])


def test_written_data_set_passes_the_contract(sim: SimulatedRetailer, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    out = write_simulation(
        sim, tmp_path / "retail", progress=lambda done, total: calls.append((done, total))
    )
    dataset = load_dataset(out)
    assert len(dataset.customers) == STATS_CONFIG.n_customers
    assert len(dataset.events) == sim.n_events
    assert len(dataset.products) == STATS_CONFIG.n_products
    assert len(dataset.offers) == STATS_CONFIG.n_offers + len(STATS_CONFIG.journey_offers)
    assert calls[-1] == (sim.n_events, sim.n_events) and len(calls) == STATS_CONFIG.n_chunks
    truth = pd.read_parquet(out / "truth" / "customers.parquet")
    assert list(truth["customer_id"]) == list(dataset.customers["customer_id"])
    assert (out / "truth" / "products.parquet").exists()
    assert json.loads((out / "truth" / "config.json").read_text())["seed"] == STATS_CONFIG.seed


def test_streamed_run_writes_the_same_files_as_an_in_memory_one(tmp_path: Path) -> None:
    config = SimulatorConfig(n_customers=500, days=20, seed=2, chunk_size=200, n_products=200)
    calls: list[tuple[int, int]] = []
    streamed = stream_simulation(
        config, tmp_path / "streamed", progress=lambda d, t: calls.append((d, t))
    )
    in_memory = write_simulation(simulate(config), tmp_path / "in_memory")
    assert calls == [(200, 500), (400, 500), (500, 500)]
    for name in ("events", "customers", "offers", "truth/customers", "truth/campaigns"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(streamed / f"{name}.parquet"),
            pd.read_parquet(in_memory / f"{name}.parquet"),
        )
    load_dataset(streamed)


def test_tables_have_contract_types(sim: SimulatedRetailer, events: pd.DataFrame) -> None:
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert str(sim.customers["created_at"].dtype) == "datetime64[ns, UTC]"
    assert str(sim.products["launch_date"].dtype) == "datetime64[ns]"
    assert (sim.products["launch_date"] == sim.products["launch_date"].dt.normalize()).all()
    assert events["event_id"].is_unique
    assert events["decision_id"].isna().all()
    assert (sim.products["margin"] < sim.products["price"]).all()
    start, end = pd.Timestamp(STATS_CONFIG.start), pd.Timestamp(STATS_CONFIG.end)
    assert events["timestamp"].between(start, end, inclusive="left").all()
    created = events["customer_id"].map(sim.customers.set_index("customer_id")["created_at"])
    assert (events["timestamp"] >= created).all()


def test_event_columns_are_filled_where_they_make_sense(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    purchases = events[events["event_type"] == "purchase"]
    assert purchases["quantity"].notna().all() and (purchases["quantity"] >= 1).all()
    assert purchases["revenue"].notna().all() and (purchases["revenue"] >= 0).all()
    assert events.loc[events["event_type"] != "purchase", "revenue"].isna().all()
    with_props = events[events["properties"].notna()]
    assert set(with_props["event_type"]) == {"search", "loyalty_tier_reached", "purchase"}
    # a purchase carries a property only when its order is collected in store
    collected = with_props[with_props["event_type"] == "purchase"]["properties"]
    assert set(collected) == {'{"fulfilment": "click_collect"}'}
    pickups = events[events["event_type"] == "click_collect_pickup"]
    # only collected orders are picked up (some after the window ends)
    assert set(pickups["customer_id"]) <= set(events.loc[collected.index, "customer_id"])
    searches = events[events["event_type"] == "search"]
    assert searches["properties"].notna().all()
    assert all("query" in json.loads(p) for p in searches["properties"].head(200))
    assert events["properties"].isna().mean() > 0.9
    coupons = events[events["event_type"] == "coupon_redeemed"]
    assert coupons["offer_id"].notna().all() and len(coupons) > 0


def test_views_are_of_launched_products_and_early_adopters_like_new_ones(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    views = events[events["event_type"] == "product_view"]
    launch = views["product_id"].map(sim.products.set_index("product_id")["launch_date"])
    assert (launch.dt.tz_localize("UTC") <= views["timestamp"]).all()
    new = sim.truth.products.set_index("product_id")["is_new_collection"]
    late = views[views["timestamp"] >= pd.Timestamp(STATS_CONFIG.start) + pd.Timedelta(days=50)]
    share_new = late["product_id"].map(new).groupby(late["customer_id"]).mean()
    persona = sim.truth.customers.set_index("customer_id")["persona"]
    by_persona = share_new.groupby(persona.reindex(share_new.index)).mean()
    assert by_persona["early_adopter"] > 2 * by_persona["bargain_hunter"]


# ---------------------------------------------------------------- statistics against the config


def test_opt_in_shares_match_configured_rates(sim: SimulatedRetailer) -> None:
    customers = sim.customers
    app_user = sim.truth.customers["app_user"].to_numpy()
    for channel in CONSENT_CHANNELS:
        ever_opted_in = customers[f"consent_{channel.value}_at"].notna().to_numpy()
        rate = STATS_CONFIG.consent_rates.rate(channel)
        observed = (
            ever_opted_in[app_user].mean() if channel is Channel.PUSH else ever_opted_in.mean()
        )
        assert abs(observed - rate) < 0.03, (channel, observed, rate)
    assert not customers.loc[~app_user, "consent_push"].any()


def _returning_buyer_delays(events: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """Seconds from the last add-to-cart of a product to its online purchase, for buyers who
    came back in a later session (more than 30 minutes later), carts at least 8 days before ``end``."""
    carts = events.loc[
        events["event_type"] == "add_to_cart", ["customer_id", "product_id", "timestamp"]
    ]
    carts = carts.rename(columns={"timestamp": "cart_at"}).sort_values("cart_at")
    online = (events["event_type"] == "purchase") & events["channel"].isin(["web", "app"])
    bought = events.loc[online, ["customer_id", "product_id", "timestamp"]].sort_values("timestamp")
    pairs = pd.merge_asof(
        bought, carts, left_on="timestamp", right_on="cart_at", by=["customer_id", "product_id"]
    )
    delay = (pairs["timestamp"] - pairs["cart_at"]).dt.total_seconds()
    return delay[(delay > 30 * 60) & (pairs["cart_at"] < end - pd.Timedelta(days=8))]


def test_most_returning_cart_buyers_order_within_12_hours(events: pd.DataFrame) -> None:
    returning = _returning_buyer_delays(events, pd.Timestamp(STATS_CONFIG.end))
    assert len(returning) > 800
    within_12h = float((returning <= 12 * 3600 + 600).mean())
    assert abs(within_12h - STATS_CONFIG.cart_return_within_12h) < 0.05, within_12h


def test_cart_return_share_follows_the_config() -> None:
    config = SimulatorConfig(n_customers=1500, days=60, seed=3, cart_return_within_12h=0.3)
    returning = _returning_buyer_delays(simulate(config).events, pd.Timestamp(config.end))
    assert len(returning) > 150
    assert abs(float((returning <= 12 * 3600 + 600).mean()) - 0.3) < 0.1


def test_channel_mix_of_events_is_plausible(events: pd.DataFrame) -> None:
    share = events["channel"].value_counts(normalize=True)
    assert set(share.index) == {c.value for c in Channel}
    assert 0.15 < share["email"] < 0.45
    assert 0.3 < share["web"] + share["app"] < 0.7
    assert 0.02 < share["store"] < 0.15
    assert share["email"] > share["sms"] > share["postal"]
    assert share["call_centre"] < 0.01 and share["wallet"] < 0.01
    purchases = events[events["event_type"] == "purchase"]
    assert set(purchases["channel"]) == {"web", "app", "store"}


def test_no_message_after_consent_is_withdrawn(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    withdrawals = events[events["event_type"].isin(WITHDRAWALS)]
    assert len(withdrawals) > 50
    assert not withdrawals.duplicated(["customer_id", "channel"]).any()
    sent = events[events["event_type"] == "message_sent"]
    later = sent.merge(withdrawals, on=["customer_id", "channel"], suffixes=("", "_withdrawn"))
    assert len(later) > 0
    assert not (later["timestamp"] > later["timestamp_withdrawn"]).any()
    # and nothing is sent to customers who never opted in
    for channel in CONSENT_CHANNELS:
        never = set(
            sim.customers.loc[sim.customers[f"consent_{channel.value}_at"].isna(), "customer_id"]
        )
        assert not sent.loc[sent["channel"] == channel.value, "customer_id"].isin(never).any()


def test_final_consents_match_withdrawal_events(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    customers = sim.customers.set_index("customer_id")
    withdrawals = events[events["event_type"].isin(WITHDRAWALS)].set_index(
        ["customer_id", "channel"]
    )
    sms_withdrawals = events[events["event_type"] == "sms_stop"]
    assert (sms_withdrawals["channel"] == "sms").all()
    for channel in CONSENT_CHANNELS:
        ch = channel.value
        mine = (
            withdrawals.xs(ch, level="channel")["timestamp"]
            if ch in withdrawals.index.get_level_values(1)
            else pd.Series(dtype=object)
        )
        withdrawn = customers.index.isin(mine.index)
        assert not customers.loc[withdrawn, f"consent_{ch}"].any()
        assert (customers.loc[mine.index, f"consent_{ch}_at"] == mine).all()
        granted = customers[f"consent_{ch}"]
        assert customers.loc[granted, f"consent_{ch}_at"].notna().all()
        # opted out without a withdrawal event: never opted in
        assert customers.loc[~granted & ~withdrawn, f"consent_{ch}_at"].isna().all()


def test_new_customers_join_during_the_window_and_opt_in(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    created = sim.customers["created_at"]
    joined = created >= pd.Timestamp(STATS_CONFIG.start)
    assert abs(joined.mean() - STATS_CONFIG.new_customer_share) < 0.02
    opt_ins = events[events["event_type"] == "opt_in"]
    assert set(opt_ins["customer_id"]) <= set(sim.customers.loc[joined, "customer_id"])
    email_opted = sim.customers.loc[joined, "consent_email_at"].notna().sum()
    assert (opt_ins["channel"] == "email").sum() == email_opted


def test_lapsing_customers_go_quiet_after_their_lapse_day(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    truth = sim.truth.customers.set_index("customer_id")
    lapse = truth["lapse_day"].dropna()
    own = events[
        events["channel"].isin(["web", "app", "store"]) & events["customer_id"].isin(lapse.index)
    ]
    day = (own["timestamp"] - pd.Timestamp(STATS_CONFIG.start)).dt.days
    after = day >= own["customer_id"].map(lapse)
    per_day_before = (~after).sum() / float(lapse.sum())
    per_day_after = after.sum() / float((STATS_CONFIG.days - lapse).sum())
    assert per_day_after < 0.2 * per_day_before


def test_seasonal_customers_are_busier_in_their_months(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    truth = sim.truth.customers.set_index("customer_id")
    march = truth.index[(truth["season_month_1"] == 3).fillna(False).to_numpy()]
    others = truth.index[truth["season_month_1"].isna().to_numpy()]
    own = events[events["channel"].isin(["web", "app", "store"])]
    month = own["timestamp"].dt.month

    def ratio(ids: pd.Index) -> float:
        mine = own["customer_id"].isin(ids)
        return float((mine & (month == 3)).sum() / max((mine & (month == 2)).sum(), 1))

    assert ratio(march) > 2.0 * ratio(others)


def test_loyalty_tiers_only_go_up_and_end_where_the_events_say(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    reached = events[events["event_type"] == "loyalty_tier_reached"]
    assert len(reached) > 20
    tier = reached["properties"].map(lambda p: json.loads(p)["tier"])
    last = tier.groupby(reached["customer_id"]).last()
    final = sim.customers.set_index("customer_id")["loyalty_tier"]
    assert (final.loc[last.index] == last).all()
    order = ["none", "bronze", "silver", "gold", "platinum"]
    rank = tier.map(order.index)
    assert (rank.groupby(reached["customer_id"]).diff().dropna() > 0).all()
    members = sim.truth.customers.set_index("customer_id")["loyalty_member"]
    assert (final[~members] == "none").all() and (final[members] != "none").all()


def test_declared_preferences_mostly_match_the_truth(sim: SimulatedRetailer) -> None:
    declared = sim.customers["preferred_channel"]
    true = sim.truth.customers["preferred_channel"]
    given = declared.notna()
    assert 0.25 < given.mean() < 0.35
    assert (declared[given] == true[given]).mean() > 0.8
    hours = sim.customers["preferred_hours"].dropna()
    start = hours.str.split("-").str[0].astype(float) + 1.5
    peak = sim.truth.customers.loc[hours.index, "peak_hour_weekday"]
    assert np.median(_circular_distance(start.to_numpy(), peak.to_numpy())) < 1.0


# ---------------------------------------------------------------- ground truth is recoverable


def test_customers_open_more_on_their_preferred_channel(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    email = events[events["channel"] == "email"]
    delivered = email[email["event_type"] == "message_delivered"].groupby("customer_id").size()
    opened = email[email["event_type"] == "message_opened"].groupby("customer_id").size()
    preferred = sim.truth.customers.set_index("customer_id")["preferred_channel"]
    group = preferred.reindex(delivered.index) == "email"
    rate_pref = opened.reindex(delivered.index, fill_value=0)[group].sum() / delivered[group].sum()
    rate_other = (
        opened.reindex(delivered.index, fill_value=0)[~group].sum() / delivered[~group].sum()
    )
    assert rate_pref > 1.4 * rate_other


def test_local_activity_peaks_at_the_true_active_hours(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    own = events[
        events["channel"].isin(["web", "app"])
        & events["event_type"].isin(["product_view", "search"])
    ]
    own = _local_hours(own, sim.customers)
    weekday = own[own["local_weekday"] < 5]
    counts = weekday.groupby("customer_id").size()
    active = counts.index[counts >= 15]
    estimate = (
        weekday[weekday["customer_id"].isin(active)]
        .groupby("customer_id")["local_hour"]
        .agg(_circular_mean_hour)
    )
    truth = sim.truth.customers.set_index("customer_id").loc[estimate.index, "peak_hour_weekday"]
    distance = _circular_distance(estimate.to_numpy(), truth.to_numpy())
    shuffled = _circular_distance(
        estimate.to_numpy(), np.random.default_rng(0).permutation(truth.to_numpy())
    )
    assert len(active) > 300
    assert np.median(distance) < 1.5
    assert np.median(shuffled) > 3.0
    # local time, not UTC: customers in America peak at the same local hours
    zone = sim.customers.set_index("customer_id").loc[estimate.index, "timezone"]
    american = zone.str.startswith("America/").to_numpy()
    assert american.sum() > 20
    assert np.median(distance[american]) < 1.5


def test_message_opens_land_in_active_hours(sim: SimulatedRetailer, events: pd.DataFrame) -> None:
    opens = _local_hours(events[events["event_type"] == "message_opened"], sim.customers)
    truth = sim.truth.customers.set_index("customer_id")
    peak = np.where(
        opens["local_weekday"] >= 5,
        opens["customer_id"].map(truth["peak_hour_weekend"]),
        opens["customer_id"].map(truth["peak_hour_weekday"]),
    )
    sends = _local_hours(events[events["event_type"] == "message_sent"], sim.customers)
    send_peak = np.where(
        sends["local_weekday"] >= 5,
        sends["customer_id"].map(truth["peak_hour_weekend"]),
        sends["customer_id"].map(truth["peak_hour_weekday"]),
    )
    open_distance = np.median(_circular_distance(opens["local_hour"], peak))
    send_distance = np.median(_circular_distance(sends["local_hour"], send_peak))
    assert open_distance < 0.7 * send_distance


def test_purchased_categories_follow_true_tastes(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    purchases = events[events["event_type"] == "purchase"]
    category = purchases["product_id"].map(sim.products.set_index("product_id")["category"])
    truth = sim.truth.customers.set_index("customer_id")
    taste = np.array(
        [
            truth.at[c, f"taste_{k}"]
            for c, k in zip(purchases["customer_id"].head(3000), category.head(3000), strict=True)
        ]
    )
    # the taste of the category bought vs the taste of a random category
    assert taste.mean() > 3.0 / 12
    favourite = purchases["customer_id"].map(truth["favourite_category"])
    assert (favourite == category).mean() > 0.35


def test_promophiles_redeem_more_coupons(sim: SimulatedRetailer, events: pd.DataFrame) -> None:
    purchases = events[events["event_type"] == "purchase"]
    persona = purchases["customer_id"].map(sim.truth.customers.set_index("customer_id")["persona"])
    with_coupon = purchases["offer_id"].notna().groupby(persona).mean()
    assert with_coupon["promophile"] > 1.5 * with_coupon["loyal"]
    discounted = purchases[purchases["offer_id"].notna()]
    price = discounted["product_id"].map(sim.products.set_index("product_id")["price"])
    assert (discounted["revenue"] <= price * discounted["quantity"] + 1e-6).all()
    assert (discounted["revenue"] < price * discounted["quantity"] - 1e-6).mean() > 0.3


def test_online_orders_are_delivered_or_collected_later(events: pd.DataFrame) -> None:
    delivered = events[events["event_type"] == "order_delivered"]
    pickups = events[events["event_type"] == "click_collect_pickup"]
    assert len(pickups) > 0 and (pickups["channel"] == "store").all()
    assert set(delivered["channel"]) <= {"web", "app"}
    online = events[(events["event_type"] == "purchase") & events["channel"].isin(["web", "app"])]
    first_online = online.groupby("customer_id")["timestamp"].min()
    first_delivery = delivered.groupby("customer_id")["timestamp"].min()
    gap = (first_delivery - first_online.reindex(first_delivery.index)).dt.total_seconds() / 86400
    assert (gap >= 1.0).all() and gap.median() <= 6


# ---------------------------------------------------------------- the response model


def _paris_customers(sim: SimulatedRetailer, low: float, high: float) -> np.ndarray:
    truth = sim.truth.customers
    mask = (sim.customers["timezone"] == "Europe/Paris") & truth["peak_hour_weekday"].between(
        low, high
    )
    mask &= ~truth["created_in_window"]
    return np.flatnonzero(mask.to_numpy())


def test_response_probabilities_are_bounded_and_ordered(sim: SimulatedRetailer) -> None:
    rows = np.arange(500)
    for channel in CONSENT_CHANNELS:
        p = sim.response.probabilities(
            rows,
            channel,
            sim.config.start + dt.timedelta(days=20, hours=18),
            category="shoes",
            offer="O001",
        )
        for name in ("deliver", "open", "click", "convert", "purchase", "unsubscribe"):
            values = getattr(p, name)
            assert values.shape == (500,)
            assert ((values >= 0) & (values <= 1)).all()
        assert (p.click <= p.open + 1e-12).all() and (p.open <= p.deliver + 1e-12).all()
        assert (p.convert <= p.click + 1e-12).all() and (p.purchase >= p.convert - 1e-12).all()


def test_response_accepts_ids_and_per_customer_arrays(sim: SimulatedRetailer) -> None:
    ids = sim.customers["customer_id"].to_numpy()[:50]
    when = pd.Series([pd.Timestamp(sim.config.start) + pd.Timedelta(hours=h) for h in range(50)])
    by_id = sim.response.probabilities(
        ids, "email", when, product=sim.products["product_id"].iloc[:50]
    )
    by_row = sim.response.probabilities(
        np.arange(50), "email", when.to_numpy(), product=np.arange(50)
    )
    np.testing.assert_allclose(by_id.click, by_row.click)
    with pytest.raises(ValueError, match="in-app and on-site placements are not simulated"):
        sim.response.probabilities([0], "web", sim.config.start)
    with pytest.raises(ValueError, match="time-zone aware"):
        sim.response.probabilities([0], "email", dt.datetime(2026, 2, 1))


def test_response_rejects_unknown_message_options(sim: SimulatedRetailer) -> None:
    with pytest.raises(TypeError, match=r"unknown message option\(s\) \['categroy'\]"):
        sim.response.probabilities([0], "email", sim.config.start, categroy="shoes")  # type: ignore[call-arg]


def test_sending_in_active_hours_beats_four_in_the_morning(sim: SimulatedRetailer) -> None:
    evening = _paris_customers(sim, 18.5, 20.5)
    assert evening.size > 100
    tuesday = pd.Timestamp("2026-02-03", tz="Europe/Paris")
    for channel in ("email", "push", "sms"):
        at_peak = sim.response.probabilities(evening, channel, tuesday + pd.Timedelta(hours=19.5))
        at_four = sim.response.probabilities(evening, channel, tuesday + pd.Timedelta(hours=4))
        reachable = at_peak.deliver > 0
        assert (at_peak.open[reachable] > at_four.open[reachable]).all()
        assert at_peak.open.mean() > 1.3 * at_four.open.mean()
    quiet = sim.response.probabilities(evening, "sms", tuesday + pd.Timedelta(hours=4)).unsubscribe
    assert (
        quiet.mean()
        > sim.response.probabilities(
            evening, "sms", tuesday + pd.Timedelta(hours=19)
        ).unsubscribe.mean()
    )


def test_offer_raises_purchase_more_for_promophiles(sim: SimulatedRetailer) -> None:
    persona = sim.truth.customers["persona"].to_numpy()
    promophiles, loyal = np.flatnonzero(persona == "promophile"), np.flatnonzero(persona == "loyal")
    percent = sim.offers.loc[sim.offers["kind"] == "percent_discount", "offer_id"].iloc[0]
    when = sim.config.start + dt.timedelta(days=10, hours=17)
    uplift_promo = sim.response.offer_uplift(
        promophiles, "sms", when, percent, category="womenswear"
    )
    uplift_loyal = sim.response.offer_uplift(loyal, "sms", when, percent, category="womenswear")
    assert (uplift_promo.purchase >= 0).all()
    assert uplift_promo.purchase.mean() > 3 * uplift_loyal.purchase.mean()
    # loyal customers mostly buy anyway: the discount costs more margin than it brings
    assert uplift_loyal.margin.mean() < 0 < uplift_loyal.offer_cost.mean()
    content = sim.offers.loc[sim.offers["kind"] == "content", "offer_id"].iloc[0]
    np.testing.assert_allclose(
        sim.response.offer_uplift(promophiles, "sms", when, content).purchase, 0.0, atol=1e-12
    )


def test_taste_and_preferred_channel_drive_the_response(sim: SimulatedRetailer) -> None:
    truth = sim.truth.customers[~sim.truth.customers["created_in_window"]]
    rows = truth.index.to_numpy()
    when = sim.config.start + dt.timedelta(days=30, hours=11)
    favourite = sim.response.probabilities(
        rows, "email", when, category=truth["favourite_category"].to_numpy()
    )
    least = truth[[c for c in truth.columns if c.startswith("taste_")]].to_numpy().argmin(axis=1)
    disliked = sim.response.probabilities(rows, "email", when, category=least)
    reachable = favourite.deliver > 0
    assert (favourite.click[reachable] > disliked.click[reachable]).mean() > 0.99
    email_fans = truth["preferred_channel"].to_numpy() == "email"
    opens = sim.response.probabilities(rows, "email", when).open
    assert opens[email_fans].mean() > 1.5 * opens[~email_fans].mean()


def test_samples_agree_with_probabilities(sim: SimulatedRetailer) -> None:
    rows = np.repeat(np.arange(40), 2000)
    when = sim.config.start + dt.timedelta(days=12, hours=19)
    kwargs = {"category": "beauty", "offer": "O001", "kind": "promo"}
    p = sim.response.probabilities(rows, "email", when, **kwargs)
    s = sim.response.sample(np.random.default_rng(1), rows, "email", when, **kwargs)
    for name, drawn in (
        ("open", s.opened),
        ("click", s.clicked),
        ("purchase", s.purchased),
        ("unsubscribe", s.unsubscribed),
    ):
        expected = getattr(p, name).sum()
        assert abs(drawn.sum() - expected) < 4 * np.sqrt(expected) + 5, name
    assert not (s.clicked & ~s.opened).any() and not (s.converted & ~s.clicked).any()


def test_history_open_rates_match_the_response_model(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    sent = events[(events["event_type"] == "message_sent") & (events["channel"] == "email")]
    sent = sent.sort_values(["customer_id", "timestamp"])
    all_sent = events[events["event_type"] == "message_sent"].sort_values(
        ["customer_id", "timestamp"]
    )
    # messages in the previous 7 days, any channel (the fatigue the history used)
    key = all_sent["customer_id"].str[1:].astype(np.int64).to_numpy() * 10**7 + (
        (all_sent["timestamp"] - pd.Timestamp(STATS_CONFIG.start))
        .dt.total_seconds()
        .to_numpy()
        .astype(np.int64)
        + 8 * 86400
    )
    recent_all = np.arange(key.size) - np.searchsorted(key, key - 7 * 86400)
    recent = pd.Series(recent_all, index=all_sent.index).loc[sent.index].to_numpy()
    rows = sim.response.customer_rows(sent["customer_id"].to_numpy())
    p = sim.response.probabilities(
        rows, "email", sent["timestamp"], kind="newsletter", recent_contacts=recent
    )
    observed = (events["event_type"] == "message_opened") & (events["channel"] == "email")
    assert abs(observed.sum() / p.open.sum() - 1.0) < 0.05


def test_history_buys_at_the_rate_the_response_model_expects(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    purchases = events[events["event_type"] == "purchase"]
    orders = purchases.drop_duplicates(["customer_id", "timestamp"])
    everyone = np.arange(STATS_CONFIG.n_customers)
    for day in (10, 45, 75):
        since = pd.Timestamp(STATS_CONFIG.start) + pd.Timedelta(days=day)
        week = orders[
            (orders["timestamp"] >= since) & (orders["timestamp"] < since + pd.Timedelta(days=7))
        ]
        expected = sim.response.baseline(everyone, since).orders.sum()
        # organic orders as expected, plus a few caused by messages
        assert 0.9 < len(week) / expected < 1.25, (day, len(week), expected)


def test_baseline_and_message_value(sim: SimulatedRetailer) -> None:
    rows = np.arange(1000)
    when = sim.config.start + dt.timedelta(days=25, hours=18)
    base = sim.response.baseline(rows, when)
    value = sim.response.expected_value(rows, "email", when, category="shoes")
    assert (value.purchase >= base.purchase - 1e-12).all()
    assert (value.orders >= base.orders).all()
    assert value.contact_cost.min() > 0
    lapsed = sim.truth.customers["lapse_day"].fillna(10**6).to_numpy()[rows] < 20
    assert base.purchase[lapsed].mean() < 0.5 * base.purchase[~lapsed].mean()


# ---------------------------------------------------------------- the marketing playbook's truth


def test_triggered_messages_are_worth_many_campaigns_as_omnisend_reports(
    sim: SimulatedRetailer,
) -> None:
    """In the playbook world (the sourced relevance cap), orders per delivered e-mail,
    relative to a campaign about the same category, follow Omnisend's click and
    click-to-conversion ratios (cart 6.4x, browse 10.2x, welcome 5.9x, post-purchase 3.7x,
    lapsed 1.5x), and a message about the favourite category orders about 1.36x an
    untargeted one (segmented vs unsegmented campaigns), not several times as by default."""
    truth = sim.truth.customers[~sim.truth.customers["created_in_window"]]
    rows = truth.index.to_numpy()
    when = sim.config.start + dt.timedelta(days=30, hours=11)
    favourite = truth["favourite_category"].to_numpy()
    fresh = sim.response.with_history(None)  # reminders answered as an hour-old cart
    sourced = dataclasses.replace(
        sim.config,
        response=dataclasses.replace(sim.config.response, max_affinity=SOURCED_MAX_AFFINITY),
    )
    model = ResponseModel(
        fresh.world,
        fresh.catalogue,
        fresh.offers,
        fresh.clock,
        sourced,
        fresh.customer_ids,
        fresh.lookup.product_index.to_numpy(dtype=object),
        fresh.lookup.offer_index.to_numpy(dtype=object),
    )

    def orders(kind: str, category: object = None) -> float:
        p = model.probabilities(rows, "email", when, kind=kind, category=category)
        return float(p.convert.sum() / p.deliver.sum())

    campaign = orders("promo", favourite)
    expected = {
        "cart_reminder": 5.80 * 20.44,
        "browse_reminder": 8.49 * 22.18,
        "welcome": 5.63 * 19.48,
        "post_purchase": 4.97 * 13.77,
        "reactivation": 2.60 * 10.82,
    }
    for kind, rate in expected.items():
        ratio = orders(kind, favourite) / campaign
        assert ratio == pytest.approx(rate / (1.47 * 12.58), rel=0.05), kind
    assert 1.2 < campaign / orders("promo") < 1.5
    default = fresh.probabilities(rows, "email", when, kind="promo", category=favourite)
    assert default.convert.sum() / default.deliver.sum() > 2 * campaign


def _quiet_after(events: pd.DataFrame, kinds: set[str], hours: float) -> pd.DataFrame:
    """Events of ``kinds`` followed by no event of the customer within ``hours``, by time."""
    ordered = events.sort_values(["customer_id", "timestamp"])
    gap = ordered.groupby("customer_id")["timestamp"].shift(-1) - ordered["timestamp"]
    quiet = gap.isna() | (gap > pd.Timedelta(hours=hours))
    return ordered[ordered["event_type"].isin(kinds) & quiet]


def _per_open(p: object) -> np.ndarray:
    """Conversions per open: what a message's moment changes, with the send hour factored out."""
    return np.asarray(p.convert) / np.maximum(np.asarray(p.open), 1e-12)  # type: ignore[attr-defined]


def _median_ratio(a: object, b: object) -> float:
    """Median over messages of conversions per open under ``a`` over those under ``b``."""
    top, bottom = _per_open(a), _per_open(b)
    both = (top > 0) & (bottom > 0)
    return float(np.median(top[both] / bottom[both]))


def test_cart_reminders_convert_more_at_one_hour_than_at_thirty(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    effects = sim.config.effects
    carts = _quiet_after(events, {"add_to_cart"}, 31)
    carts = carts[carts["timestamp"] < pd.Timestamp(sim.config.end) - pd.Timedelta(hours=31)]
    assert len(carts) > 300
    rows = sim.response.customer_rows(carts["customer_id"].to_numpy())
    added = carts["timestamp"].reset_index(drop=True)
    in_cart = carts["product_id"].to_numpy()

    def remind(at: pd.Series) -> object:
        return sim.response.probabilities(rows, "email", at, kind="cart_reminder", product=in_cart)

    at_1h = remind(added + pd.Timedelta(hours=1))
    at_30h = remind(added + pd.Timedelta(hours=30))
    configured = 30.0**-effects.cart_decay_exponent  # SaleCycle's 6.33 % -> 1.74 % at 24 h
    np.testing.assert_allclose(_median_ratio(at_30h, at_1h), configured, rtol=0.05)
    # many draws agree: conversions per open fall by about the configured ratio
    draws = 40
    many = np.repeat(rows, draws)
    product = np.repeat(in_cart, draws)
    outcome = {}
    for hours in (1, 30):
        when = np.repeat((added + pd.Timedelta(hours=hours)).to_numpy(), draws)
        s = sim.response.sample(
            np.random.default_rng(hours), many, "email", when, kind="cart_reminder", product=product
        )
        outcome[hours] = s.converted.sum() / s.opened.sum()
    assert outcome[1] > 2.5 * outcome[30]
    assert 0.6 * configured < outcome[30] / outcome[1] < 1.5 * configured
    # a reminder about a product the customer no longer has in the cart is stale
    gone = remind(added - pd.Timedelta(hours=1))
    assert _median_ratio(gone, at_1h) < 0.2


def test_browse_reminders_follow_browse_recency_and_intensity(
    sim: SimulatedRetailer, events: pd.DataFrame
) -> None:
    views = _quiet_after(events, {"product_view"}, 48)
    views = views[views["timestamp"] < pd.Timestamp(sim.config.end) - pd.Timedelta(hours=48)]
    rows = sim.response.customer_rows(views["customer_id"].to_numpy())
    seen = views["timestamp"].reset_index(drop=True)

    def moment_factor(hours: float) -> np.ndarray:
        when = seen + pd.Timedelta(hours=hours)
        browse = sim.response.probabilities(rows, "push", when, kind="browse_reminder")
        promo = sim.response.probabilities(rows, "push", when, kind="promo")
        return _per_open(browse) / _per_open(promo)  # customer traits cancel out

    soon, late = moment_factor(1), moment_factor(48)
    assert np.median(soon / late) > 3
    start = pd.Timestamp(sim.config.start)

    def key(customer: pd.Series, at: pd.Series) -> np.ndarray:
        seconds = (at - start).dt.total_seconds().to_numpy().astype(np.int64) + 10**7
        return customer.str[1:].astype(np.int64).to_numpy() * 10**8 + seconds

    everything = events[events["event_type"] == "product_view"]
    keys = np.sort(key(everything["customer_id"], everything["timestamp"]))
    at = key(views["customer_id"].reset_index(drop=True), seen)
    counts_arr = np.searchsorted(keys, at, "right") - np.searchsorted(keys, at - 23 * 3600, "right")
    heavy, light = soon[counts_arr >= 8], soon[counts_arr <= 2]
    assert heavy.size > 20 and light.size > 20
    assert np.median(heavy) > 1.5 * np.median(light)


def test_birthday_messages_work_in_the_birthday_window(sim: SimulatedRetailer) -> None:
    truth = sim.truth.customers
    rows = np.flatnonzero(~truth["created_in_window"].to_numpy())[:1500]
    birth = pd.to_datetime(truth["birth_date"].to_numpy()[rows])
    year = pd.Timestamp(sim.config.start).year
    day = pd.to_datetime({"year": year, "month": birth.month, "day": np.minimum(birth.day, 28)})
    at_birthday = pd.Series(day).dt.tz_localize("UTC") + pd.Timedelta(hours=18)
    away = at_birthday + pd.Timedelta(days=120)
    inside = sim.response.probabilities(rows, "email", at_birthday, kind="birthday")
    outside = sim.response.probabilities(rows, "email", away, kind="birthday")
    # Experian: birthday e-mails convert 5.81x promotions; off the window, half the response
    assert _median_ratio(inside, outside) > 4


def test_seasonal_buyers_answer_in_and_just_before_their_months(sim: SimulatedRetailer) -> None:
    truth = sim.truth.customers
    seasonal = truth["season_month_1"].notna().to_numpy() & ~truth["created_in_window"].to_numpy()
    rows = np.flatnonzero(seasonal)
    month = truth["season_month_1"].to_numpy()[rows].astype(int)
    before = pd.Series(
        pd.to_datetime({"year": 2026, "month": month, "day": 1}) - pd.Timedelta(days=14)
    ).dt.tz_localize("UTC")
    off = before + pd.Timedelta(days=90)  # two months after the first month: out of season
    lead = sim.response.probabilities(rows, "email", before, kind="promo", category="shoes")
    later = sim.response.probabilities(rows, "email", off, kind="promo", category="shoes")
    effects = sim.config.effects
    expected = effects.season_response_lift / effects.season_off_response
    np.testing.assert_allclose(_median_ratio(lead, later), expected, rtol=0.1)


def test_early_adopters_answer_launches(sim: SimulatedRetailer) -> None:
    early = sim.truth.customers["early_adopter"].to_numpy()
    rows = np.arange(2000)
    when = sim.config.start + dt.timedelta(days=40, hours=18)
    launch = sim.response.probabilities(rows, "email", when, kind="new_collection").click
    promo = sim.response.probabilities(rows, "email", when, kind="promo").click
    lift = (launch / np.maximum(promo, 1e-12))[promo > 0]
    keen = early[rows][promo > 0]
    assert np.median(lift[keen > 0.6]) > 2 * np.median(lift[keen < 0.2])


def test_discount_uplift_is_not_a_function_of_promo_sensitivity_and_value(
    sim: SimulatedRetailer,
) -> None:
    truth = sim.truth.customers
    rows = np.flatnonzero(~truth["created_in_window"].to_numpy())
    percent = sim.offers[sim.offers["kind"] == "percent_discount"].sort_values("value")
    small, large = percent["offer_id"].iloc[0], percent["offer_id"].iloc[-1]
    when = sim.config.start + dt.timedelta(days=30, hours=18)
    promo = truth["promo_sensitivity"].to_numpy()[rows]
    for offer in (small, large):
        uplift = sim.response.offer_uplift(rows, "email", when, offer, category="shoes").purchase
        # the best any rule on promo sensitivity x value can do: the mean uplift per fine bin
        bins = pd.qcut(promo, 40, labels=False, duplicates="drop")
        rule = pd.Series(uplift).groupby(bins).transform("mean").to_numpy()
        explained = 1.0 - np.var(uplift - rule) / np.var(uplift)
        assert explained < 0.7, (offer, explained)
    # who a discount moves depends on its size: not the same customers, rescaled
    u_small = sim.response.offer_uplift(rows, "email", when, small, category="shoes").purchase
    u_large = sim.response.offer_uplift(rows, "email", when, large, category="shoes").purchase
    assert pd.Series(u_small).corr(pd.Series(u_large), method="spearman") < 0.9


def test_fatigue_lowers_response_and_raises_unsubscribes_more_on_sms_and_calls(
    sim: SimulatedRetailer,
) -> None:
    rows = np.arange(1000)
    when = sim.config.start + dt.timedelta(days=30, hours=12)
    change = {}
    for channel in ("email", "sms", "call_centre"):
        rested = sim.response.probabilities(rows, channel, when, recent_contacts=0)
        tired = sim.response.probabilities(rows, channel, when, recent_contacts=4)
        reachable = rested.deliver > 0
        assert (tired.open[reachable] < rested.open[reachable]).all()
        assert (tired.unsubscribe[reachable] > rested.unsubscribe[reachable]).all()
        opens = tired.open[reachable].sum() / rested.open[reachable].sum()
        unsubscribes = tired.unsubscribe[reachable].sum() / rested.unsubscribe[reachable].sum()
        change[channel] = (opens, unsubscribes)
    for intrusive in ("sms", "call_centre"):
        assert change[intrusive][0] < change["email"][0]
        assert change[intrusive][1] > change["email"][1]
    # many draws agree: four recent contacts lose opens and gain withdrawals on SMS
    many = np.repeat(rows, 30)
    rested_draw = sim.response.sample(np.random.default_rng(4), many, "sms", when)
    tired_draw = sim.response.sample(np.random.default_rng(5), many, "sms", when, recent_contacts=4)
    assert tired_draw.unsubscribed.sum() > 1.5 * rested_draw.unsubscribed.sum()


def test_an_unsubscribe_costs_future_value_and_sms_costs_tens_of_emails(
    sim: SimulatedRetailer,
) -> None:
    rows = np.arange(1000)
    when = sim.config.start + dt.timedelta(days=30, hours=12)
    rested = sim.response.expected_value(rows, "sms", when)
    tired = sim.response.expected_value(rows, "sms", when, recent_contacts=5)
    assert (rested.unsubscribe_cost >= 0).all() and rested.unsubscribe_cost.mean() > 0
    assert tired.unsubscribe_cost.mean() > 1.5 * rested.unsubscribe_cost.mean()
    p = sim.response.probabilities(rows, "sms", when)
    engaged = sim.truth.customers["open_sms"].to_numpy()[rows]
    cost_per_withdrawal = rested.unsubscribe_cost / np.maximum(p.unsubscribe, 1e-12)
    assert pd.Series(cost_per_withdrawal).corr(pd.Series(engaged)) > 0.5
    email = sim.response.expected_value(rows, "email", when)
    assert rested.contact_cost[0] >= 10 * email.contact_cost[0]


def test_customers_differ_enough_that_the_choice_matters(sim: SimulatedRetailer) -> None:
    truth = sim.truth.customers
    rows = np.flatnonzero(~truth["created_in_window"].to_numpy())[:600]
    spread = option_spread(sim, rows, sim.config.start + dt.timedelta(days=60))
    summary = spread.summary()
    assert summary["spread_mean"] > summary["best"] > 0
    # the best option per customer beats a fixed rule by far (x 1.57 before the playbook's
    # effects, x 2.17 with them, on this data set)
    assert summary["personalisation_gain"] > 0.9, summary


def test_a_thirteen_month_history_shows_seasonal_buying() -> None:
    config = SimulatorConfig(n_customers=800, days=400, seed=5, n_products=300)
    sim = simulate(config)
    events = sim.events
    span = events["timestamp"].max() - events["timestamp"].min()
    assert span > pd.Timedelta(days=395)
    buys = events[events["event_type"] == "purchase"].drop_duplicates(["customer_id", "timestamp"])
    truth = sim.truth.customers.set_index("customer_id")
    seasonal = truth[truth["season_month_1"].notna()]
    buys = buys[buys["customer_id"].isin(seasonal.index)]
    month = buys["timestamp"].dt.month.to_numpy()
    first = seasonal["season_month_1"].reindex(buys["customer_id"]).to_numpy(dtype=int)
    second = seasonal["season_month_2"].reindex(buys["customer_id"]).to_numpy(dtype=int)
    in_season = ((month == first) | (month == second)).mean()
    # two months of thirteen (~15 % of the time) hold most of a seasonal buyer's orders
    assert in_season > 0.4, in_season
