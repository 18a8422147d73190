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
from dataclasses import dataclass

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

    def _message_codes(
        self, messages: Sequence[Message], with_offer: bool
    ) -> list[tuple[int, int, int, int]]:
        """(kind, category, product, offer) of each message as the model's indices, resolved
        by the model's own lookup once per message (-1: none; a product's category is its
        product's); the messages not seen before are resolved together, in one lookup (an
        elementwise one: each message's codes are those it gets alone)."""
        known = self._codes
        new = [m for m in dict.fromkeys(messages) if (m, with_offer) not in known]
        if new:
            options = {
                "kind": np.array([m.kind for m in new], dtype=object),
                "category": np.array([m.category for m in new], dtype=object),
                "product": np.array([m.product for m in new], dtype=object),
                "offer": np.array([m.offer if with_offer else None for m in new], dtype=object),
            }
            batch = self.response.lookup.batch(np.zeros(len(new), dtype=np.intp), 0, 0, options)
            for k, message in enumerate(new):
                known[(message, with_offer)] = (
                    int(batch.kind[k]),
                    int(batch.category[k]),
                    int(batch.product[k]),
                    int(batch.offer[k]),
                )
        return [known[(m, with_offer)] for m in messages]

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
        codes = np.array(self._message_codes(messages, with_offers), dtype=np.intp)
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

    def of_rows(self, rows: TruthRows, *, with_offers: bool = True) -> ExpectedValue:
        """:meth:`incremental` of one decision's ``rows``."""
        return self.incremental(
            [rows.customer_id] * len(rows.channels),
            rows.channels,
            rows.send_at,
            rows.messages,
            rows.recent_contacts,
            with_offers=with_offers,
        )


@dataclass(frozen=True, eq=False)
class TruthRows:
    """The messages one decision asks :class:`TrueValue` to value: one customer's, in order."""

    customer_id: str
    channels: list[Channel]
    send_at: list[dt.datetime]
    messages: list[Message]
    recent_contacts: list[int]

    def key(self) -> tuple[list[Channel], list[dt.datetime], list[Message], list[int]]:
        return self.channels, self.send_at, self.messages, self.recent_contacts


class TickMargins:
    """Incremental margins (:meth:`TrueValue.incremental`) of the rows a tick's decisions
    are about to ask for, valued in one call ahead of them (:meth:`prepare`), then handed
    out decision by decision (:meth:`margin`).

    A decision whose rows are not the ones prepared for its customer (its screening saw
    other budgets, or it was not prepared) is valued on its own. The values are the same
    either way: the truth values each row by itself (no reduction across the batch), so
    one call for a tick gives every margin to the bit as one call per decision does.
    ``prepared`` and ``valued_alone`` count the decisions served each way.
    """

    def __init__(self, truth: TrueValue) -> None:
        self.truth = truth
        self._ready: dict[str, tuple[TruthRows, np.ndarray]] = {}
        self.prepared = 0
        self.valued_alone = 0

    def prepare(self, requests: Sequence[TruthRows]) -> None:
        """Value every row of ``requests`` (at most one per customer) in one call, for the
        decisions to come; what an earlier :meth:`prepare` left unused is dropped."""
        requests = [r for r in requests if r.channels]
        self._ready = {}
        if not requests:
            return
        margin = self.truth.incremental(
            [r.customer_id for r in requests for _ in r.channels],
            [c for r in requests for c in r.channels],
            [t for r in requests for t in r.send_at],
            [m for r in requests for m in r.messages],
            [k for r in requests for k in r.recent_contacts],
        ).margin
        ends = np.cumsum([len(r.channels) for r in requests])
        for request, part in zip(requests, np.split(margin, ends[:-1]), strict=True):
            self._ready[request.customer_id] = (request, part)

    def margin(self, rows: TruthRows) -> np.ndarray:
        """The margins of ``rows``, shape ``(n,)``: prepared if they were, else valued now."""
        ready = self._ready.pop(rows.customer_id, None)
        if ready is not None and ready[0].key() == rows.key():
            self.prepared += 1
            return ready[1]
        if not rows.channels:
            return np.zeros(0)
        self.valued_alone += 1
        return self.truth.of_rows(rows).margin
