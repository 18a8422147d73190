"""A channel the customer declared as preferred is honoured where the action may go there.

The product brief: "the engine weighs these differences, and honours each customer's
preferred channel". A declaration is the customer's word; a channel that scores higher
from their taps is the engine's guess. So the declared channel carries an action wherever
it may (consent, caps, a send slot within the action's validity) and is worth sending
there; elsewhere the best other channel, as without a declaration. The contact policy's
``declared_channel: weigh`` keeps the older behaviour (a boost on the score only).
Profiles are built from raw contract events through the feature code."""

from __future__ import annotations

import datetime as dt

from features.dataset import RetailDataset
from nba.arbitration import ChannelAssessment, best_channels
from nba.channels import Channel
from nba.decision import ChosenAction, Decision
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from nba.screening import ActionCandidate
from tests.test_scenarios import customer, decide, events, profile_at, retailer_policy

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Paris


def _tapper_events() -> list[tuple[object, ...]]:
    """Ten pushes in February, eight tapped and followed to a product; a purchase of P1
    three days ago (the cross-sell's trigger)."""
    rows: list[tuple[object, ...]] = []
    for i in range(10):
        at = dt.datetime(2026, 2, 3, 11, 0, tzinfo=UTC) + dt.timedelta(days=2 * i)
        rows.append((at.isoformat(), "push", "message_sent", None))
        if i < 8:
            tap = (at + dt.timedelta(minutes=5)).isoformat()
            rows.append((tap, "push", "message_opened", None))
            rows.append((tap, "push", "message_clicked", None))
            rows.append(((at + dt.timedelta(minutes=6)).isoformat(), "app", "product_view", "P2"))
    rows.append(((NOW - dt.timedelta(days=3)).isoformat(), "web", "purchase", "P1"))
    return rows


def _profile(
    base: RetailDataset, declared: str | None, consents: tuple[str, ...]
) -> CustomerProfile:
    rows = _tapper_events()
    people = customer(base, consents=consents, preferred_channel=declared)
    return profile_at(base, people, events(*rows), NOW)


def _cross_sell(decision: Decision) -> ChosenAction:
    chosen = [a for a in decision.actions if a.action_id == "cross_sell_after_purchase"]
    assert chosen, decision.rejections
    return chosen[0]


def test_a_declared_email_carries_the_message_that_push_scores_higher(
    base: RetailDataset,
) -> None:
    """The tapper who declared e-mail gets the cross-sell by e-mail, push named as the
    higher-scoring channel left for the declaration; the twin who declared nothing gets
    it by push; with ``declared_channel: weigh`` the declared one gets push too."""
    declared = _profile(base, "email", ("email", "push"))
    silent = _profile(base, None, ("email", "push"))
    decision = decide(declared, NOW, only="cross_sell_after_purchase")
    chosen = _cross_sell(decision)
    assert chosen.channel is Channel.EMAIL
    [push] = [
        r
        for r in decision.rejections
        if r.action_id == "cross_sell_after_purchase" and r.channel is Channel.PUSH
    ]
    assert push.code is ReasonCode.OTHER_CHANNEL_PREFERRED
    assert "the customer's declared preferred channel" in push.message
    scores = [float(w) for w in push.message.replace(",", " ").split() if _number(w)]
    assert scores[0] > scores[1] > 0  # push scored higher; e-mail honoured anyway
    assert _cross_sell(decide(silent, NOW, only="cross_sell_after_purchase")).channel is (
        Channel.PUSH
    )
    weigh = retailer_policy().model_copy(update={"declared_channel": "weigh"})
    weighed = decide(declared, NOW, only="cross_sell_after_purchase", contact_policy=weigh)
    assert _cross_sell(weighed).channel is Channel.PUSH


def test_a_declared_channel_without_consent_is_not_honoured_into_a_breach(
    base: RetailDataset,
) -> None:
    """Declared e-mail, then consented to push only: the message goes by push (consent is
    a hard constraint; the declaration chooses among the channels allowed)."""
    profile = _profile(base, "email", ("push",))
    decision = decide(profile, NOW, only="cross_sell_after_purchase")
    chosen = _cross_sell(decision)
    assert chosen.channel is Channel.PUSH
    assert not any("declared preferred" in r.message for r in decision.rejections)


def test_a_declared_channel_not_worth_sending_on_leaves_the_action_its_best_channel() -> None:
    """Where the action's priority on the declared channel is not positive (an SMS costing
    more than the message is worth), the best other channel carries it, as without a
    declaration."""
    from nba.screening import ChannelSlot, SendTime
    from tests.test_ope import catalog

    action = catalog().actions[0]
    send = SendTime(NOW, NOW, "")
    slots = (ChannelSlot(Channel.EMAIL, send), ChannelSlot(Channel.SMS, send))
    candidate = ActionCandidate(action, 10.0, None, slots)
    worth = [ChannelAssessment(Channel.EMAIL, 0.4), ChannelAssessment(Channel.SMS, -0.1)]
    [option], _ = best_channels([candidate], [worth], Channel.SMS)
    assert option.slot is not None and option.slot.channel is Channel.EMAIL
    worth_it = [ChannelAssessment(Channel.EMAIL, 0.4), ChannelAssessment(Channel.SMS, 0.1)]
    [option], rejected = best_channels([candidate], [worth_it], Channel.SMS)
    assert option.slot is not None and option.slot.channel is Channel.SMS
    assert [r.channel for r in rejected] == [Channel.EMAIL]
    assert rejected[0].message == "priority 0.4 on email, 0.1 on sms" + (
        ", the customer's declared preferred channel"
    )
    [option], _ = best_channels([candidate], [worth_it])  # no declaration: the best score
    assert option.slot is not None and option.slot.channel is Channel.EMAIL


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
