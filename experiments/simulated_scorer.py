"""A rule-based scorer that reads engagement from open rates where opens are tracked.

:class:`~nba.scoring.RuleBasedScorer` weighs channels by the customer's smoothed
*click* rate. E-mails are clicked by a few percent of recipients, so a few
months of history leave that rate close to its prior: on the simulated
retailer its rank correlation with the true value of an e-mail is about 0.05,
against about 0.5 for the smoothed *open* rate. :class:`EngagementScorer` is
the same scorer with the channel factor read from open rates on channels that
report opens (e-mail, push, calls), and from clicks elsewhere (SMS and postal
mail report no opens). It uses profile fields only, no ground truth; it is
here to measure what better engagement signals buy in the closed loop, and
belongs in :mod:`nba.scoring` if it earns its place.

>>> import datetime as dt
>>> from nba.actions import Action
>>> from nba.context import CustomerContext
>>> from nba.profile import ChannelEngagement, CustomerProfile
>>> from nba.screening import ActionCandidate, ChannelSlot
>>> from nba.timing import SendTime
>>> now = dt.datetime(2026, 3, 6, 17, tzinfo=dt.UTC)
>>> action = Action(id="picks", type="product_recommendation", channels=["email"], value=10)
>>> slot = ChannelSlot(Channel.EMAIL, SendTime(now, now, ""))
>>> candidate = ActionCandidate(action, 10.0, None, (slot,))
>>> def email_score(open_rate):
...     engaged = ChannelEngagement(sent=20, opened=int(open_rate * 20), open_rate=open_rate)
...     profile = CustomerProfile("C1", days_since_last_visit=1.0,
...                               engagement={Channel.EMAIL: engaged})
...     [score] = EngagementScorer().score(CustomerContext(profile, now), [candidate])
...     return score.propensity[Channel.EMAIL]
>>> email_score(0.4) > email_score(0.2) > email_score(0.05)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nba.channels import Channel
from nba.context import CustomerContext
from nba.scoring import RuleBasedScorer

#: Typical open rates of channels that report opens (e-mail 20 %, push 8 %, calls answered 30 %).
REFERENCE_OPEN_RATES: Mapping[Channel, float] = {
    Channel.EMAIL: 0.20,
    Channel.PUSH: 0.08,
    Channel.CALL_CENTRE: 0.30,
}


@dataclass(frozen=True)
class EngagementScorer(RuleBasedScorer):
    """:class:`~nba.scoring.RuleBasedScorer` with open-rate channel factors (module doc).

    On a channel in ``reference_open_rates`` where the customer has received
    messages, the channel factor is ``reach x open_rate / reference`` within
    ``[min_factor, max_factor]``; elsewhere it is the parent's.
    """

    reference_open_rates: Mapping[Channel, float] = field(
        default_factory=lambda: dict(REFERENCE_OPEN_RATES)
    )
    min_factor: float = 0.1
    max_factor: float = 3.0

    def _channel_factor(self, context: CustomerContext, channel: Channel) -> float:
        reference = self.reference_open_rates.get(channel)
        engagement = context.profile.engagement.get(channel)
        if reference is None or engagement is None or engagement.sent == 0:
            return super()._channel_factor(context, channel)
        relative = min(self.max_factor, max(self.min_factor, engagement.open_rate / reference))
        return self.channel_reach.get(channel, 1.0) * relative
