"""The decision engine end to end: every reason code, the journey scenarios of the product
brief on the example catalog, determinism, explanations, logging, budgets, baselines."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from nba.actions import ActionType
from nba.arbitration import BetaPosterior
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.budgets import UsageCounts
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy, ContactPolicyError, parse_contact_policy
from nba.context import CustomerContext, Session
from nba.decision import Decision, LoggedDecision
from nba.engine import NextBestActionPolicy
from nba.policy import DecisionPolicy
from nba.profile import (
    ChannelEngagement,
    ContactHistory,
    CustomerProfile,
    JourneyPhase,
    LifecycleState,
)
from nba.reasons import ReasonCode
from nba.scoring import ActionScore, RuleBasedScorer, Scorer, ScoringError
from nba.screening import ActionCandidate, Restriction

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"
UTC = dt.UTC
ALL = {c: True for c in Channel}
# Wednesday 4 March 2026, 15:00 in Paris
NOW = dt.datetime(2026, 3, 4, 14, 0, tzinfo=UTC)


def retailer() -> Catalog:
    return parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())


def retailer_policy() -> ContactPolicy:
    return parse_contact_policy((EXAMPLES / "contact_policy.yaml").read_text())


def profile(**fields: object) -> CustomerProfile:
    fields.setdefault("timezone", "Europe/Paris")
    fields.setdefault("consents", ALL)
    fields.setdefault("days_since_last_visit", 1.0)
    return CustomerProfile("C1", **fields)  # type: ignore[arg-type]


def context(
    now: dt.datetime = NOW,
    session: Session | None = None,
    history: dict[str, dt.datetime] | None = None,
    **fields: object,
) -> CustomerContext:
    return CustomerContext(profile(**fields), now, session, history or {})


def catalog(*actions: str) -> Catalog:
    return parse_catalog("actions:\n" + "\n".join(f"  - {a}" for a in actions))


def engine(cat: Catalog, **kwargs: object) -> NextBestActionPolicy:
    kwargs.setdefault("exploration", False)
    return NextBestActionPolicy(cat, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- every reason code

Scenario = Callable[[], tuple[Decision, str, Channel | None]]


def _decide(cat: Catalog, ctx: CustomerContext, **kwargs: object) -> Decision:
    usage = kwargs.pop("usage", None)
    return engine(cat, **kwargs).decide(ctx, usage=usage)  # type: ignore[arg-type]


SIMPLE = "{id: a, type: content, channels: [email], value: 10}"


def _outside_validity() -> tuple[Decision, str, Channel | None]:
    cat = catalog("{id: a, type: content, channels: [email], valid_to: 2026-01-01T00:00:00Z}")
    return _decide(cat, context()), "a", None


def _not_eligible() -> tuple[Decision, str, Channel | None]:
    return (
        _decide(
            catalog("{id: a, type: content, channels: [email], eligibility: 'cart_size > 0'}"),
            context(),
        ),
        "a",
        None,
    )


def _action_cooldown() -> tuple[Decision, str, Channel | None]:
    cat = catalog("{id: a, type: content, channels: [email], cooldown_hours: 48}")
    return _decide(cat, context(history={"a": NOW - dt.timedelta(hours=10)})), "a", None


def _offer_held() -> tuple[Decision, str, Channel | None]:
    cat = catalog(
        "{id: d, type: offer, channels: [email], offer: {id: ten, kind: percent_discount, "
        "value: 10, cost: 3, expires_after_hours: 48}}",
        "{id: s, type: offer, channels: [email], offer: {id: ship, kind: free_shipping, "
        "value: 0, cost: 4}}",
    )
    return _decide(cat, context(history={"d": NOW - dt.timedelta(hours=20)})), "s", None


def _budget() -> tuple[Decision, str, Channel | None]:
    cat = catalog(
        "{id: a, type: offer, channels: [email], offer: {id: o, kind: content, value: 1, daily_budget: 5}}"
    )
    return _decide(cat, context(), usage=UsageCounts(offers_given={"o": 5})), "a", None


def _volume() -> tuple[Decision, str, Channel | None]:
    cat = catalog("{id: a, type: content, channels: [email], daily_volume: 3}")
    return _decide(cat, context(), usage=UsageCounts(actions_sent={"a": 3})), "a", None


def _no_consent() -> tuple[Decision, str, Channel | None]:
    return _decide(catalog(SIMPLE), context(consents={Channel.EMAIL: False})), "a", Channel.EMAIL


def _channel_unavailable() -> tuple[Decision, str, Channel | None]:
    return _decide(catalog("{id: a, type: content, channels: [web]}"), context()), "a", Channel.WEB


def _refusal() -> tuple[Decision, str, Channel | None]:
    history = ContactHistory(last_refusal_at={Channel.EMAIL: NOW - dt.timedelta(days=3)})
    return _decide(catalog(SIMPLE), context(contacts=history)), "a", Channel.EMAIL


def _too_recent() -> tuple[Decision, str, Channel | None]:
    history = ContactHistory(last_contact_at={Channel.EMAIL: NOW - dt.timedelta(hours=1)})
    policy = parse_contact_policy("channels: {email: {min_gap_hours: 48}}")
    cat = catalog("{id: a, type: content, channels: [email], ttl_hours: 12}")
    return _decide(cat, context(contacts=history), contact_policy=policy), "a", Channel.EMAIL


def _cap(field: str, channel: Channel, count: int) -> Scenario:
    def scenario() -> tuple[Decision, str, Channel | None]:
        history = ContactHistory(**{field: {channel: count}})  # type: ignore[arg-type]
        cat = catalog("{id: a, type: content, channels: [email, sms, postal, call_centre]}")
        return _decide(cat, context(contacts=history)), "a", channel

    return scenario


def _total(field: str, count: int) -> Scenario:
    def scenario() -> tuple[Decision, str, Channel | None]:
        history = ContactHistory(**{field: {Channel.PUSH: count}})  # type: ignore[arg-type]
        policy = parse_contact_policy("channels: {push: {cap_1d: null, cap_7d: null}}")
        return (
            _decide(catalog(SIMPLE), context(contacts=history), contact_policy=policy),
            "a",
            Channel.EMAIL,
        )

    return scenario


def _fatigue() -> tuple[Decision, str, Channel | None]:
    history = ContactHistory(contacts_7d={Channel.PUSH: 5})
    engagement = {Channel.EMAIL: ChannelEngagement(sent=20, opened=0, open_rate=0.01)}
    policy = parse_contact_policy("cap_7d: null\nchannels: {push: {cap_7d: null}}")
    ctx = context(contacts=history, engagement=engagement)
    return _decide(catalog(SIMPLE), ctx, contact_policy=policy), "a", Channel.EMAIL


def _no_slot() -> tuple[Decision, str, Channel | None]:
    now = dt.datetime(2026, 3, 7, 19, 30, tzinfo=UTC)  # Saturday 20:30 in Paris
    cat = catalog("{id: a, type: content, channels: [sms], ttl_hours: 12}")
    return _decide(cat, context(now)), "a", Channel.SMS


def _uplift() -> tuple[Decision, str, Channel | None]:
    cat = catalog(
        "{id: a, type: offer, channels: [email], min_uplift: 0.05, offer: {id: o, kind: percent_discount, value: 10}}"
    )
    return _decide(cat, context(promo_sensitivity=0.0)), "a", Channel.EMAIL


def _other_channel() -> tuple[Decision, str, Channel | None]:
    cat = catalog("{id: a, type: content, channels: [email, postal], value: 10}")
    return _decide(cat, context()), "a", Channel.POSTAL


def _exclusive() -> tuple[Decision, str, Channel | None]:
    cat = catalog(
        "{id: a, type: content, channels: [email], value: 10, group: g}",
        "{id: b, type: content, channels: [push], value: 5, group: g}",
    )
    return _decide(cat, context(), max_actions=2), "b", None


def _lost() -> tuple[Decision, str, Channel | None]:
    cat = catalog(
        "{id: a, type: content, channels: [email], value: 10}",
        "{id: b, type: content, channels: [email], value: 1}",
    )
    return _decide(cat, context()), "b", None


def _not_requested() -> tuple[Decision, str, Channel | None]:
    cat = catalog(SIMPLE, "{id: b, type: content, channels: [email], value: 100}")
    only_a = Restriction(action_ids=frozenset({"a"}))
    return engine(cat).decide(context(), restriction=only_a), "b", None


REASON_SCENARIOS: dict[ReasonCode, Scenario] = {
    ReasonCode.NOT_REQUESTED: _not_requested,
    ReasonCode.OUTSIDE_VALIDITY: _outside_validity,
    ReasonCode.NOT_ELIGIBLE: _not_eligible,
    ReasonCode.ACTION_COOLDOWN: _action_cooldown,
    ReasonCode.OFFER_HELD: _offer_held,
    ReasonCode.BUDGET_EXHAUSTED: _budget,
    ReasonCode.VOLUME_LIMIT: _volume,
    ReasonCode.NO_CONSENT: _no_consent,
    ReasonCode.CHANNEL_UNAVAILABLE: _channel_unavailable,
    ReasonCode.REFUSAL_COOLDOWN: _refusal,
    ReasonCode.CONTACT_TOO_RECENT: _too_recent,
    ReasonCode.CHANNEL_DAILY_CAP: _cap("contacts_1d", Channel.EMAIL, 1),
    ReasonCode.CHANNEL_WEEKLY_CAP: _cap("contacts_7d", Channel.SMS, 2),
    ReasonCode.CHANNEL_30_DAY_CAP: _cap("contacts_30d", Channel.POSTAL, 2),
    ReasonCode.TOTAL_DAILY_CAP: _total("contacts_1d", 3),
    ReasonCode.TOTAL_WEEKLY_CAP: _total("contacts_7d", 8),
    ReasonCode.FATIGUE: _fatigue,
    ReasonCode.NO_SEND_SLOT: _no_slot,
    ReasonCode.UPLIFT_TOO_LOW: _uplift,
    ReasonCode.OTHER_CHANNEL_PREFERRED: _other_channel,
    ReasonCode.EXCLUSIVE_GROUP: _exclusive,
    ReasonCode.LOST_ARBITRATION: _lost,
}


def test_channel_restriction_keeps_only_the_asked_channel() -> None:
    cat = catalog("{id: a, type: content, channels: [email, sms], value: 10}")
    ctx = context()
    free = engine(cat, exploration=False).decide(ctx)
    assert {a.channel for a in free.contacts} <= {Channel.EMAIL, Channel.SMS}
    for channel in (Channel.EMAIL, Channel.SMS):
        asked = Restriction(channels=frozenset({channel}))
        decision = engine(cat, exploration=False).decide(ctx, restriction=asked)
        assert [a.channel for a in decision.contacts] == [channel]
        other = ({Channel.EMAIL, Channel.SMS} - {channel}).pop()
        [refused] = [r for r in decision.rejections if r.channel == other]
        assert refused.code == ReasonCode.NOT_REQUESTED and channel.value in refused.message
    push_only = engine(cat).decide(ctx, restriction=Restriction(channels=frozenset({Channel.PUSH})))
    assert push_only.contacts == ()


def test_every_reason_code_has_a_scenario() -> None:
    assert set(REASON_SCENARIOS) == set(ReasonCode)


@pytest.mark.parametrize("code", list(ReasonCode), ids=str)
def test_reason_code(code: ReasonCode) -> None:
    decision, action_id, channel = REASON_SCENARIOS[code]()
    found = [r for r in decision.rejections if r.action_id == action_id and r.code == code]
    assert found, f"{code} not among {[str(r) for r in decision.rejections]}"
    assert found[0].channel == channel
    assert found[0].message  # a human message
    assert code.stage in ("eligibility", "consent", "contact_policy", "scoring", "arbitration")
    # the filtered action is never chosen on the filtered channel
    for chosen in decision.actions:
        if code.is_filter:
            assert not (
                chosen.action_id == action_id and (channel is None or chosen.channel == channel)
            )
    # the explanation tells it: among the rejected, or beside the chosen action's channel
    listed = {r.action_id for r in decision.explanation.rejected}
    text = str(decision.explanation)
    assert action_id in listed or code.value in text or found[0].message in text


def test_unknown_birthday_is_not_eligible_rather_than_a_crash() -> None:
    decision = engine(retailer()).decide(context(days_to_birthday=None))
    [reason] = [r for r in decision.rejections if r.action_id == "birthday"]
    assert reason.code == ReasonCode.NOT_ELIGIBLE and "unknown" in reason.message


# ---------------------------------------------------------------- journey scenarios


def eligible(decision: Decision) -> set[str]:
    return set(decision.eligible_action_ids)


CART = {
    "cart_items": ("P1",),
    "cart_value": 90.0,
    "lifecycle_state": LifecycleState.ACTIVE,
    "journey_phase": JourneyPhase.DECISION,
    "purchases_total": 2,
    "hours_since_last_purchase": 400.0,
}


def test_abandoned_cart_first_reminder_within_hours_without_discount() -> None:
    decision = engine(retailer(), contact_policy=retailer_policy()).decide(
        context(cart_age_hours=2.0, **CART)
    )
    [chosen] = decision.actions
    assert chosen.action_id == "cart_reminder_1" and chosen.offer_id is None
    assert chosen.send_at is not None and chosen.send_at - NOW <= dt.timedelta(hours=6)
    assert "cart_reminder_2_discount" not in eligible(decision)


def test_abandoned_cart_discount_only_later_and_only_for_customers_it_moves() -> None:
    history = {"cart_reminder_1": NOW - dt.timedelta(hours=26)}
    cat, policy = retailer(), retailer_policy()
    movable = engine(cat, contact_policy=policy).decide(
        context(history=history, cart_age_hours=28.0, promo_sensitivity=0.9, **CART)
    )
    [chosen] = movable.actions
    assert chosen.action_id == "cart_reminder_2_discount"
    assert chosen.offer_id == "cart_10pct_48h"
    assert chosen.offer_expires_at == chosen.send_at + dt.timedelta(hours=48)  # time-limited
    assert movable.consumed.offers_given == {"cart_10pct_48h": 1}

    loyal = engine(cat, contact_policy=policy).decide(
        context(history=history, cart_age_hours=28.0, promo_sensitivity=0.05, **CART)
    )
    assert loyal.actions[0].action_id == "cart_reminder_2"  # reminded, no discount
    assert ReasonCode.UPLIFT_TOO_LOW in loyal.reasons("cart_reminder_2_discount")


def test_abandoned_cart_stops_once_they_buy() -> None:
    bought = context(cart_age_hours=5.0, **{**CART, "hours_since_last_purchase": 1.0})
    decision = engine(retailer()).decide(bought)
    assert not eligible(decision) & {
        "cart_reminder_1",
        "cart_reminder_2",
        "cart_reminder_2_discount",
    }
    assert decision.reasons("cart_reminder_1") == (ReasonCode.NOT_ELIGIBLE,)


def test_browse_abandonment_the_same_evening() -> None:
    now = dt.datetime(2026, 3, 6, 13, 0, tzinfo=UTC)  # Friday 14:00 in Paris
    cat = Catalog([retailer()["browse_reminder_evening"]])
    ctx = context(
        now,
        browsed_products=("black_trousers",),
        browse_minutes_24h=20.0,
        hours_since_last_browse=0.5,
    )
    [chosen] = engine(cat).decide(ctx).actions
    assert chosen.send_at_local is not None
    assert (
        chosen.send_at_local.date() == dt.date(2026, 3, 6) and 18 <= chosen.send_at_local.hour < 22
    )


def test_welcome_series() -> None:
    cat = retailer()
    new = {"lifecycle_state": LifecycleState.NEW, "days_since_sign_up": 0.5}
    first = engine(cat).decide(context(**new))
    assert "welcome_1" in eligible(first) and "welcome_2" not in eligible(first)
    later = {"lifecycle_state": LifecycleState.NEW, "days_since_sign_up": 4.0}
    second = engine(cat).decide(
        context(history={"welcome_1": NOW - dt.timedelta(hours=80)}, **later)
    )
    assert "welcome_2" in eligible(second) and "welcome_1" not in eligible(second)


def test_birthday_and_loyalty_milestones() -> None:
    decision = engine(retailer()).decide(
        context(days_to_birthday=2, days_since_loyalty_tier=1.0, loyalty_tier="gold")
    )
    assert {"birthday", "loyalty_tier_reached"} <= eligible(decision)


def test_seasonal_anticipation_one_month_ahead() -> None:
    seasonal = {"seasonal_months": (4, 10), "days_since_last_purchase": 60.0, "purchases_total": 4}
    march = engine(retailer()).decide(context(**seasonal))
    assert "seasonal_anticipation" in eligible(march)
    may = engine(retailer()).decide(context(dt.datetime(2026, 5, 5, 10, tzinfo=UTC), **seasonal))
    assert "seasonal_anticipation" not in eligible(may)


def test_reactivation_of_lapsing_customers() -> None:
    lapsed = {
        "lifecycle_state": LifecycleState.LAPSED,
        "purchases_total": 5,
        "orders_total": 4,
        "revenue_total": 1200.0,
        "average_basket": 120.0,
        "promo_sensitivity": 0.8,
    }
    decision = engine(retailer()).decide(context(**lapsed))
    assert {"reactivation", "reactivation_offer", "reactivation_call"} <= eligible(decision)


def test_cross_sell_after_click_and_collect_and_review_after_delivery() -> None:
    decision = engine(retailer()).decide(
        context(
            click_collect_pending=True,
            hours_since_click_collect_order=30.0,
            hours_since_last_purchase=30.0,
            last_purchased_products=("P1",),
            hours_since_last_delivery=48.0,
        )
    )
    assert {"cross_sell_click_collect", "cross_sell_after_purchase", "review_request"} <= eligible(
        decision
    )


def test_on_site_placement_needs_a_live_session() -> None:
    cat = Catalog([retailer()["cross_sell_on_site"]])
    session = Session(Channel.WEB, NOW - dt.timedelta(minutes=3), product_id="P7")
    [chosen] = engine(cat).decide(context(session=session)).actions
    assert chosen.channel == Channel.WEB and chosen.send_at == NOW
    in_web = engine(cat).decide(context(session=session))
    assert [(r.channel, r.code) for r in in_web.rejections] == [
        (Channel.APP, ReasonCode.CHANNEL_UNAVAILABLE)
    ]
    offline = engine(cat).decide(context(browsed_products=("P7",)))
    assert offline.actions == ()  # not in session: not eligible, and no placement anyway


@pytest.mark.parametrize(
    ("traits", "variant"),
    [
        ({"early_adopter_score": 0.9, "promo_sensitivity": 0.9}, "early_adopter"),
        ({"early_adopter_score": 0.1, "promo_sensitivity": 0.8}, "promotion_lover"),
        ({"early_adopter_score": 0.1, "promo_sensitivity": 0.1}, None),
    ],
)
def test_new_collection_worded_for_early_adopters_and_promotion_lovers(
    traits: dict[str, float], variant: str | None
) -> None:
    cat = Catalog([retailer()["new_collection_launch"]])
    decision = engine(cat).decide(context(**traits))
    if variant is None:
        assert decision.actions == () and decision.reasons("new_collection_launch") == (
            ReasonCode.NOT_ELIGIBLE,
        )
    else:
        [chosen] = decision.actions
        assert chosen.variant_id == variant
        assert (
            chosen.template
            == cat["new_collection_launch"]
            .variants[0 if variant == "early_adopter" else 1]
            .template
        )


def test_channel_follows_propensity_value_and_cost() -> None:
    cat = catalog("{id: a, type: content, channels: [email, sms], value: 20}")
    engaged_by_sms = {
        Channel.SMS: ChannelEngagement(sent=30, clicked=9, click_rate=0.3),
        Channel.EMAIL: ChannelEngagement(sent=30, opened=1, open_rate=0.03, click_rate=0.01),
    }
    assert engine(cat).decide(context(engagement=engaged_by_sms)).actions[0].channel == Channel.SMS
    engaged_by_email = {
        Channel.SMS: ChannelEngagement(sent=30, clicked=0, click_rate=0.01),
        Channel.EMAIL: ChannelEngagement(
            sent=30, opened=15, open_rate=0.5, clicked=9, click_rate=0.3
        ),
    }
    assert (
        engine(cat).decide(context(engagement=engaged_by_email)).actions[0].channel == Channel.EMAIL
    )
    cheap = catalog("{id: a, type: content, channels: [sms, email], value: 0.05}")
    # low value: SMS's cost outweighs its better reach
    assert engine(cheap).decide(context()).actions[0].channel == Channel.EMAIL


def test_channel_costs_follow_the_contact_policy_the_engine_holds() -> None:
    """The engine reads each channel's cost and cap counting once per contact policy: a
    policy put in its place is read anew, not the costs of the one before."""
    cat = catalog("{id: a, type: content, channels: [sms, email], value: 20}")
    policy = engine(cat)
    first = policy.decide(context()).actions[0]
    assert (
        first.terms is not None
        and first.terms.channel_cost
        == ContactPolicy()
        .rules(
            first.channel  # type: ignore[arg-type]
        )
        .cost
    )
    dear = parse_contact_policy(
        "channels:\n  sms: {cost: 15.0}\n  email: {cost: 12.5, counts_toward_total: false}"
    )
    policy.contact_policy = dear
    again = policy.decide(context()).actions[0]
    assert again.terms is not None
    assert again.terms.channel_cost == dear.rules(again.channel).cost  # type: ignore[arg-type]
    assert again.channel == Channel.EMAIL and again.terms.channel_cost == 12.5


def test_send_windows_follow_the_moment_and_each_customers_deadline() -> None:
    """An action's send window is shared by the customers decided at one moment, not
    across moments; one with a ``send_by`` deadline is each customer's own."""
    cat = catalog(
        "{id: a, type: content, channels: [email], value: 20, timing: asap, ttl_hours: 6}",
        "{id: b, type: content, channels: [email], value: 10, timing: asap, ttl_hours: 240,"
        " send_by: days_to_birthday, eligibility: known(days_to_birthday)}",
    )
    policy = engine(cat)
    for now in (NOW, NOW + dt.timedelta(days=1, hours=2), NOW):
        chosen = policy.decide(context(now)).actions[0]
        assert (chosen.action_id, chosen.send_at) == ("a", now)
    only_b = Restriction(action_ids=frozenset({"b"}))
    late = dt.datetime(2026, 3, 4, 22, 30, tzinfo=UTC)  # 23:30 in Paris: e-mail waits for 07:00
    tomorrow = policy.decide(context(late, days_to_birthday=1), restriction=only_b)
    assert [(a.action_id, f"{a.send_at_local:%d %H:%M}") for a in tomorrow.actions] == [
        ("b", "05 07:00")
    ]
    today = policy.decide(context(late, days_to_birthday=0), restriction=only_b)
    assert today.actions == () and today.reasons("b") == (ReasonCode.NO_SEND_SLOT,)


