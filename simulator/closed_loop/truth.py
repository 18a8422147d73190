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


def as_ns(moments: Sequence[dt.datetime]) -> np.ndarray:
    """UTC nanoseconds since the epoch of aware datetimes, shape ``(n,)``."""
    return np.array([round(m.timestamp() * 1e6) * 1000 for m in moments], dtype=np.int64)


class TrueValue:
    """Incremental expected value of messages under the true response model."""

    def __init__(self, response: ResponseModel) -> None:
        self.response = response
        # customer id -> row, resolved once: the model's own lookup goes through a
        # pandas index on every call, which dominated the oracle's per-decision cost
        self._rows = {str(c): i for i, c in enumerate(response.customer_ids)}

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
        value = self.response.expected_value(
            rows,
            np.array([c.value for c in channels], dtype=object),
            times,
            kind=np.array([m.kind for m in messages], dtype=object),
            category=np.array([m.category for m in messages], dtype=object),
            product=np.array([m.product for m in messages], dtype=object),
            offer=np.array([m.offer if with_offers else None for m in messages], dtype=object),
            recent_contacts=np.asarray(recent_contacts, dtype=float),
        )
        return value - self.response.baseline(rows, times)
