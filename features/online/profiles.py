"""Online profiles: events in, up-to-date profiles out, on any :class:`OnlineStore`.

Incoming events go through the very :func:`~features.definitions.event_ops`
used in batch, so a profile read online equals the batch profile of the same
events (tested).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.batch import ProfileBuild
from features.contract import EventRecord
from features.definitions import (
    SMALL_BATCH,
    TIER_RANK,
    CatalogLookup,
    ProductCatalog,
    decode_register,
    encode_register,
    epoch_seconds,
    event_ops,
    single_event_ops,
)
from features.finalise import CustomerStatic, FeaturePriors, build_profile, season_inputs
from features.online.store import ApplyResult, EventOps, OnlineStore, StoredCustomer
from features.seasonality import stored_verdict
from features.segment import CustomerPatch
from features.state import field_names
from nba.profile import CustomerProfile

#: Time zones kept in memory per process before the cache is reset.
TIMEZONE_CACHE_SIZE = 1_000_000
#: Customers read per round trip when the seasonal verdicts are written.
VERDICT_CHUNK = 500


class OnlineProfiles:
    """Keeps profiles in ``store`` up to date and reads them back.

    ``products`` is the contract products table (for categories, brands,
    launch dates and prices of the products events mention). ``default_timezone``: the
    zone of a customer whose own is not known (an ``identify`` without one, a visitor
    seen only in events): the retailer's (the contact policy's ``timezone``), so that
    quiet hours and local days are the ones its customers most likely live by; UTC
    when not given.
    """

    def __init__(
        self, store: OnlineStore, products: pd.DataFrame, default_timezone: str = "UTC"
    ) -> None:
        self.store = store
        self.default_timezone = default_timezone
        self.catalog = ProductCatalog.from_products(products)
        self._priors: FeaturePriors | None = None
        self._timezones: dict[str, str] = {}
        # registered without a zone (a birthday, or an identify's other traits): the
        # retailer's zone stands in
        self._unzoned: set[str] = set()
        self._lookup: CatalogLookup | None = None

    @property
    def priors(self) -> FeaturePriors:
        if self._priors is None:
            self._priors = self.store.read_priors()
        return self._priors

    def materialise(self, build: ProfileBuild, *, season_verdicts: bool = False) -> int:
        """Load a batch build into the store (states, statics, priors); with
        ``season_verdicts`` (the nightly load into Redis), also the seasonal verdicts of
        the build's day (:func:`write_season_verdicts`: the test for every customer,
        ~0.3-0.5 ms each, which a simulation's own store does without)."""
        self.store.write_priors(build.priors)
        self._priors = build.priors
        count = self.store.materialise(build.states, build.statics, build.as_of)
        if season_verdicts:
            ids = sorted(set(build.states) | set(build.statics))
            self.write_season_verdicts(build.as_of, ids)
        return count

    def write_season_verdicts(
        self, as_of: dt.datetime, customer_ids: Iterable[str] | None = None
    ) -> int:
        """:func:`write_season_verdicts` with this store's priors."""
        return write_season_verdicts(self.store, self.priors, as_of, customer_ids)

    def to_event_ops(self, events: pd.DataFrame) -> list[EventOps]:
        """The ops of each event (contract columns, validated), in input order."""
        if events.empty:
            return []
        events = events.reset_index(drop=True)
        if len(events) <= SMALL_BATCH:
            return self._event_ops_one_by_one(events)
        customer_ids = [str(c) for c in events["customer_id"].unique()]
        timezones = pd.Series(self._timezones_of(customer_ids), dtype="object")
        parts = []
        for fam in event_ops(events, self.catalog, timezones, self.default_timezone):
            if fam.frame.empty:
                continue
            parts.append(
                pd.DataFrame(
                    {
                        "row": fam.frame["row"].to_numpy(),
                        "field": field_names(fam.family.name, fam.frame["key"]).to_numpy(
                            dtype=object
                        ),
                        "value": fam.frame["value"].to_numpy(dtype=float),
                    }
                )
            )
        ops = pd.concat(parts, ignore_index=True).sort_values("row", kind="stable")
        rows = ops["row"].to_numpy()
        fields = ops["field"].to_numpy(dtype=object)
        values = ops["value"].to_numpy(dtype=float)
        bounds = np.searchsorted(rows, np.arange(len(events) + 1))
        seconds = epoch_seconds(events["timestamp"])
        out = []
        for i, (cid, eid) in enumerate(zip(events["customer_id"], events["event_id"], strict=True)):
            s, e = bounds[i], bounds[i + 1]
            out.append(
                EventOps(
                    customer_id=str(cid),
                    event_id=str(eid),
                    ts=int(seconds[i]),
                    ops=tuple(zip(fields[s:e].tolist(), values[s:e].tolist(), strict=True)),
                )
            )
        return out

    def _event_ops_one_by_one(self, events: pd.DataFrame) -> list[EventOps]:
        """Small batches: event by event, no pandas per family."""
        seconds = epoch_seconds(events["timestamp"]).tolist()
        names = ["customer_id", "event_id", "event_type", "channel", "product_id", "offer_id"]
        columns = [
            events[c].astype(object).where(events[c].notna(), None).tolist()
            for c in [*names, "properties"]
        ]
        revenue = events["revenue"].astype(float).tolist()
        cid, eid, etype, channel, product, offer, props = columns
        rows = zip(cid, eid, seconds, etype, channel, product, offer, revenue, props, strict=True)
        return self._ops_of(list(rows))

    def record_ops(
        self, records: Sequence[EventRecord], prospects: Collection[str] = ()
    ) -> list[EventOps]:
        """The ops of validated event records (the API's events), without a data frame.
        ``prospects``: customers :meth:`registered` has just found unregistered (no zone
        known: the retailer's), whose static attributes are not read again."""
        return self._ops_of(
            [
                (
                    r.customer_id,
                    r.event_id,
                    math.floor(r.timestamp.timestamp()),
                    r.event_type.value,
                    r.channel.value,
                    r.product_id,
                    r.offer_id,
                    r.revenue,
                    None if r.properties is None else json.dumps(r.properties),
                )
                for r in records
            ],
            prospects,
        )

    def row_ops(self, rows: Sequence[tuple[Any, ...]]) -> list[EventOps]:
        """The ops of events given as rows ``(customer_id, event_id, epoch seconds,
        event_type, channel, product_id, offer_id, revenue, properties JSON)`` (values as
        the contract's columns hold them, ``None`` for missing), without a data frame."""
        return self._ops_of(rows)

    def _ops_of(
        self, rows: Sequence[tuple[Any, ...]], prospects: Collection[str] = ()
    ) -> list[EventOps]:
        if self._lookup is None:
            self._lookup = CatalogLookup.of(self.catalog)
        zones = self._timezones_of(list(dict.fromkeys(str(r[0]) for r in rows)), prospects)
        out = []
        for cid, eid, ts, etype, channel, product, offer, revenue, props in rows:
            customer = str(cid)
            ops = single_event_ops(
                int(ts),
                str(etype),
                str(channel),
                None if product is None else str(product),
                offer,
                revenue,
                props,
                zones.get(customer, self.default_timezone),
                self._lookup,
            )
            out.append(EventOps(customer, str(eid), int(ts), tuple(ops)))
        return out

    def _timezones_of(
        self, customer_ids: Sequence[str], prospects: Collection[str] = ()
    ) -> dict[str, str]:
        """Time zones, cached in this process (they change only through ``register_customer``;
        a customer registered without one is read again: another process may give it); none
        for ``prospects``, whose static attributes the caller has just read."""
        missing = [c for c in customer_ids if c not in self._timezones and c not in prospects]
        if missing:
            if len(self._timezones) > TIMEZONE_CACHE_SIZE:
                self._timezones.clear()
            found = self.store.timezones(missing)
            self._timezones.update(found)
        return {c: self._timezones[c] for c in customer_ids if c in self._timezones}

    def registered(self, customer_ids: Sequence[str]) -> set[str]:
        """The customers among ``customer_ids`` that are registered (the customers table,
        or an identify: :attr:`CustomerStatic.registered`); the others are prospects seen
        only in events."""
        ids = list(dict.fromkeys(customer_ids))
        # the ones not cached: their static attributes in one read each (a prospect's is
        # read again next time: another process may register it meanwhile)
        rest = [c for c in ids if c not in self._timezones and c not in self._unzoned]
        if rest:
            for cid, static in self.store.statics(rest).items():
                self._remember(cid, static)
        return {c for c in ids if c in self._timezones or c in self._unzoned}

    def _remember(self, customer_id: str, static: CustomerStatic) -> None:
        """Cache what registers a customer (bounded as the time zones are)."""
        if len(self._timezones) + len(self._unzoned) > TIMEZONE_CACHE_SIZE:
            self._timezones.clear()
            self._unzoned.clear()
        if static.zone_known:
            self._timezones[customer_id] = static.timezone
            self._unzoned.discard(customer_id)
        elif static.registered:
            self._unzoned.add(customer_id)

    def ingest(self, events: pd.DataFrame) -> ApplyResult:
        """Apply validated contract events; replays and stale events change nothing."""
        return self.store.apply(self.to_event_ops(events))

    def ingest_records(
        self, records: Sequence[EventRecord], prospects: Collection[str] = ()
    ) -> ApplyResult:
        """:meth:`ingest` for validated event records (``prospects``: :meth:`record_ops`)."""
        return self.store.apply(self.record_ops(records, prospects))

    def profiles(
        self, customer_ids: Sequence[str], as_of: dt.datetime
    ) -> list[CustomerProfile | None]:
        """Profiles at ``as_of``; ``None`` for customers the store does not know."""
        priors = self.priors
        out: list[CustomerProfile | None] = []
        for cid, stored in zip(customer_ids, self.store.read(customer_ids), strict=True):
            if stored is None:
                out.append(None)
            else:
                static = self._static(stored.static)
                out.append(build_profile(cid, stored.state, as_of, static, priors))
        return out

    def from_stored(
        self, customer_id: str, stored: StoredCustomer | None, as_of: dt.datetime
    ) -> CustomerProfile | None:
        """The profile of a customer already read from the store (``None`` if unknown)."""
        if stored is None:
            return None
        static = self._static(stored.static)
        return build_profile(customer_id, stored.state, as_of, static, self.priors, stored.season)

    def _static(self, static: CustomerStatic) -> CustomerStatic:
        """``static`` in the retailer's zone when the customer's own is not known."""
        if static.zone_known or static.timezone == self.default_timezone:
            return static
        return dataclasses.replace(static, timezone=self.default_timezone)

    def profile(self, customer_id: str, as_of: dt.datetime) -> CustomerProfile | None:
        return self.profiles([customer_id], as_of)[0]

    def register_customer(self, customer_id: str, static: CustomerStatic) -> None:
        self.store.upsert_static(customer_id, static)
        self._remember(customer_id, static)

    def update_customer(
        self,
        customer_id: str,
        *,
        timezone: str | None = None,
        birth_date: dt.date | None = None,
        stored: StoredCustomer | None = None,
    ) -> None:
        """Change the static attributes given (an ``identify``), keeping the others
        (``stored``: the customer as already read, else read here). An identify registers
        the customer, whatever traits it gives: one without a zone or a birthday is
        marked so (:attr:`CustomerStatic.identified`); a registered customer's static
        attributes are not written again when it gives neither."""
        if stored is None:
            [stored] = self.store.read([customer_id])
        self._identified(customer_id, timezone, birth_date, stored)

    def _identified(
        self,
        customer_id: str,
        timezone: str | None,
        birth_date: dt.date | None,
        stored: StoredCustomer | None,
    ) -> None:
        """:meth:`update_customer` of a customer already read (``None``: not stored)."""
        old = stored.static if stored is not None else CustomerStatic(zone_known=False)
        if timezone is None and birth_date is None and old.registered:
            self._remember(customer_id, old)
            return
        self.register_customer(
            customer_id,
            CustomerStatic(
                timezone=timezone or old.timezone,
                birth_date=birth_date or old.birth_date,
                zone_known=timezone is not None or old.zone_known,
                identified=True,
            ),
        )

    def apply_patches(self, patches: Sequence[CustomerPatch], now: dt.datetime) -> None:
        """Apply ``identify`` patches as the customers table's columns are applied in batch
        (:func:`features.definitions.customer_ops`): time zone and birthday as static
        attributes; sign-up time (``createdAt``: first seen, which the welcome series
        counts from), loyalty tier and declared preferences as state. Returns the
        customers whose state changed.

        The tier is a register stamped with the time it was reached: the first tier
        known of a customer is stamped with their sign-up time when the patch gives it
        (as a customers-table row is: syncing an existing gold customer is no tier
        reached today), else with the message's time; a later patch stamps a *different*
        tier with its message's time (reached then) and leaves the same tier as it was,
        so a journey tool that sends every trait with every ``identify`` does not
        congratulate the customer again each time. A patch's time is its message's
        ``timestamp``, else ``now``; its ops are applied as an event whose id is their
        digest, so a replayed ``identify`` is a duplicate.
        """
        ids = list(dict.fromkeys(p.customer_id for p in patches))
        stored = dict(zip(ids, self.store.read(ids), strict=True))
        tiers: dict[str, int | None] = {}
        for cid, found in stored.items():
            enc = None if found is None else found.state.get("lt")
            tiers[cid] = None if enc is None else decode_register(enc)[1]
        changes = []
        for patch in patches:
            cid = patch.customer_id
            # an identify registers the customer, whatever it gives (written once)
            self._identified(cid, patch.timezone, patch.birth_date, stored[cid])
            at = math.floor((patch.declared_at or now).timestamp())
            ops = patch.preference_ops(at)
            if patch.created_at is not None:
                signed = float(math.floor(patch.created_at.timestamp()))
                ops += [("t0", signed), ("su", signed)]
            if patch.loyalty_tier is not None:
                rank = TIER_RANK[patch.loyalty_tier.value]
                known = tiers[cid]
                if known is None and patch.created_at is not None:
                    signed_up = math.floor(patch.created_at.timestamp())
                    ops.append(("lt", float(encode_register(signed_up, rank))))
                elif known != rank:
                    ops.append(("lt", float(encode_register(at, rank))))
                if rank > 0:
                    ops.append(("lm", float(rank)))
                tiers[cid] = rank
            if ops:  # registers and minima: a replayed identify changes nothing
                digest = hashlib.sha256(repr(ops).encode()).hexdigest()[:16]
                changes.append(EventOps(cid, f"{cid}:identify:{at}:{digest}", at, tuple(ops)))
        if changes:
            self.store.apply(changes)


def write_season_verdicts(
    store: OnlineStore,
    priors: FeaturePriors,
    as_of: dt.datetime,
    customer_ids: Iterable[str] | None = None,
) -> int:
    """Run the seasonal test of every customer (default: all the store holds) for the UTC
    day of ``as_of`` and store the verdicts, so that a decision of that day reads the
    verdict instead of running the test on the request (a daily job, ``nba features
    verdicts``; :meth:`OnlineProfiles.materialise` writes the build's day). A verdict is
    used only for the state and day it was computed from: a customer who shops again
    that day gets the test again. Returns how many verdicts were stored."""
    ids = list(store.customer_ids() if customer_ids is None else customer_ids)
    now = as_of.timestamp()
    written = 0
    for start in range(0, len(ids), VERDICT_CHUNK):
        verdicts = {}
        for stored in store.read(ids[start : start + VERDICT_CHUNK]):
            inputs = None if stored is None else season_inputs(stored.state, now, priors)
            if stored is not None and inputs is not None:
                verdicts[stored.customer_id] = stored_verdict(inputs)
        store.write_verdicts(verdicts)
        written += len(verdicts)
    return written