def test_do_nothing_wins_when_nothing_is_worth_its_cost() -> None:
    cat = catalog(
        "{id: a, type: content, channels: [postal], value: 1}",
        "{id: nothing, type: do_nothing, value: 0.1}",
    )
    decision = engine(cat).decide(context())
    [chosen] = decision.actions
    assert chosen.is_do_nothing and chosen.channel is None and decision.contacts == ()
    assert decision.consumed.actions_sent == {}
    assert decision.reasons("a") == (ReasonCode.LOST_ARBITRATION,)


# ---------------------------------------------------------------- determinism, logging, explanations


def test_same_seed_same_decision_and_stable_id() -> None:
    cat, policy = retailer(), retailer_policy()
    ctx = context(
        cart_age_hours=2.0, early_adopter_score=0.9, events_seen=30, top_category="shoes", **CART
    )
    nba = NextBestActionPolicy(cat, policy, max_actions=2)
    first = nba.decide(ctx, seed="request-42")
    again = NextBestActionPolicy(cat, policy, max_actions=2).decide(ctx, seed="request-42")
    assert first == again
    assert first.decision_id == again.decision_id
    picks = {
        (d.action_id, d.actions[0].channel)
        for d in (NextBestActionPolicy(cat, policy).decide(ctx, seed=s) for s in range(40))
    }
    assert len(picks) > 1  # exploration (of channels too): other seeds, other picks


