"""A channel the customer has never been contacted on is judged by what the store's own
customers do there (the segment's prior the feature build measures), not by the channel's
typical rates: a new customer's first push does not outrank their e-mail in a store whose
pushes are tapped less than the typical 4 %.

The store is written as raw contract events (forty customers' e-mails and pushes, sent and
opened) and profiled by the real feature build, which estimates the priors; the new
customer is profiled with them and decided through the example catalog and contact policy
(helpers of :mod:`tests.test_scenarios`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from features.batch import build_profiles
from features.dataset import RetailDataset
from features.finalise import TYPICAL_CHANNEL_PRIORS, FeaturePriors
from nba.actions import Action
from nba.channels import Channel
from nba.context import CustomerContext
from nba.profile import ChannelEngagement, CustomerProfile
from nba.scoring import REFERENCE_OPEN_RATES, RuleBasedScorer
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime
from tests.test_scenarios import UTC, customer, decide, events

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Paris
#: Messages each of the store's customers received on each channel in February.
SENT = 10


def _store(base: RetailDataset, tappers: int) -> RetailDataset:
    """Forty past customers, each sent ten e-mails and ten pushes in February, who opened
    two of the e-mails (20 %, the typical rate) and of whom ``tappers`` tapped one push; and
    C1, who signed up this morning (e-mail and push consented) and looked at two products."""
    people = [customer(base, consents=("email", "push"), created_at="2026-03-04T08:30:00Z")]
    raw = [
        events(
            ("2026-03-04T08:35:00Z", "web", "product_view", "P1"),
            ("2026-03-04T08:37:00Z", "web", "product_view", "P2"),
        )
    ]
    for n in range(2, 42):
        cid = f"C{n}"
        people.append(customer(base, consents=("email", "push")).assign(customer_id=cid))
        rows: list[tuple[object, ...]] = []
        for day in range(1, SENT + 1):
            at = f"2026-02-{day + 1:02d}T1{day % 8}:00:00Z"
            opened = at.replace(":00:00", ":20:00")
            rows.append((at, "email", "message_sent", None))
            if day <= 2:
                rows.append((opened, "email", "message_opened", None))
            rows.append((at, "push", "message_sent", None))
            if day == 1 and n - 2 < tappers:
                rows.append((opened, "push", "message_opened", None))
        raw.append(events(*rows).assign(customer_id=cid, event_id=lambda f, c=cid: c + f.event_id))
    return dataclasses.replace(
        base,
        customers=pd.concat(people, ignore_index=True),
        events=pd.concat(raw, ignore_index=True),
    )


def _welcome(base: RetailDataset, tappers: int) -> tuple[str, Channel | None, float]:
    """C1's decision in the store, and the store's push tap rate (its prior for C1)."""
    build = build_profiles(_store(base, tappers), as_of=NOW, workers=1)
    [profile] = [p for p in build.profiles if p.customer_id == "C1"]
    assert profile.engagement[Channel.PUSH].sent == 0  # never pushed: the store's rate
    assert build.priors.channel("none", "email").open_rate == 0.2
    [chosen] = decide(profile, NOW).actions
    return chosen.action_id, chosen.channel, build.priors.channel("none", "push").open_rate


def test_a_new_customers_welcome_goes_by_email_where_the_stores_pushes_are_rarely_tapped(
    base: RetailDataset,
) -> None:
    """A quarter of the store's customers tapped one of their ten pushes (2.5 %, below the
    typical 4 %); they open a fifth of their e-mails (the typical rate): the new customer's
    welcome goes by e-mail. Rated at the push's typical reach (1.1 x e-mail's, and a push
    costs less), it went by push."""
    action, channel, push_taps = _welcome(base, tappers=10)
    assert push_taps == 0.025
    assert (action, channel) == ("welcome_1", Channel.EMAIL)


def test_the_same_welcome_goes_by_push_where_the_stores_pushes_are_tapped_often(
    base: RetailDataset,
) -> None:
    """The same customer in a store whose customers all tapped one push in ten (10 %,
    two and a half times the typical): the store's own rate says push."""
    action, channel, push_taps = _welcome(base, tappers=40)
    assert push_taps == 0.1 > REFERENCE_OPEN_RATES[Channel.PUSH]
    assert (action, channel) == ("welcome_1", Channel.PUSH)


def test_without_the_stores_own_measure_a_channel_falls_back_to_its_typical_rates() -> None:
    """No priors estimated (a store too small, a fresh deployment): a push's prior is a
    typical push's tap rate, not e-mail's open rate (which made a thin push history look
    five times as engaged as a typical one)."""
    assert FeaturePriors().channel("gold", "push").open_rate == REFERENCE_OPEN_RATES[Channel.PUSH]
    assert FeaturePriors().channel("gold", "email").open_rate == 0.2
    assert TYPICAL_CHANNEL_PRIORS["call_centre"].open_rate == 0.3


def test_the_scorer_rates_a_channel_with_nothing_sent_at_the_prior_its_profile_carries() -> None:
    """Unit: nothing sent on push and e-mail, the profile carrying the store's rates (2 % of
    pushes tapped, 20 % of e-mails opened): push gets its reach times half a typical tap
    rate, 0.55 of e-mail's response (a content message, whose 3 % stays below the taps); a
    welcome's push (8 % x 1.1 x 0.5 = 4.3 %) is held to the 2 % its profile says pushes are
    tapped (:mod:`tests.test_scenarios_open_cap`); without engagement at all (a profile
    built by hand) or with no rate known, the typical reach (1.1)."""

    def push_over_email(
        engagement: dict[Channel, ChannelEngagement], kind: str = "content"
    ) -> float:
        profile = CustomerProfile("C1", engagement=engagement, days_since_last_visit=1.0)
        context = CustomerContext(profile, NOW)
        action = Action(id="welcome_1", type=kind, channels=["email", "push"], value=50)
        slots = tuple(ChannelSlot(c, SendTime(NOW, NOW, "")) for c in (Channel.EMAIL, Channel.PUSH))
        [score] = RuleBasedScorer().score(context, [ActionCandidate(action, 50.0, None, slots)])
        return score.propensity[Channel.PUSH] / score.propensity[Channel.EMAIL]

    store = {
        Channel.EMAIL: ChannelEngagement(open_rate=0.2),
        Channel.PUSH: ChannelEngagement(open_rate=0.02),
    }
    assert push_over_email(store) == pytest.approx(0.55)
    assert push_over_email(store, "welcome") < 0.55 / 2  # 0.02 against 0.078
    assert push_over_email({}) == pytest.approx(1.1)
    unknown = {Channel.EMAIL: ChannelEngagement(), Channel.PUSH: ChannelEngagement()}
    assert push_over_email(unknown) == pytest.approx(1.1)
