"""Randomized safety: random profiles, catalogs, contact histories, time zones and moments
never produce a decision that breaks consent, caps, cool-downs, quiet hours, budgets or
eligibility, whatever the policy. Invariants are re-derived here independently of the
engine's own checks."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nba.actions import ActionType
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.budgets import UsageCounts
from nba.catalog import Catalog, parse_catalog
from nba.channels import CONSENT_CHANNELS, OUTBOUND_CHANNELS, Channel
from nba.contact_policy import ContactPolicy, opened_shares, parse_contact_policy
from nba.context import ContextScope, CustomerContext, Session
from nba.decision import Decision
from nba.engine import NextBestActionPolicy
from nba.policy import DecisionPolicy
from nba.profile import (
    ChannelEngagement,
    ContactHistory,
    CustomerProfile,
    JourneyPhase,
    LifecycleState,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"
UTC = dt.UTC
TIMEZONES = [
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "UTC",
]
DST_CHANGES = [
    dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Europe spring forward
    dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # Europe fall back
    dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # US spring forward
    dt.datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # US fall back
    dt.datetime(2026, 4, 4, 16, 0, tzinfo=UTC),  # Sydney fall back
]
RULES = [
    "true",
    "cart_size > 0",
    "cart_age_hours <= 12",
    "days_to_birthday <= 5",
    "promo_sensitivity > 0.3 or early_adopter_score > 0.5",
    "lifecycle_state in ['at_risk', 'lapsed']",
    "not known(days_since_last_purchase) or days_since_last_purchase > 10",
    "local_hour >= 9 and local_hour < 21",
    "'sms' in consented_channels",
    "contacts_7d < 3",
]
WINDOWS = ["08:00-12:00", "18:00-22:00", "22:00-02:00", "00:00-24:00"]
ACTION_TYPES = [t for t in ActionType if t != ActionType.DO_NOTHING]


_ANYWHERE = st.datetimes(
    min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31), timezones=st.just(UTC)
)
_NEAR_DST = st.builds(
    lambda base, minutes: base + dt.timedelta(minutes=minutes),
    st.sampled_from(DST_CHANGES),
    st.integers(min_value=-36 * 60, max_value=36 * 60),
)
MOMENTS = st.one_of(_ANYWHERE, _NEAR_DST)

# Strategies are built once: building them inside composites dominates the run time.
_OUTBOUND = st.sampled_from(OUTBOUND_CHANNELS)
_CHANNEL_LISTS = st.lists(_OUTBOUND, min_size=1, max_size=4, unique=True)
_ACTION_TYPES = st.sampled_from(ACTION_TYPES)
_RULES = st.sampled_from(["true"] * 4 + RULES)  # mostly eligible, so that contacts happen
_VALUES = st.sampled_from([0, 1, 5, 20, "cart_value * 0.3", "max(average_basket, 10) * 0.2"])
_LEVERS = st.sampled_from([0.0, 0.5, 1.0, 2.0])
_TTLS = st.sampled_from([1, 3, 12, 24, 72, 160])
_TIMINGS = st.sampled_from(["asap", "best_hour"])
_GROUPS = st.sampled_from([None, "g1", "g2"])
_WINDOWS = st.sampled_from(WINDOWS)
_COOLDOWNS = st.sampled_from([1, 24, 200])
_VOLUMES = st.integers(min_value=0, max_value=3)
_UPLIFTS = st.sampled_from([0.0, 0.01, 0.05])
_OFFER_COSTS = st.sampled_from([0, 2, 8])
_BUDGETS = st.sampled_from([None, 0, 1, 5])
_FLAGS = st.lists(st.booleans(), min_size=6, max_size=6)


@st.composite
def actions(draw: st.DrawFn, index: int) -> dict[str, object]:
    action: dict[str, object] = {
        "id": f"a{index}",
        "type": draw(_ACTION_TYPES).value,
        "channels": [c.value for c in draw(_CHANNEL_LISTS)],
        "eligibility": draw(_RULES),
        "value": draw(_VALUES),
        "lever": draw(_LEVERS),
        "ttl_hours": draw(_TTLS),
        "timing": draw(_TIMINGS),
        "group": draw(_GROUPS),
    }
    local_hours, cooldown, volume, uplift, offer, delay = draw(_FLAGS)
    if local_hours:
        action["local_hours"] = [draw(_WINDOWS)]
    if cooldown:
        action["cooldown_hours"] = draw(_COOLDOWNS)
    if volume:
        action["daily_volume"] = draw(_VOLUMES)
    if uplift:
        action["min_uplift"] = draw(_UPLIFTS)
    if offer:
        action["offer"] = {
            "id": f"o{index}",
            "kind": "percent_discount",
            "value": 10,
            "cost": draw(_OFFER_COSTS),
            "daily_budget": draw(_BUDGETS),
        }
    if delay:
        action["send_delay_hours"] = 0.5
    return action


_ACTIONS = [actions(i) for i in range(6)]
_N_ACTIONS = st.integers(min_value=1, max_value=6)
_DO_NOTHING = st.none() | st.sampled_from([0, 0.5, 3])


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    items = [draw(_ACTIONS[i]) for i in range(draw(_N_ACTIONS))]
    do_nothing = draw(_DO_NOTHING)
    if do_nothing is not None:
        items.append({"id": "nothing", "type": "do_nothing", "value": do_nothing})
    return Catalog.from_dict({"actions": items})


_COUNTS = st.dictionaries(_OUTBOUND, st.sampled_from([0, 0, 0, 1, 2, 6]), max_size=3)
_HOURS_AGO = st.dictionaries(_OUTBOUND, st.integers(min_value=0, max_value=90 * 24), max_size=3)
_CONSENTS = st.lists(
    st.sampled_from([True, True, True, None, False]),
    min_size=len(CONSENT_CHANNELS),
    max_size=len(CONSENT_CHANNELS),
).map(lambda flags: {c: f for c, f in zip(CONSENT_CHANNELS, flags, strict=True) if f is not None})
_ENGAGEMENT = st.dictionaries(
    st.sampled_from(CONSENT_CHANNELS),
    st.builds(
        lambda sent, rate: ChannelEngagement(sent=sent, open_rate=rate, click_rate=rate / 3),
        st.integers(min_value=0, max_value=30),
        st.floats(min_value=0, max_value=1),
    ),
    max_size=3,
)
_SENT = st.dictionaries(
    st.sampled_from([f"a{i}" for i in range(6)]),
    st.integers(min_value=0, max_value=400),
    max_size=3,
)
_MAYBE_DAYS = st.none() | st.floats(min_value=0, max_value=400)
_SHARE = st.floats(min_value=0, max_value=1)
_MONEY = st.floats(min_value=0, max_value=500)
_HOUR_OF_WEEK = st.integers(min_value=0, max_value=167)
_TIMEZONES = st.sampled_from(TIMEZONES)
_CARTS = st.sampled_from([(), ("P1",), ("P1", "P2")])
_CART_AGES = st.none() | st.floats(min_value=0, max_value=100)
_BIRTHDAYS = st.none() | st.integers(min_value=0, max_value=365)
_LIFECYCLES = st.sampled_from(list(LifecycleState))
_PHASES = st.sampled_from(list(JourneyPhase))
_SESSIONS = st.none() | st.tuples(st.sampled_from([Channel.WEB, Channel.APP]), st.integers(0, 90))


def _ago(now: dt.datetime, hours: dict[Channel, int]) -> dict[Channel, dt.datetime]:
    return {c: now - dt.timedelta(hours=h) for c, h in hours.items()}


@st.composite
def contexts(draw: st.DrawFn) -> CustomerContext:
    now = draw(MOMENTS)
    activity: tuple[float, ...] = ()
    hot = draw(st.none() | _HOUR_OF_WEEK)
    if hot is not None:
        activity = tuple(1.0 if h == hot else 0.0 for h in range(168))
    contacts = ContactHistory(
        last_contact_at=_ago(now, draw(_HOURS_AGO)),
        contacts_1d=draw(_COUNTS),
        contacts_7d=draw(_COUNTS),
        contacts_30d=draw(_COUNTS),
        last_refusal_at=_ago(now, draw(_HOURS_AGO)),
    )
    profile = CustomerProfile(
        "C",
        timezone=draw(_TIMEZONES),
        days_since_last_visit=draw(_MAYBE_DAYS),
        days_since_last_purchase=draw(_MAYBE_DAYS),
        average_basket=draw(_MONEY),
        cart_items=draw(_CARTS),
        cart_value=draw(_MONEY),
        cart_age_hours=draw(_CART_AGES),
        promo_sensitivity=draw(_SHARE),
        early_adopter_score=draw(_SHARE),
        days_to_birthday=draw(_BIRTHDAYS),
        lifecycle_state=draw(_LIFECYCLES),
        journey_phase=draw(_PHASES),
        engagement=draw(_ENGAGEMENT),
        activity_by_hour=activity,
        peak_hour_of_week=draw(st.none() | _HOUR_OF_WEEK),
        consents=draw(_CONSENTS),
        contacts=contacts,
    )
    session = draw(_SESSIONS)
    live = None if session is None else Session(session[0], now - dt.timedelta(minutes=session[1]))
    sent = {a: now - dt.timedelta(hours=h) for a, h in draw(_SENT).items()}
    return CustomerContext(profile, now, live, sent)


_EXAMPLE_POLICY = parse_contact_policy((EXAMPLES / "contact_policy.yaml").read_text())
_TIGHT_POLICY = parse_contact_policy(
    "cap_1d: 1\ncap_7d: 2\nfatigue_contacts_7d: 2\nchannels: {email: {min_gap_hours: 48, weekdays: [sat, sun]},"
    " push: {hours: ['12:00-13:00']}, web: {requires_session: true, cap_1d: 1}}"
)
CONTACT_POLICIES = st.sampled_from([ContactPolicy(), _EXAMPLE_POLICY, _TIGHT_POLICY])
EXAMPLE_CATALOG = parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())


POLICIES: list[type[DecisionPolicy]] = [NextBestActionPolicy, RandomPolicy, RuleBasedPolicy]


def check_safe(
    decision: Decision,
    context: CustomerContext,
    catalog: Catalog,
    policy: ContactPolicy,
    usage: UsageCounts,
    max_actions: int,
) -> None:
    profile, history, now = context.profile, context.contacts, context.now_utc
    scope = ContextScope(context)
    chosen_ids = [a.action_id for a in decision.actions]
    assert len(chosen_ids) == len(set(chosen_ids)) <= max_actions
    groups = [catalog[i].group for i in chosen_ids if catalog[i].group is not None]
    assert len(groups) == len(set(groups))

    # every action is either chosen or carries at least one reason code
    rejected = {r.action_id for r in decision.rejections}
    for action in catalog:
        assert action.id in chosen_ids or action.id in rejected

    # propensities are probabilities and the decision's is their product
    assert all(0.0 < a.propensity <= 1.0 for a in decision.actions)
    assert math.isclose(decision.propensity, math.prod(a.propensity for a in decision.actions))

    used: Counter[Channel] = Counter()
    for chosen in decision.actions:
        action = catalog[chosen.action_id]
        # eligibility, validity, cool-down, budget and volume
        assert action.eligibility is None or action.eligibility.holds(scope)
        assert action.valid_at(now)
        last = context.action_history.get(action.id)
        if action.cooldown_hours is not None and last is not None:
            assert now - last >= dt.timedelta(hours=action.cooldown_hours)
        if action.offer is not None and action.offer.daily_budget is not None:
            assert usage.offers_given.get(action.offer.id, 0) < action.offer.daily_budget
        if action.daily_volume is not None:
            assert usage.actions_sent.get(action.id, 0) < action.daily_volume
        if chosen.is_do_nothing:
            assert chosen.channel is None and chosen.send_at is None
            continue
        channel = chosen.channel
        assert channel is not None and channel in action.channels and channel.is_outbound
        rules = policy.rules(channel)
        # consent is a hard constraint
        if channel in CONSENT_CHANNELS:
            assert profile.consents.get(channel) is True
        # refusal cool-down
        refused = history.last_refusal_at.get(channel)
        if refused is not None:
            days = rules.refusal_cooldown_days
            cooldown = policy.refusal_cooldown_days if days is None else days
            assert now >= refused + dt.timedelta(days=cooldown)

        # caps per channel, with the contacts chosen before in the same decision
        # rolling caps: either room now, or (a cap reached by past contacts alone) the send
        # waits until every contact the cap counts has left its window
        def room_or_after(
            cap: int | None,
            past: int,
            pending: int,
            last: dt.datetime | None,
            days: int,
            send_at: dt.datetime | None = chosen.send_at,
        ) -> None:
            if cap is None or past + pending + 1 <= cap:
                return
            assert pending == 0 and last is not None and send_at is not None
            assert send_at >= last + dt.timedelta(days=days)

        for cap, counts, days in (
            (rules.cap_1d, history.contacts_1d, 1),
            (rules.cap_7d, history.contacts_7d, 7),
            (rules.cap_30d, history.contacts_30d, 30),
        ):
            last_here = history.last_contact_at.get(channel)
            room_or_after(cap, counts.get(channel, 0), used[channel], last_here, days)
        if rules.counts_toward_total:

            def total(counts: dict[Channel, int]) -> int:
                return sum(n for c, n in counts.items() if policy.rules(c).counts_toward_total)

            pending = sum(n for c, n in used.items() if policy.rules(c).counts_toward_total)
            last_any = max(
                (
                    at
                    for c, at in history.last_contact_at.items()
                    if policy.rules(c).counts_toward_total
                ),
                default=None,
            )
            for cap, counts, days in (
                (policy.cap_1d, history.contacts_1d, 1),
                (policy.cap_7d, history.contacts_7d, 7),
            ):
                room_or_after(cap, total(counts), pending, last_any, days)
            # fatigue
            rates = opened_shares(profile)  # what the customer opened of what was sent
            if (
                policy.fatigue_contacts_7d is not None
                and total(history.contacts_7d) + pending >= policy.fatigue_contacts_7d
            ):
                assert rates == [] or max(rates) >= policy.fatigue_min_open_rate
        used[channel] += 1
        # send time: within the time-to-live, in allowed local hours
        assert chosen.send_at is not None and chosen.send_at_local is not None
        assert chosen.send_at_local == chosen.send_at.astimezone(context.zone)
        if rules.requires_session:
            assert context.session is not None and context.session.channel == channel
            assert chosen.send_at == now
            continue
        assert (
            now + dt.timedelta(hours=action.send_delay_hours)
            <= chosen.send_at
            <= action.latest_send(now)
        )
        assert rules.allowed_times.allows(chosen.send_at_local)
        clock = chosen.send_at_local.time()
        assert not action.local_hours or any(w.contains(clock) for w in action.local_hours)
        last_contact = history.last_contact_at.get(channel)
        if rules.min_gap_hours is not None and last_contact is not None:
            assert chosen.send_at >= last_contact + dt.timedelta(hours=rules.min_gap_hours)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    catalog=catalogs(),
    context=contexts(),
    policy=CONTACT_POLICIES,
    policy_class=st.sampled_from(POLICIES),
    max_actions=st.integers(min_value=1, max_value=3),
    seed=st.integers(min_value=0, max_value=2**32),
    given_offers=st.integers(min_value=0, max_value=2),
    sent=st.integers(min_value=0, max_value=2),
)
def test_no_decision_ever_breaks_consent_caps_quiet_hours_or_eligibility(
    catalog: Catalog,
    context: CustomerContext,
    policy: ContactPolicy,
    policy_class: type[DecisionPolicy],
    max_actions: int,
    seed: int,
    given_offers: int,
    sent: int,
) -> None:
    usage = UsageCounts(
        offers_given={f"o{i}": given_offers for i in range(6)},
        actions_sent={f"a{i}": sent for i in range(6)},
    )
    engine = policy_class(catalog, policy, max_actions=max_actions)
    decision = engine.decide(context, usage=usage, seed=seed)
    check_safe(decision, context, catalog, policy, usage, max_actions)
    # the same inputs and seed give the same decision
    assert engine.decide(context, usage=usage, seed=seed) == decision


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=contexts(), seed=st.integers(min_value=0, max_value=2**32))
def test_the_example_catalog_is_safe_for_random_customers(
    context: CustomerContext, seed: int
) -> None:
    catalog, policy = EXAMPLE_CATALOG, _EXAMPLE_POLICY
    decision = NextBestActionPolicy(catalog, policy, max_actions=2).decide(context, seed=seed)
    check_safe(decision, context, catalog, policy, UsageCounts(), 2)
    assert decision.explanation.lines()


def _tree_evaluated(catalog: Catalog) -> Catalog:
    """A copy of ``catalog`` whose rules walk their trees (the straightforward
    interpreter) instead of the closures built at compile time."""
    copy = parse_catalog(yaml_of(catalog))
    for action in copy:
        for _, rule in action.rules():
            object.__setattr__(rule, "_evaluate", rule._tree.evaluate)
    return copy


def yaml_of(catalog: Catalog) -> str:
    import yaml

    return yaml.safe_dump(catalog.to_dict())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=contexts(), seed=st.integers(min_value=0, max_value=2**32))
def test_decisions_are_those_of_the_rule_interpreter(context: CustomerContext, seed: int) -> None:
    """Compiled rules, cached send-time hours and the exact-Thompson fast path leave
    every decision as it was: the example catalog decides for random customers exactly
    as the same catalog whose rules are interpreted node by node."""
    reference = _TREE_CATALOG
    fast = NextBestActionPolicy(EXAMPLE_CATALOG, _EXAMPLE_POLICY, max_actions=2)
    slow = NextBestActionPolicy(reference, _EXAMPLE_POLICY, max_actions=2)
    assert fast.decide(context, seed=seed) == slow.decide(context, seed=seed)


_TREE_CATALOG = _tree_evaluated(EXAMPLE_CATALOG)