def test_decision_log_round_trips_through_json() -> None:
    decision = NextBestActionPolicy(retailer()).decide(context(cart_age_hours=2.0, **CART), seed=3)
    logged = decision.log(arm="champion", model_version="v7")
    assert logged.action_id == decision.action_id and logged.propensity == decision.propensity
    assert logged.arm == "champion" and set(logged.eligible_action_ids) == set(
        decision.eligible_action_ids
    )
    again = LoggedDecision.from_dict(json.loads(json.dumps(logged.to_dict())))
    assert again == logged


def test_explanation_says_why_this_action_channel_and_time_and_why_not_the_others() -> None:
    cat = catalog(
        "{id: a, type: content, channels: [email, sms], value: 20, lever: 2}",
        "{id: b, type: content, channels: [email], value: 5}",
        "{id: c, type: content, channels: [push], eligibility: 'cart_size > 0'}",
    )
    decision = engine(cat).decide(context(consents={Channel.EMAIL: True, Channel.SMS: True}))
    [chosen] = decision.explanation.chosen
    names = [f.name for f in chosen.factors]
    assert {
        "propensity",
        "value",
        "lever",
        "priority",
        "pick",
        "runner_up",
        "channel",
        "send_time",
    } <= set(names)
    text = str(decision.explanation)
    assert "chose a on" in text
    assert "not b: lost_arbitration" in text
    assert "not c: not_eligible" in text
    assert [r.action_id for r in decision.explanation.rejected][:2] == ["b", "c"]


