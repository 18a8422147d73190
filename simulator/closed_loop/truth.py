"""The true value of sending a message, from the simulator's response model.

:class:`TrueValue` answers, for a batch of messages (customer, channel, send
time, :class:`~simulator.closed_loop.mapping.Message`, recent contacts),
what each is worth *beyond doing nothing*: expected outcomes within the
attribution window with the message minus those without any contact
(:meth:`~simulator.ResponseModel.baseline`). Margins are net of
the offer's true cost, the channel's cost and the customer's future value on
the channel that an unsubscribe would lose. The oracle maximises it, the
metrics add it up, so both use the same yardstick.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

from nba.channels import Channel
from simulator import ExpectedValue, ResponseModel
from simulator.closed_loop.mapping import Message
from simulator.config import MESSAGE_CHANNELS
from simulator.response.lookup import MessageBatch


def as_ns(moments: Sequence[dt.datetime]) -> np.ndarray:
    """UTC nanoseconds since the epoch of aware datetimes, shape ``(n,)``."""
    return np.array([round(m.timestamp() * 1e6) * 1000 for m in moments], dtype=np.int64)


class TrueValue:
    """Incremental expected value of messages under the true response model."""

    def __init__(self, response: ResponseModel) -> None:
        self.response = response
        # ids resolved to the model's row indices once, not through pandas on every call
        # (most calls value the few slots of one decision, where that lookup dominated)
        self._rows = {str(c): i for i, c in enumerate(response.customer_ids)}
        self._channels = {c: i for i, c in enumerate(MESSAGE_CHANNELS)}
        self._codes: dict[tuple[Message, bool], tuple[int, int, int, int]] = {}

    def _message_codes(self, message: Message, with_offer: bool) -> tuple[int, int, int, int]:
        """(kind, category, product, offer) of ``message`` as the model's indices, resolved
        by the model's own lookup once per message (-1: none; a product's category is its
        product's)."""
        key = (message, with_offer)
        found = self._codes.get(key)
        if found is None:
            options = {
                "kind": message.kind,
                "category": message.category,
                "product": message.product,
                "offer": message.offer if with_offer else None,
            }
            batch = self.response.lookup.batch([0], 0, 0, options)
            found = (
                int(batch.kind[0]),
                int(batch.category[0]),
                int(batch.product[0]),
                int(batch.offer[0]),
            )
            self._codes[key] = found
        return found

    def incremental(
        self,
        customers: Sequence[str],
        channels: Sequence[Channel],
        send_at: Sequence[dt.datetime],
        messages: Sequence[Message],
        recent_contacts: Sequence[int],
        *,
        with_offers: bool = True,
    ) -> ExpectedValue:
        """Expected outcomes with each message minus without contact, each of shape ``(n,)``.

        ``with_offers=False`` values the same messages without their offers.
        """
        if not customers:
            empty = np.zeros(0)
            return ExpectedValue(empty, empty, empty, empty, empty, empty, empty)
        times = as_ns(send_at)
        rows = np.fromiter((self._rows[c] for c in customers), dtype=np.intp, count=len(customers))
        codes = np.array([self._message_codes(m, with_offers) for m in messages], dtype=np.intp)
        batch = MessageBatch(
            rows,
            np.array([self._channels[c] for c in channels], dtype=np.intp),
            times,
            codes[:, 0],
            codes[:, 1],
            codes[:, 2],
            codes[:, 3],
            np.asarray(recent_contacts, dtype=float),
        )
        terms = self.response.true_response.terms(batch)
        return terms.expected_value() - terms.baseline()  # TrueResponse.baseline(rows, times)
