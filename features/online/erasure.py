"""Erasure ("forget me") of one customer from the online store, and its tombstone.

What Redis holds of a customer lives under keys that carry the customer's hash tag
``{<customer>}`` (one slot on a Redis Cluster, so one node answers for all of them):

* the profile (:mod:`features.online.redis_store`): ``<prefix>:s:{c}`` (state),
  ``<prefix>:e:{c}`` (recent event ids), ``<prefix>:p:{c}`` (layout 1),
  ``<prefix>:sv:{c}`` (seasonal verdict);
* the contact state (:mod:`features.online.contact_state`): ``<prefix>:h:{c}`` (action
  history), ``<prefix>:c:{c}`` (contacts decided, not yet reported),
  ``<prefix>:i:{c}:<digest>`` (idempotent answers: the cached decisions);
* the response statistics (:mod:`features.online.response_stats`): ``<prefix>:d:{c}``
  (sends kept for attribution).

The day's usage counters (``<prefix>:u:<day>``: offers given and actions sent, by id),
the response statistics' sums by segment and the products' popularity hold no customer
and are kept: they are counts, and the budgets they enforce were spent.

:meth:`RedisErasure.erase` sets the tombstone ``<prefix>:x:{c}`` (the erasure's moment,
expiring after ``keep_seconds``) before it deletes the keys, so an event applied in
between is refused, not counted into a new profile. While the tombstone lives, the
API refuses an event of that customer that happened at or before the erasure (a
delivery report, a replayed batch: it belongs to the erased relationship) and accepts
one after it as the first event of a new customer. The prefix-wide ``<prefix>:x`` key
lives as long as the latest tombstone, so that a batch of events costs one ``GET`` when
no tombstone can exist.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from features.online.contact_state import RedisContactState
from features.online.response_stats import sends_key

#: How long an erasure's tombstone refuses late events of the erased customer by default.
DEFAULT_TOMBSTONE_SECONDS = 30 * 86_400
_GLOB = re.compile(r"([*?\[\]\\])")


@dataclass(frozen=True)
class Erased:
    """What one erasure removed."""

    customer_id: str
    at: dt.datetime
    #: keys deleted (0: Redis held nothing of the customer)
    keys: int


class RedisErasure:
    """Erases customers from the Redis beside ``contacts`` (same client and prefix)."""

    def __init__(self, contacts: RedisContactState) -> None:
        self.contacts = contacts
        self.client: Any = contacts.client
        self.prefix = contacts.prefix

    def tombstone_key(self, customer_id: str) -> str:
        return f"{self.prefix}:x:{{{customer_id}}}"

    @property
    def latest_key(self) -> str:
        return f"{self.prefix}:x"

    def keys_of(self, customer_id: str) -> list[str]:
        """Every key that holds something of ``customer_id`` now (answers found by ``SCAN``)."""
        store = self.contacts.store
        keys = [
            store.state_key(customer_id),
            store.seen_key(customer_id),
            store.legacy_key(customer_id),
            store.verdict_key(customer_id),
            self.contacts.history_key(customer_id),
            self.contacts.contacts_key(customer_id),
            sends_key(self.prefix, customer_id),
        ]
        pattern = _GLOB.sub(r"\\\1", f"{self.prefix}:i:{{{customer_id}}}:") + "*"
        answers = {_text(k) for k in self.client.scan_iter(match=pattern, count=1000)}
        return keys + sorted(answers)

    def erase(
        self, customer_id: str, at: dt.datetime, keep_seconds: int = DEFAULT_TOMBSTONE_SECONDS
    ) -> Erased:
        """Delete every key of ``customer_id`` after setting its tombstone (``at``, kept
        ``keep_seconds``). Erasing again deletes nothing and moves the tombstone to ``at``."""
        stamp = repr(at.timestamp())
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.tombstone_key(customer_id), stamp, ex=keep_seconds)
        pipe.set(self.latest_key, stamp, ex=keep_seconds)
        pipe.execute()
        keys = self.keys_of(customer_id)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:  # one key per DEL: a cluster pipeline sends each to its node
            pipe.delete(key)
        deleted = sum(int(n) for n in pipe.execute())
        return Erased(customer_id, at, deleted)

    def erased(self, customer_ids: Sequence[str]) -> dict[str, dt.datetime]:
        """The erasure moment of each of ``customer_ids`` whose tombstone lives."""
        if not customer_ids or self.client.get(self.latest_key) is None:
            return {}
        ids = list(dict.fromkeys(customer_ids))
        pipe = self.client.pipeline(transaction=False)
        for cid in ids:
            pipe.get(self.tombstone_key(cid))
        return {
            cid: dt.datetime.fromtimestamp(float(raw), dt.UTC)
            for cid, raw in zip(ids, pipe.execute(), strict=True)
            if raw is not None
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = ["DEFAULT_TOMBSTONE_SECONDS", "Erased", "RedisErasure"]