def test_explanation_when_everything_is_filtered() -> None:
    decision = engine(catalog(SIMPLE)).decide(context(consents={}))
    assert decision.actions == () and decision.propensity == 1.0
    assert "nothing to do" in str(decision.explanation)


# ---------------------------------------------------------------- several actions per decision


def test_several_actions_respect_caps_together() -> None:
    cat = catalog(
        "{id: a, type: content, channels: [email], value: 30}",
        "{id: b, type: content, channels: [email, push], value: 20}",
        "{id: c, type: content, channels: [email], value: 10}",
    )
    # without a gap between messages (by default one decision sends one message)
    no_gap = parse_contact_policy("message_gap_hours: null")
    decision = engine(cat, max_actions=3, contact_policy=no_gap).decide(context())
    assert [(a.action_id, a.channel) for a in decision.actions] == [
        ("a", Channel.EMAIL),
        ("b", Channel.PUSH),
    ]
    assert ReasonCode.CHANNEL_DAILY_CAP in decision.reasons("c")
    assert decision.propensity == pytest.approx(1.0)
    assert decision.consumed.actions_sent == {"a": 1, "b": 1}


# ---------------------------------------------------------------- budgets


def test_budget_is_read_from_usage_and_consumption_is_reported() -> None:
    cat = catalog(
        "{id: a, type: offer, channels: [email], value: 30, offer: {id: o, kind: fixed_discount, value: 5, daily_budget: 2}}"
    )
    ctx = context(promo_sensitivity=0.5)
    usage = UsageCounts(offers_given={"o": 1})
    decision = engine(cat).decide(ctx, usage=usage)
    assert decision.consumed.offers_given == {"o": 1} and decision.consumed.actions_sent == {"a": 1}
    assert usage.offers_given == {"o": 1}  # read-only: the engine stores nothing
    exhausted = engine(cat).decide(ctx, usage=UsageCounts(offers_given={"o": 2}))
    assert exhausted.actions == () and exhausted.reasons("a") == (ReasonCode.BUDGET_EXHAUSTED,)


