"""``DELETE /v1/customers/{id}``: forget a customer, and leave an audit line without them.

One erasure (:func:`erase_customer`):

1. registers it in the event archive's folder and in the decision log's
   (:class:`features.erasures.ErasureRegister`: the id's SHA-256 and the moment,
   fsynced), so that reading, compacting and exporting the archive drop the customer's
   events, reading the decision log drops their decisions, and ``nba archive compact``
   / ``nba erase`` purge both from the files;
2. records it in Redis (the id's SHA-256 and the moment, kept
   ``NBA_ERASURE_TOMBSTONE_DAYS``: late events are refused) and deletes every Redis key
   of the customer: profile, event ids, seasonal verdict, action history, decided
   contacts, cached (idempotent) answers, sends kept for attribution
   (:class:`features.online.erasure.RedisErasure`);
3. closes this process's current archive and decision-log segments, so that nothing
   of the customer stays in a segment a writer still holds (those are not purged);
4. logs ``erasure <pseudonym> by key <name>: <n> Redis keys`` on ``nba.audit``: the
   first 16 hex digits of the id's SHA-256 (the register's pseudonym), never the id.

The register is written first: a failure after it (Redis down: 503) is retried, and a
repeated erasure is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging

from features.erasures import ErasureRegister, customer_digest
from features.online.contact_state import RedisContactState
from features.online.erasure import Erased, RedisErasure
from serving.errors import UnavailableError
from serving.runtime import Runtime

audit = logging.getLogger("nba.audit")


def erase_customer(runtime: Runtime, customer_id: str, caller: str) -> Erased:
    """Forget ``customer_id`` (see the module doc); raises ``RedisDownError`` when Redis is
    down and :class:`UnavailableError` when the register cannot be written."""
    at = dt.datetime.now(dt.UTC)
    try:
        for folder in {runtime.settings.archive_path, runtime.settings.decision_log_path}:
            ErasureRegister(folder).record(customer_id, at)
    except OSError as error:
        raise UnavailableError(f"erasure register not writable ({error.strerror})") from None
    contacts = runtime.decisions.contacts
    if not isinstance(contacts, RedisContactState):  # the API always runs on Redis
        raise TypeError("erasure needs the Redis contact state")
    keep = int(runtime.settings.erasure_tombstone_days * 86_400)
    erased = runtime.gate.call(lambda: RedisErasure(contacts).erase(customer_id, at, keep))
    if runtime.ingestor.archive is not None:
        runtime.ingestor.archive.rotate()
    rotate = getattr(runtime.sink, "rotate", None)
    if callable(rotate):
        rotate()
    audit.info(
        "erasure %s by key %r: %d Redis keys deleted",
        customer_digest(customer_id)[:16],
        caller,
        erased.keys,
    )
    return erased
