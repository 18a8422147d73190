"""The per-decision core's shortcuts give what the plain code gives.

Rule fields are read through one table of per-field readers (not by looking the name
up in the profile each time), explanations are written out when read (not when the
decision is made), and ``context_features`` finds enum positions once: each is
compared here with the straightforward version on random customers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import pickle
from decimal import Decimal
from enum import StrEnum

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nba.channels import OUTBOUND_CHANNELS, Channel
from nba.context import CONTEXT_FIELDS, ContextScope, CustomerContext, scope_of
from nba.decision import CONTEXT_FEATURES, context_features, make_decision_id
from nba.engine import NextBestActionPolicy
from nba.profile import PROFILE_FIELDS, ChannelEngagement, CustomerProfile
from nba.rules import Value
from tests.test_nba_properties import _EXAMPLE_POLICY, EXAMPLE_CATALOG, contexts


def _plain_profile_value(profile: CustomerProfile, name: str) -> object:
    """``CustomerProfile.value`` as first written: derived fields by their formula, an
    enum as its text, a tuple as a list."""
    derived = {
        "consented_channels": lambda: [c.value for c in OUTBOUND_CHANNELS if profile.consented(c)],
        "contacts_1d": profile.contacts.total_1d,
        "contacts_7d": profile.contacts.total_7d,
        "cart_size": lambda: len(profile.cart_items),
    }
    if name in derived:
        return derived[name]()
    if name.endswith(("_open_rate", "_click_rate")):
        rate = "open_rate" if name.endswith("_open_rate") else "click_rate"
        channel = name.removesuffix(f"_{rate}")
        engagement = {c.value: e for c, e in profile.engagement.items()}.get(channel)
        return 0.0 if engagement is None else float(getattr(engagement, rate))
    value = getattr(profile, name)
    if isinstance(value, StrEnum):
        return value.value
    return list(value) if isinstance(value, tuple) else value


def _plain_rule_value(profile: CustomerProfile, name: str) -> Value:
    value = _plain_profile_value(profile, name)
    if value is None or isinstance(value, bool | int | float | str | list):
        return value  # type: ignore[return-value]
    return str(value)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=contexts(), odd=st.booleans())
def test_rule_fields_read_what_the_profile_holds(context: CustomerContext, odd: bool) -> None:
    """Every profile field a rule may name reads as the plain formula gives it (values of
    unusual types, such as a ``Decimal``, as their text), and context fields are not
    shadowed by profile fields."""
    profile = context.profile
    if odd:  # a number of a type rules do not know: read as its text, as before
        profile = dataclasses.replace(profile, purchases_total=Decimal(3))  # type: ignore[arg-type]
        context = CustomerContext(profile, context.now, session=context.session)
    scope = ContextScope(context)
    for name in PROFILE_FIELDS:
        if name in CONTEXT_FIELDS:
            continue
        got, expected = scope.field(name), _plain_rule_value(profile, name)
        assert _same(got, expected), (name, got, expected)
        assert _same(scope.field(name), got)  # cached
        assert _same(profile.value(name), _plain_profile_value(profile, name)), name
    assert scope.field("local_hour") == context.local_now.hour


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=contexts(), others=st.lists(contexts(), min_size=1, max_size=3), seed=st.integers(0, 99)
)
def test_an_explanation_read_late_is_the_one_read_at_once(
    first: CustomerContext, others: list[CustomerContext], seed: int
) -> None:
    """An explanation written out after the policy made other decisions, or after a
    pickle round trip, equals the one written out as its decision was made."""
    policy = NextBestActionPolicy(EXAMPLE_CATALOG, _EXAMPLE_POLICY, max_actions=2)
    at_once = policy.decide(first, seed=seed)
    text = str(at_once.explanation)
    late = policy.decide(first, seed=seed)
    for other in others:
        policy.decide(other, seed=seed).explanation.chosen  # noqa: B018 - read others meanwhile
    assert str(late.explanation) == text
    assert late == at_once and hash(late.explanation) == hash(at_once.explanation)
    copy = pickle.loads(pickle.dumps(policy.decide(first, seed=seed)))
    assert copy.explanation == at_once.explanation and str(copy.explanation) == text
    assert copy.actions == at_once.actions and copy.rejections == at_once.rejections


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=contexts())
def test_context_features_give_enum_positions(context: CustomerContext) -> None:
    p = context.profile
    features = context_features(context, 3)
    assert features["lifecycle_state"] == list(type(p.lifecycle_state)).index(p.lifecycle_state)
    assert features["journey_phase"] == list(type(p.journey_phase)).index(p.journey_phase)


def _plain_context_features(context: CustomerContext, n_candidates: int) -> dict[str, float]:
    """``context_features`` as first written: one tuple of values, zipped with the names."""
    p = context.profile

    def rate(channel: Channel, name: str) -> float:
        engagement = p.engagement.get(channel)
        return math.nan if engagement is None else float(getattr(engagement, name))

    def known(value: float | None) -> float:
        return math.nan if value is None else float(value)

    values = (
        known(p.days_since_first_seen),
        known(p.days_since_last_purchase),
        known(p.days_since_last_visit),
        float(p.purchases_total),
        float(p.revenue_total),
        float(p.average_basket),
        float(len(p.cart_items)),
        float(p.cart_value),
        known(p.cart_age_hours),
        float(len(p.browsed_products)),
        known(p.hours_since_last_browse),
        known(p.hours_since_last_purchase),
        known(p.hours_since_last_delivery),
        float(p.promo_sensitivity),
        float(p.early_adopter_score),
        known(p.days_to_birthday),
        float(list(type(p.lifecycle_state)).index(p.lifecycle_state)),
        float(list(type(p.journey_phase)).index(p.journey_phase)),
        float(p.contacts.total_7d()),
        rate(Channel.EMAIL, "open_rate"),
        rate(Channel.EMAIL, "click_rate"),
        rate(Channel.SMS, "click_rate"),
        rate(Channel.PUSH, "open_rate"),
        rate(Channel.PUSH, "click_rate"),
        float(sum(1 for granted in p.consents.values() if granted)),
        float(context.local_now.hour),
        float(n_candidates),
    )
    return dict(zip(CONTEXT_FEATURES, values, strict=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    context=contexts(),
    n=st.integers(0, 30),
    engagement=st.dictionaries(
        st.sampled_from(list(Channel)),
        st.builds(
            ChannelEngagement,
            open_rate=st.floats(0, 1),
            click_rate=st.floats(0, 1),
            conversion_rate=st.floats(0, 1),
        ),
    ),
)
def test_context_features_are_the_plain_formula(
    context: CustomerContext, n: int, engagement: dict[Channel, ChannelEngagement]
) -> None:
    """Every feature, its order and its type (a float, NaN when unknown) as the plain
    formula gives them, engagements missing on some channels included."""
    profile = dataclasses.replace(context.profile, engagement=engagement)
    context = CustomerContext(profile, context.now, session=context.session)
    got, expected = context_features(context, n), _plain_context_features(context, n)
    assert list(got) == list(expected) == list(CONTEXT_FEATURES)
    for name in CONTEXT_FEATURES:
        assert _same(got[name], expected[name]), (name, got[name], expected[name])


def test_decision_ids_follow_their_moment() -> None:
    """The moment's text is kept between calls for the same moment only: ids for
    other moments, equal moments in other objects and other zones are as written out."""
    paris = dt.timezone(dt.timedelta(hours=1))
    moments = [
        dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC),  # equal, another object
        dt.datetime(2026, 3, 6, 10, tzinfo=paris),  # the same instant in another zone
        dt.datetime(2026, 3, 6, 9, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC),
    ]
    for moment in [*moments, moments[0], moments[3]]:
        for customer in ("C1", "C2"):
            key = f"{customer}|{moment.astimezone(dt.UTC).isoformat()}|nba|7"
            expected = "d-" + hashlib.sha256(key.encode()).hexdigest()[:16]
            assert make_decision_id(customer, moment, "nba", 7) == expected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=contexts(), second=contexts())
def test_the_kept_rule_scope_is_its_own_contexts(
    first: CustomerContext, second: CustomerContext
) -> None:
    """``scope_of`` keeps the last scope for the same context only: two customers decided
    in turn each read their own fields."""
    for context in (first, second, first, second):
        scope = scope_of(context)
        assert scope.context is context and scope_of(context) is scope
        for name in ("cart_size", "average_basket", "lifecycle_state", "local_hour"):
            assert _same(scope.field(name), ContextScope(context).field(name)), name


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=contexts(), hours=st.floats(0.0, 72.0))
def test_a_context_moved_later_is_the_one_built_then(
    context: CustomerContext, hours: float
) -> None:
    later = context.later(hours)
    built = CustomerContext(
        context.profile,
        context.now_utc + hours * dt.timedelta(hours=1),
        None,
        context.action_history,
    )
    assert later == built
    assert (later.now_utc, later.local_now, later.zone) == (
        built.now_utc,
        built.local_now,
        built.zone,
    )
    for name in CONTEXT_FIELDS:
        assert _same(ContextScope(later).field(name), ContextScope(built).field(name)), name