# ---------------------------------------------------------------- scorers and baselines


class FixedScorer(Scorer):
    """A model stand-in: fixed propensities and uplift per action."""

    def __init__(self, propensity: dict[str, float], uplift: dict[str, float | None]) -> None:
        self.propensity, self.uplift = propensity, uplift

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        scores = []
        for c in candidates:
            u = self.uplift.get(c.action.id)
            scores.append(
                ActionScore(
                    {ch: self.propensity[c.action.id] for ch in c.channels},
                    c.value,
                    None if u is None else {ch: u for ch in c.channels},
                )
            )
        return scores


def test_uplift_from_a_model_drives_the_priority() -> None:
    cat = catalog(
        "{id: likely, type: content, channels: [email], value: 10}",
        "{id: moved, type: content, channels: [email], value: 10}",
    )
    # 'likely' responds more but would respond anyway; 'moved' changes behaviour
    scorer = FixedScorer({"likely": 0.5, "moved": 0.2}, {"likely": 0.01, "moved": 0.15})
    assert engine(cat, scorer=scorer).decide(context()).action_id == "moved"
    assert (
        engine(cat, scorer=FixedScorer({"likely": 0.5, "moved": 0.2}, {}))
        .decide(context())
        .action_id
        == "likely"
    )


def test_bad_scores_are_refused_with_the_scorer_action_and_channel() -> None:
    cat = catalog(SIMPLE)
    with pytest.raises(
        ScoringError, match=r"FixedScorer, action 'a', channel email: propensity 1.5"
    ):
        engine(cat, scorer=FixedScorer({"a": 1.5}, {})).decide(context())


