"""The response model: what callers use, composed of lookup, probabilities and sampling."""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np

from simulator.clock import LocalClock
from simulator.config import SimulatorConfig
from simulator.response.history import ShoppingHistory
from simulator.response.lookup import (
    ArrayLike,
    MessageOptions,
    MessageOptionsBase,
    ResponseLookup,
    as_ns,
    broadcast,
)
from simulator.response.probabilities import (
    ExpectedValue,
    ResponseProbabilities,
    ResponseTerms,
    TrueResponse,
)
from simulator.response.sampling import ResponseSample, draw_outcomes
from simulator.world import Catalogue, CustomerWorld, OfferTable


class ResponseModel:
    """True response probabilities of simulated customers to messages.

    ``customers`` arguments are row indices into the customers table (ints) or
    customer ids (text). ``channel`` is one of the consent channels (e-mail,
    SMS, push, postal, call centre), by name or by index into
    ``config.MESSAGE_CHANNELS``. ``send_time`` is a tz-aware datetime, a
    pandas timestamp/series, numpy ``datetime64`` (read as UTC) or int64
    nanoseconds since the epoch (UTC). The keyword options that say what the
    message is (``kind``, ``category``, ``product``, ``offer``,
    ``recent_contacts``) are those of
    :class:`~simulator.response.lookup.MessageOptions`, the same for every method.

    Reminders are answered according to the customer's cart and browsing at
    send time, read from ``history`` (the simulation's own events); without
    one (while the history itself is being drawn) they are answered as if the
    cart and the browsing were an hour old.

    >>> from simulator import SimulatorConfig, simulate
    >>> sim = simulate(SimulatorConfig(n_customers=200, days=14, seed=3))
    >>> p = sim.response.probabilities([0, 1, 2], "email", sim.config.start, category="shoes")
    >>> p.open.shape, bool((p.click <= p.open).all())
    ((3,), True)
    """

    def __init__(
        self,
        world: CustomerWorld,
        catalogue: Catalogue,
        offers: OfferTable,
        clock: LocalClock,
        config: SimulatorConfig,
        customer_ids: np.ndarray,
        product_ids: np.ndarray,
        offer_ids: np.ndarray,
        *,
        history: ShoppingHistory | None = None,
    ):
        self.world = world
        self.catalogue = catalogue
        self.offers = offers
        self.clock = clock
        self.config = config
        self.lookup = ResponseLookup(catalogue, customer_ids, product_ids, offer_ids)
        self.history = history
        self.true_response = TrueResponse(world, catalogue, offers, clock, config, history)

    def with_history(self, history: ShoppingHistory | None) -> ResponseModel:
        """The same model reading cart and browsing state from ``history``."""
        return ResponseModel(
            self.world,
            self.catalogue,
            self.offers,
            self.clock,
            self.config,
            self.customer_ids,
            self.lookup.product_index.to_numpy(dtype=object),
            self.lookup.offer_index.to_numpy(dtype=object),
            history=history,
        )

    @property
    def n_customers(self) -> int:
        return len(self.world)

    @property
    def customer_ids(self) -> np.ndarray:
        """Customer ids by row, shape ``(n_customers,)``."""
        return self.lookup.customer_index.to_numpy(dtype=object)

    def probabilities(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        **message: Unpack[MessageOptions],
    ) -> ResponseProbabilities:
        """Marginal response probabilities, each of shape ``(n,)``."""
        return self._terms(customers, channel, send_time, message).marginals()

    def sample(
        self,
        rng: np.random.Generator,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        **message: Unpack[MessageOptions],
    ) -> ResponseSample:
        """Draw outcomes consistent with :meth:`probabilities` (same arguments), shape ``(n,)``.

        ``purchased`` includes purchases the customer would have made anyway
        within the attribution window; ``converted`` only those through the click.
        """
        return draw_outcomes(rng, self._terms(customers, channel, send_time, message))

    def expected_value(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        **message: Unpack[MessageOptions],
    ) -> ExpectedValue:
        """Expected purchases, revenue and margin within the attribution window, shape ``(n,)``."""
        return self._terms(customers, channel, send_time, message).expected_value()

    def offer_uplift(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        offer: ArrayLike,
        **message: Unpack[MessageOptionsBase],
    ) -> ExpectedValue:
        """True uplift of adding ``offer`` to the message: with minus without, shape ``(n,)``."""
        options: dict[str, Any] = dict(message)
        with_offer = self._terms(customers, channel, send_time, {**options, "offer": offer})
        without = self._terms(customers, channel, send_time, {**options, "offer": None})
        return with_offer.expected_value() - without.expected_value()

    def baseline(self, customers: ArrayLike, time: ArrayLike) -> ExpectedValue:
        """Expected outcomes without any contact, over the window from ``time``, shape ``(n,)``."""
        rows = self.customer_rows(customers)
        return self.true_response.baseline(rows, np.broadcast_to(as_ns(time), rows.shape))

    def hour_factor(
        self, customers: ArrayLike, channel: ArrayLike, send_time: ArrayLike
    ) -> np.ndarray:
        """Open multiplier of the send hour: 1 at the customer's peak, shape ``(n,)``."""
        rows = self.customer_rows(customers)
        n = rows.size
        ch = broadcast(self.lookup.channel_codes(channel), n)
        return self.true_response.hour_factor(rows, ch, broadcast(as_ns(send_time), n))

    def customer_rows(self, customers: ArrayLike) -> np.ndarray:
        """Row indices, shape ``(n,)``, of customers given as indices or ids."""
        return self.lookup.customer_rows(customers)

    def _terms(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        message: MessageOptions | dict[str, Any],
    ) -> ResponseTerms:
        return self.true_response.terms(self.lookup.batch(customers, channel, send_time, message))
