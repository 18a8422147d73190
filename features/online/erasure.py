"""Erasure ("forget me") of one customer from the online store, and its record.

What Redis holds of a customer lives under keys that carry the customer's hash tag
``{<customer>}`` (one slot on a Redis Cluster, so one node answers for all of them):

* the profile (:mod:`features.online.redis_store`): ``<prefix>:s:{c}`` (state, with the
  hashes of the recent event ids), ``<prefix>:e:{c}`` (recent event ids, layout 2),
  ``<prefix>:p:{c}`` (layout 1),
  ``<prefix>:sv:{c}`` (seasonal verdict);
* the contact state (:mod:`features.online.contact_state`): ``<prefix>:h:{c}`` (action
  history), ``<prefix>:c:{c}`` (contacts decided, not yet reported),
  ``<prefix>:cd:{c}`` (what they scheduled, with supersession on),
  ``<prefix>:i:{c}:<digest>`` (idempotent answers: the cached decisions);
* the response statistics (:mod:`features.online.response_stats`): ``<prefix>:d:{c}``
  (sends kept for attribution).

The day's usage counters (``<prefix>:u:<day>``: offers given and actions sent, by id),
the response statistics' sums by segment and the products' popularity hold no customer
and are kept: they are counts, and the budgets they enforce were spent.

:meth:`RedisErasure.erase` records the erasure before it deletes the keys: the sorted
set ``<prefix>:x`` maps the SHA-256 of each erased id (the erasure register's pseudonym,
:mod:`features.erasures`) to the erasure's moment, so an event applied in between is
refused, not counted into a new profile, and nothing keyed by the customer stays. While
the entry lives (at least ``keep_seconds``: each erasure drops the entries older than
that, and the set expires that long after the latest), the API refuses an event of that
customer that happened at or before the erasure (a delivery report, a replayed batch:
it belongs to the erased relationship) and accepts one after it as the first event of a
new customer. A batch of events costs one ``EXISTS`` and, while any erasure is kept,
one ``ZMSCORE`` of its customers' pseudonyms.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from features.erasures import customer_digest
from features.online.contact_state import RedisContactState
from features.online.response_stats import sends_key

#: How long an erasure is kept to refuse late events of the erased customer, by default.
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

    @property
    def erasures_key(self) -> str:
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
            self.contacts.scheduled_key(customer_id),
            sends_key(self.prefix, customer_id),
        ]
        pattern = _GLOB.sub(r"\\\1", f"{self.prefix}:i:{{{customer_id}}}:") + "*"
        answers = {_text(k) for k in self.client.scan_iter(match=pattern, count=1000)}
        return keys + sorted(answers)

    def erase(
        self, customer_id: str, at: dt.datetime, keep_seconds: int = DEFAULT_TOMBSTONE_SECONDS
    ) -> Erased:
        """Record the erasure of ``customer_id`` at ``at`` (kept ``keep_seconds``), then
        delete every key of theirs. Erasing again deletes nothing and moves the recorded
        moment to ``at``."""
        stamp = at.timestamp()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.erasures_key, {customer_digest(customer_id): stamp})
        pipe.zremrangebyscore(self.erasures_key, "-inf", f"({stamp - keep_seconds}")
        pipe.expire(self.erasures_key, keep_seconds)
        pipe.execute()
        keys = self.keys_of(customer_id)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:  # one key per DEL: a cluster pipeline sends each to its node
            pipe.delete(key)
        deleted = sum(int(n) for n in pipe.execute())
        return Erased(customer_id, at, deleted)

    def erased(self, customer_ids: Sequence[str]) -> dict[str, dt.datetime]:
        """The erasure moment of each of ``customer_ids`` whose erasure is still kept."""
        if not customer_ids or not self.client.exists(self.erasures_key):
            return {}
        ids = list(dict.fromkeys(customer_ids))
        scores = self.client.execute_command(
            "ZMSCORE", self.erasures_key, *[customer_digest(c) for c in ids]
        )
        return {
            cid: dt.datetime.fromtimestamp(float(score), dt.UTC)
            for cid, score in zip(ids, scores, strict=True)
            if score is not None
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = ["DEFAULT_TOMBSTONE_SECONDS", "Erased", "RedisErasure"]