def test_rule_based_scorer_is_the_default() -> None:
    assert isinstance(NextBestActionPolicy(retailer()).scorer, RuleBasedScorer)


def test_rule_based_policy_uses_fixed_priorities_by_type() -> None:
    ctx = context(cart_age_hours=2.0, hours_since_last_delivery=30.0, **CART)
    decision = RuleBasedPolicy(retailer()).decide(ctx)
    [chosen] = decision.actions
    assert chosen.action_type == ActionType.CART_REMINDER and chosen.propensity == 1.0
    custom = RuleBasedPolicy(retailer(), priorities={ActionType.REVIEW_REQUEST: 999})
    assert custom.decide(ctx).action_id == "review_request"


def test_random_policy_propensity_is_exactly_one_over_n_and_matches_frequencies() -> None:
    cat = catalog(
        "{id: a, type: content, channels: [email]}",
        "{id: b, type: content, channels: [push]}",
        "{id: c, type: content, channels: [sms]}",
        "{id: nothing, type: do_nothing}",
    )
    policy, ctx = RandomPolicy(cat), context()
    counts: dict[str | None, int] = {}
    runs = 1000
    for seed in range(runs):
        decision = policy.decide(ctx, seed=seed)
        assert decision.propensity == 1 / 4
        counts[decision.action_id] = counts.get(decision.action_id, 0) + 1
    assert set(counts) == {"a", "b", "c", "nothing"}
    for n in counts.values():
        assert abs(n / runs - 0.25) < 0.05  # 3.6 standard errors


