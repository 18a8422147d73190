"""The true response of simulated customers to an outbound message.

:class:`ResponseModel` answers, for arrays of customers and one message each
(channel, send time, kind, category or product, offer): how likely is it to be
delivered, opened, clicked, to lead to a purchase, to make the customer
withdraw consent. The historical campaigns are drawn from this very model, and
closed-loop evaluations use it too, so history and evaluation agree.

Probabilities come from the customer's ground truth:

* open = responsiveness on the channel (higher on the preferred one) x the
  send-hour factor (1 at the customer's peak local hour, down to the channel's
  floor far from it) x fatigue (each recent contact, weighted by how
  interruptive the channel is) x lapse;
* click = open x click rate x relevance (category taste, new products and
  launches for early adopters, price for price-sensitive customers) x message
  kind (a birthday message in its window is worth much more) x the offer's
  pull, which depends on the customer's promotion sensitivity, their own
  response to offers and whether the offer clears their threshold;
* convert = click x conversion, lifted by the offer the same way, and by the
  moment: a cart reminder decays with the cart's age, a browse reminder with
  the browsing's recency and grows with its intensity, a birthday message
  converts more in its window, seasonal buyers convert more in and just
  before their months;
* purchase = converts, or buys anyway within the attribution window at the
  customer's organic rate (faster while holding an opened coupon);
* unsubscribe = channel rate, higher for unresponsive customers, at quiet hours
  on intrusive channels, and with fatigue; it costs the customer's future
  value on the channel, which the expected margin subtracts.

The playbook's effects and their sources are in
:class:`~simulator.config.MarketingEffects`. Cart and browsing state at send
time come from the simulation's own events (:mod:`.history`).

All array arguments are broadcast to shape ``(n,)``; results have shape ``(n,)``.

The model is composed of one module per concern: :mod:`.lookup` resolves
what callers pass (ids, names, times, message options) to indices,
:mod:`.probabilities` computes the truth's probabilities and values,
:mod:`.history` reads cart and browsing state from the events, and
:mod:`.sampling` draws outcomes from them.
"""

from simulator.response.lookup import MessageOptions
from simulator.response.model import ResponseModel
from simulator.response.probabilities import (
    INTRUSIVE_CHANNELS,
    ExpectedValue,
    ResponseProbabilities,
)
from simulator.response.sampling import ResponseSample

__all__ = [
    "INTRUSIVE_CHANNELS",
    "ExpectedValue",
    "MessageOptions",
    "ResponseModel",
    "ResponseProbabilities",
    "ResponseSample",
]