@pytest.mark.parametrize("policy_class", [NextBestActionPolicy, RandomPolicy, RuleBasedPolicy])
def test_every_policy_shares_the_template_and_its_safety(
    policy_class: type[DecisionPolicy],
) -> None:
    """Contract suite: consent and caps bind every policy the same way."""
    cat = retailer()
    ctx = context(
        cart_age_hours=2.0,
        consents={Channel.EMAIL: False, Channel.SMS: False, Channel.PUSH: True},
        contacts=ContactHistory(contacts_1d={Channel.PUSH: 2}),
        **CART,
    )
    decision = policy_class(cat, retailer_policy()).decide(ctx, seed=1)
    assert decision.policy == policy_class.name
    assert decision.contacts == ()  # e-mail and SMS closed, push capped for today
    assert DecisionPolicy.decide is policy_class.decide  # the template is not overridden


def test_exploration_can_be_switched_off() -> None:
    cat = catalog(
        "{id: a, type: content, channels: [email], value: 10}",
        "{id: b, type: content, channels: [email], value: 9}",
    )
    stats = {"a": BetaPosterior(1, 1), "b": BetaPosterior(1, 1)}
    greedy = NextBestActionPolicy(cat, exploration=False)
    assert {greedy.decide(context(), stats=stats, seed=s).action_id for s in range(20)} == {"a"}
    assert all(greedy.decide(context(), seed=s).propensity == 1.0 for s in range(5))


def test_constructor_and_policy_document_validation() -> None:
    with pytest.raises(ValueError, match="max_actions"):
        NextBestActionPolicy(retailer(), max_actions=0)
    with pytest.raises(ValueError, match="propensity_draws"):
        NextBestActionPolicy(retailer(), propensity_draws=0)
    with pytest.raises(ContactPolicyError) as error:
        parse_contact_policy(
            "cap_1d: -1\nchannels: {fax: {}, sms: {weekdays: [funday]}, email: {colour: 1}}"
        )
    text = str(error.value)
    assert "channels.fax: unknown channel 'fax'" in text
    with pytest.raises(ContactPolicyError) as error:
        parse_contact_policy(
            "cap_1d: -1\nchannels: {sms: {weekdays: [funday]}, email: {colour: 1}}"
        )
    problems = " | ".join(error.value.problems)
    assert (
        "cap_1d" in problems
        and "unknown weekday 'funday'" in problems
        and "channels.email.colour" in problems
    )
    with pytest.raises(ContactPolicyError, match="store"):
        parse_contact_policy("channels: {store: {cap_1d: 1}}")


def test_contact_policy_example_equals_the_defaults() -> None:
    example = retailer_policy()
    defaults = ContactPolicy()
    for channel, rules in defaults.channels.items():
        assert example.rules(channel).model_dump() == rules.model_dump()
    # both rest the call centre on French public holidays, of every year
    excluded = example.rules(Channel.CALL_CENTRE).allowed_times.excluded_dates
    assert dt.date(2026, 7, 14) in excluded and dt.date(2027, 5, 6) in excluded
    assert example.timezone == "Europe/Paris"  # the retailer's day, for its budgets


def test_scorers_satisfy_the_protocol() -> None:
    from nba.scoring import Scorer

    assert isinstance(RuleBasedScorer(), Scorer)
    assert isinstance(FixedScorer({}, {}), Scorer)
