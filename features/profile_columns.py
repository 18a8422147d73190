"""Profiles of many customers at once, read from their combined state as columns.

:func:`features.finalise.build_profile` is the definition: it reads one customer's
state (a mapping of ``family:key`` fields). :func:`read_profiles` computes the same
profiles for every customer of a batch from the integer-coded columnar state
(:class:`features.columnar.ColumnarState` or a point-in-time
:class:`~features.columnar.CutFields`): each feature is a numpy reduction over all
customers' fields of its family (windows, sums, maxima, top-N by sort) instead of a
Python loop per customer and field. It gives the same profile, field by field and to
the bit, as ``build_profile`` of each customer's flat state in the same field order
(tests/test_features_profile_columns.py checks it on generated events): floating sums
are accumulated in the state's order (``np.bincount`` adds its weights one after the
other, as Python's ``sum`` does on 3.11), and ties are broken as the definition breaks
them. Keep the two in step when a definition changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from features.definitions import (
    CONVERSION_DAYS,
    DEFAULT_VIEW_SECONDS,
    FAMILIES,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    TIERS,
    VIEW_DAY_SCALE,
    KeyKind,
    decode_hours_register,
    local_days,
    time_zone,
)
from features.finalise import (
    AT_RISK_GAPS,
    BROWSE_DAYS,
    BROWSE_LEFT_SECONDS,
    CART_DAYS,
    CONTACT_BUCKETS,
    DEFAULT_PURCHASE_GAP_DAYS,
    LAPSED_GAPS,
    LEFT_DAYS_WINDOW,
    MIN_PURCHASE_GAP_DAYS,
    NEW_CUSTOMER_DAYS,
    PRIOR_WEIGHT,
    RECENT_PURCHASE_DAYS,
    RECOMMENDATION_DAYS,
    TOP_N,
    CustomerStatic,
    FeaturePriors,
    build_profile,
    calendar_days_since,
    contact_moments,
    days_to_birthday,
)
from features.seasonality import seasonal_months
from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import (
    HOURS_PER_WEEK,
    ChannelEngagement,
    ContactHistory,
    CustomerProfile,
    JourneyPhase,
    LifecycleState,
)

_FAMILY_CODE = {name: i for i, name in enumerate(FAMILIES)}
_CHANNEL_LIST = list(Channel)
_CHANNEL_CODE = {c.value: i for i, c in enumerate(_CHANNEL_LIST)}
_CONSENT_CODE = {c.value: i for i, c in enumerate(CONSENT_CHANNELS)}
#: Channels a register (``g``) opens: the consent channels, and the wallet (a pass added).
_REGISTERED = (*CONSENT_CHANNELS, Channel.WALLET)
_REGISTERED_CODE = {c.value: i for i, c in enumerate(_REGISTERED)}
#: Families whose keys are product or category texts, read in text order or looked up
#: across families (a product in the cart and among the purchases).
_TEXT_FAMILIES = ("ca", "cr", "cb", "cv", "v", "vs", "vc", "c", "b")
#: Entities read at once: bounds the dense per-customer arrays (168 hours each).
CHUNK = 20_000
_EMPTY: tuple[Any, ...] = ()


def read_profiles(
    entity: np.ndarray,
    field: np.ndarray,
    value: np.ndarray,
    families: np.ndarray,
    keys: np.ndarray,
    ids: Sequence[str],
    statics: Sequence[CustomerStatic],
    as_of: Sequence[dt.datetime],
    priors: FeaturePriors,
) -> list[CustomerProfile]:
    """The profile of each entity ``i`` (``ids[i]``, ``statics[i]``, read at ``as_of[i]``)
    from the state entries ``(entity, field, value)``, sorted by entity (the field order
    within an entity is the state's order). ``families[f]`` and ``keys[f]`` are the
    family and key text of field code ``f``: what ``build_profile`` gives for each."""
    n = len(ids)
    codes = _FieldCodes(families, keys)
    bounds = np.searchsorted(entity, np.arange(0, n + CHUNK, CHUNK).clip(max=n))
    out: list[CustomerProfile] = []
    # customers with a return or cancellation: read by the definition itself (the purchases
    # it undoes are matched in Python: few customers, and no second copy of the rule)
    returning = np.flatnonzero(codes.family[field] == _FAMILY_CODE["rt"])
    for c, start in enumerate(range(0, n, CHUNK)):
        end = min(start + CHUNK, n)
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        out += _Chunk(
            codes,
            entity[lo:hi] - start,
            field[lo:hi],
            value[lo:hi],
            ids[start:end],
            statics[start:end],
            as_of[start:end],
            priors,
        ).profiles()
    if len(returning):
        names = [
            f if FAMILIES[f].key is KeyKind.NONE else f"{f}:{k}"
            for f, k in zip(families.tolist(), codes.keys, strict=True)
        ]
        for i in np.unique(entity[returning]).tolist():
            lo, hi = np.searchsorted(entity, [i, i + 1])
            state = {
                names[f]: v
                for f, v in zip(field[lo:hi].tolist(), value[lo:hi].tolist(), strict=True)
            }
            out[i] = build_profile(ids[i], state, as_of[i], statics[i], priors)
    return out


def left_day_sums(
    entity: np.ndarray,
    field: np.ndarray,
    value: np.ndarray,
    families: np.ndarray,
    keys: np.ndarray,
    n: int,
    as_of: Sequence[dt.datetime],
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Over the ``n`` entities (as :func:`read_profiles` reads them): the sum of their
    ``browse_left_days_30d`` and of its squares, and the same of ``cart_left_days_30d``
    (for :func:`features.finalise.trigger_prior`). Only the families they read are read."""
    codes = _FieldCodes(families, keys)
    wanted = np.isin(codes.family, [_FAMILY_CODE[f] for f in ("pd", "wc", "wm")])
    mine = wanted[field]
    chunk = _Chunk(
        codes,
        entity[mine],
        field[mine],
        value[mine],
        [""] * n,
        [CustomerStatic()] * n,
        as_of,
        FeaturePriors(),
    )
    browse, cart = chunk.left_days(*chunk.family("pd"))
    return (
        (float(browse.sum()), float((browse * browse).sum())),
        (float(cart.sum()), float((cart * cart).sum())),
    )


class _FieldCodes:
    """What each field code means: its family, and its key as a number, channel or text."""

    def __init__(self, families: np.ndarray, keys: np.ndarray) -> None:
        self.keys = keys.tolist()
        self.family = np.array([_FAMILY_CODE[f] for f in families.tolist()], dtype=np.int64)
        self._cache: dict[tuple[str, ...], np.ndarray] = {}
        names = families.tolist()
        # a purchase by day (``bp``, ``product|day``) ranks as its product's text
        text_of = [
            k if f in _TEXT_FAMILIES else k.rpartition("|")[0] if f == "bp" else None
            for f, k in zip(names, self.keys, strict=True)
        ]
        texts = sorted({t for t in text_of if t is not None})
        self.texts = texts
        rank = {t: i for i, t in enumerate(texts)}
        self.rank = np.array([-1 if t is None else rank[t] for t in text_of], dtype=np.int64)

    def per_field(self, convert: Callable[[str], float], *families: str) -> np.ndarray:
        """``convert(key)`` of every field code of ``families`` (NaN for the others),
        computed once."""
        name = (convert.__name__, *families)
        got = self._cache.get(name)
        if got is None:
            got = np.full(len(self.keys), np.nan)
            wanted = np.flatnonzero(np.isin(self.family, [_FAMILY_CODE[f] for f in families]))
            got[wanted] = [convert(self.keys[i]) for i in wanted.tolist()]
            self._cache[name] = got
        return got


def _number(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return np.nan


def _number_of_day_key(chunk: _Chunk) -> Callable[[str, np.ndarray], np.ndarray]:
    """The day number of each entry's key, for entries of a day-keyed family."""
    return lambda family, field: chunk.codes.per_field(_number, family)[field].astype(np.int64)


def _tail_number(key: str) -> float:
    return _number(key.rpartition("|")[2])


def _consent(key: str) -> float:
    return _CONSENT_CODE.get(key, -1)


def _registered(key: str) -> float:
    return _REGISTERED_CODE.get(key, -1)


def _tail_consent(key: str) -> float:
    return _CONSENT_CODE.get(key.rpartition("|")[0], -1)


def _tail_channel(key: str) -> float:
    return _CHANNEL_CODE.get(key.rpartition("|")[0], -1)


class _Chunk:
    """One chunk of entities (``0 <= entity < len(ids)``)."""

    def __init__(
        self,
        codes: _FieldCodes,
        entity: np.ndarray,
        field: np.ndarray,
        value: np.ndarray,
        ids: Sequence[str],
        statics: Sequence[CustomerStatic],
        as_of: Sequence[dt.datetime],
        priors: FeaturePriors,
    ) -> None:
        self.codes = codes
        self.n = len(ids)
        self.ids, self.statics, self.as_of, self.priors = ids, statics, as_of, priors
        self.now = np.array([a.timestamp() for a in as_of], dtype=float)
        fam = codes.family[field]
        # by family, the state's order within (a stable sort of small integers is a radix sort)
        order = np.argsort(fam.astype(np.uint8), kind="stable")
        counts = np.bincount(fam, minlength=len(FAMILIES))
        ends = np.cumsum(counts)
        self._parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, i in _FAMILY_CODE.items():
            rows = order[ends[i] - counts[i] : ends[i]]
            self._parts[name] = (entity[rows], field[rows], value[rows])
        self._parts["cb"] = self._latest_purchases()

    def _latest_purchases(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each product's latest purchase per entity (``finalise.latest_purchases``): the
        latest of its purchases by day (``bp``) and of the ``cb`` earlier versions kept,
        one entry per entity and product (its field one that ranks as the product)."""
        entity, field, value = (
            np.concatenate(parts)
            for parts in zip(self._parts["cb"], self._parts["bp"], strict=True)
        )
        if not len(entity):
            return entity, field, value
        rank = self.codes.rank[field]
        order = np.lexsort((value, rank, entity))
        entity, rank, field, value = entity[order], rank[order], field[order], value[order]
        last = np.r_[(entity[1:] != entity[:-1]) | (rank[1:] != rank[:-1]), True]
        return entity[last], field[last], value[last]

    def family(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(entity, field, value)`` of the family's entries, in state order."""
        return self._parts[name]

    def scalar(self, name: str) -> np.ndarray:
        """The unkeyed field ``name`` per entity (NaN where absent)."""
        out = np.full(self.n, np.nan)
        entity, _, value = self.family(name)
        out[entity] = value
        return out

    def total(self, entity: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Per entity, ``weights`` added one after the other (as ``sum`` adds them)."""
        return np.bincount(entity, weights=weights, minlength=self.n)

    def recent(self, name: str, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(entity, text rank, time)`` of the family's entries with time in the last
        ``days`` days, latest first, then by key text (``finalise._recent``)."""
        entity, field, stamp = self.family(name)
        now = self.now[entity]
        keep = (now - days * SECONDS_PER_DAY <= stamp) & (stamp <= now)
        entity, rank, stamp = entity[keep], self.codes.rank[field[keep]], stamp[keep]
        order = np.lexsort((rank, -stamp, entity))
        return entity[order], rank[order], stamp[order]

    def texts(self, ranks: np.ndarray) -> list[str]:
        texts = self.codes.texts
        return [texts[r] for r in ranks.tolist()]

    def grouped(self, entity: np.ndarray, items: list[Any], limit: int | None = None) -> list[Any]:
        """Per entity, the tuple of its ``items`` (``entity`` sorted), the first ``limit``."""
        bounds = np.searchsorted(entity, np.arange(self.n + 1)).tolist()
        out: list[Any] = [_EMPTY] * self.n
        for i in _distinct(entity):
            lo, hi = bounds[i], bounds[i + 1]
            if limit is not None:
                hi = min(hi, lo + limit)
            out[i] = tuple(items[lo:hi])
        return out

    def pairs(self, entity: np.ndarray, rank: np.ndarray) -> np.ndarray:
        return entity.astype(np.int64) * (len(self.codes.texts) + 1) + rank

    def latest(self, name: str, entity: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """The value of family ``name``'s field with each text (``-inf`` where absent)."""
        e, f, v = self.family(name)
        table = self.pairs(e, self.codes.rank[f])
        order = np.argsort(table)
        table, v = table[order], v[order]
        wanted = self.pairs(entity, rank)
        at = np.minimum(np.searchsorted(table, wanted), max(len(table) - 1, 0))
        found = (table[at] == wanted) if len(table) else np.zeros(len(wanted), dtype=bool)
        return np.where(found, v[at] if len(v) else 0.0, -np.inf)

    # -- the features, as build_profile reads them ---------------------------------

    def profiles(self) -> list[CustomerProfile]:
        n, now = self.n, self.now
        get = self.scalar
        lt = get("lt")
        has_tier = ~np.isnan(lt)
        tier_at = np.floor(lt / 8)
        rank = np.where(has_tier, np.rint(lt - tier_at * 8), 0).astype(np.int64)
        # a tier below the highest held was lost, not reached (build_profile)
        reached = has_tier & ~(get("lm") > rank)
        tier_index = np.minimum(rank, len(TIERS) - 1)
        tiers = [TIERS[i] for i in tier_index.tolist()]
        purchases = np.nan_to_num(get("np"), nan=0.0)
        revenue = np.nan_to_num(get("rv"), nan=0.0)

        engagement = self.engagement(tier_index)
        activity, peak = self.activity()
        cart_items, cart_value, cart_age = self.cart()
        browsed, browsed_categories, n_viewed, last_browse = self.browse()
        vm_e, vm_f, vm_v = self.family("vm")
        hour = self.codes.per_field(_number, "vm")[vm_f]
        recent_browse = hour * SECONDS_PER_HOUR + SECONDS_PER_HOUR > now[vm_e] - SECONDS_PER_DAY
        browse_seconds = self.total(vm_e[recent_browse], vm_v[recent_browse])
        cb_e, cb_rank, _ = self.recent("cb", RECENT_PURCHASE_DAYS)
        last_bought = self.grouped(cb_e, self.texts(cb_rank), TOP_N)

        pd_e, pd_f, pd_v = self.family("pd")
        purchases_90d = self.bucket_sum(pd_e, pd_f, pd_v, 90)
        orders, orders_90d = self.orders(purchases, purchases_90d)
        first_seen, last_purchase, first_purchase = get("t0"), get("tp"), get("tf")
        days_known = (now - first_seen) / SECONDS_PER_DAY
        days_quiet = (now - last_purchase) / SECONDS_PER_DAY
        with np.errstate(divide="ignore", invalid="ignore"):
            usual = (last_purchase - first_purchase) / SECONDS_PER_DAY / (orders - 1)
        # bought at two moments or more (features.finalise: the lines of one order share
        # its second); NaN compares False
        repeat = (orders >= 2) & (last_purchase > first_purchase)
        gap = np.where(repeat, np.maximum(MIN_PURCHASE_GAP_DAYS, usual), DEFAULT_PURCHASE_GAP_DAYS)
        quiet_known = ~np.isnan(days_quiet)
        lifecycle = np.select(
            [
                ~np.isnan(days_known) & (days_known <= NEW_CUSTOMER_DAYS) & ~repeat,
                (purchases == 0) | ~quiet_known,
                days_quiet <= AT_RISK_GAPS * gap,
                days_quiet <= LAPSED_GAPS * gap,
            ],
            [0, 1, 2, 3],
            4,
        )
        states = (
            LifecycleState.NEW,
            LifecycleState.PROSPECT,
            LifecycleState.ACTIVE,
            LifecycleState.AT_RISK,
            LifecycleState.LAPSED,
        )
        phase = np.select(
            [
                np.array([bool(c) for c in cart_items], dtype=bool),
                quiet_known & (days_quiet <= RECOMMENDATION_DAYS),
                lifecycle == 4,
                repeat,
                n_viewed >= 2,
            ],
            [0, 1, 2, 3, 4],
            5,
        )
        phases = (
            JourneyPhase.DECISION,
            JourneyPhase.RECOMMENDATION,
            JourneyPhase.LAPSE,
            JourneyPhase.LOYALTY,
            JourneyPhase.CONSIDERATION,
            JourneyPhase.DISCOVERY,
        )
        seasonal = self.seasonal(first_seen)
        consents = self.consents()
        contacts = self.contacts()
        preferred = self.preferred_channel()
        ph = get("ph")
        preferred_hours: list[str | None] = [None] * n
        for i in np.flatnonzero(~np.isnan(ph)).tolist():
            preferred_hours[i] = decode_hours_register(float(ph[i]))[1]
        categories, top_category = self.shares("c")
        brands, top_brand = self.shares("b")
        rd_e, rd_f, rd_v = self.family("rd")
        purchases_30d = self.bucket_sum(pd_e, pd_f, pd_v, 30)
        revenue_90d = self.bucket_sum(rd_e, rd_f, rd_v, 90)
        browse_days_30d = self.bucket_sum(*self.family("wd"), 30)
        browse_left_days_30d, cart_left_days_30d = self.left_days(pd_e, pd_f, pd_v)
        pp, pn = np.nan_to_num(get("pp"), nan=0.0), np.nan_to_num(get("pn"), nan=0.0)
        promo = (pp + self.priors.promo_share * PRIOR_WEIGHT) / (purchases + PRIOR_WEIGHT)
        early = (pn + self.priors.new_product_share * PRIOR_WEIGHT) / (purchases + PRIOR_WEIGHT)
        collect_order, collect_pickup = get("co"), get("cl")
        pending = ~np.isnan(collect_order) & (
            np.isnan(collect_pickup) | (collect_pickup < collect_order)
        )
        dates = self.local_dates()
        birthdays = self.birthdays(dates)
        with np.errstate(invalid="ignore", divide="ignore"):
            basket = np.where(orders != 0, revenue / orders, 0.0)
        columns: dict[str, list[Any]] = {
            "customer_id": list(self.ids),
            "as_of": list(self.as_of),
            "timezone": [s.timezone for s in self.statics],
            "days_since_first_seen": _optional(days_known),
            "days_since_sign_up": _optional(
                np.where(np.isnan(get("su")), days_known, (now - get("su")) / SECONDS_PER_DAY)
            ),
            "sign_up_day": self.calendar_days(
                np.where(np.isnan(get("su")), first_seen, get("su")), dates
            ),
            "days_since_last_purchase": _optional(days_quiet),
            "days_since_last_visit": _optional((now - get("tv")) / SECONDS_PER_DAY),
            "purchases_30d": purchases_30d.astype(np.int64).tolist(),
            "purchases_90d": purchases_90d.astype(np.int64).tolist(),
            "purchases_total": purchases.astype(np.int64).tolist(),
            "orders_90d": orders_90d.astype(np.int64).tolist(),
            "orders_total": orders.astype(np.int64).tolist(),
            "revenue_90d": revenue_90d.tolist(),
            "revenue_total": revenue.tolist(),
            "average_basket": basket.tolist(),
            "category_affinity": categories,
            "brand_affinity": brands,
            "top_category": top_category,
            "top_brand": top_brand,
            "engagement": engagement,
            "activity_by_hour": activity,
            "peak_hour_of_week": peak,
            "lifecycle_state": [states[i] for i in lifecycle.tolist()],
            "journey_phase": [phases[i] for i in phase.tolist()],
            "cart_items": cart_items,
            "cart_value": cart_value.tolist(),
            "cart_age_hours": _optional(cart_age),
            "browsed_products": browsed,
            "browsed_categories": browsed_categories,
            "browse_minutes_24h": (browse_seconds / 60.0).tolist(),
            "hours_since_last_browse": _optional((now - last_browse) / SECONDS_PER_HOUR),
            "browse_days_30d": browse_days_30d.astype(np.int64).tolist(),
            "browse_left_days_30d": browse_left_days_30d.astype(np.int64).tolist(),
            "cart_left_days_30d": cart_left_days_30d.astype(np.int64).tolist(),
            "browse_left_rate": self.trigger_rate(browse_left_days_30d, "browse_left"),
            "cart_left_rate": self.trigger_rate(cart_left_days_30d, "cart_left"),
            "last_purchased_products": last_bought,
            # customers with a return or cancellation are read by the definition
            # (read_profiles): none of these has a product returned or a delivery sent back
            "returned_products": [()] * n,
            "hours_since_last_purchase": _optional((now - last_purchase) / SECONDS_PER_HOUR),
            "hours_since_last_delivery": _optional((now - get("td")) / SECONDS_PER_HOUR),
            "hours_since_last_return": _optional((now - get("tx")) / SECONDS_PER_HOUR),
            "last_delivery_returned": [False] * n,
            "promo_sensitivity": promo.tolist(),
            "early_adopter_score": early.tolist(),
            "seasonal_months": seasonal,
            "days_to_birthday": birthdays,
            "loyalty_tier": tiers,
            "days_since_loyalty_tier": _optional(
                np.where(reached, (now - tier_at) / SECONDS_PER_DAY, np.nan)
            ),
            "has_click_collect": (~np.isnan(get("cc"))).tolist(),
            "click_collect_pending": pending.tolist(),
            "hours_since_click_collect_order": _optional((now - collect_order) / SECONDS_PER_HOUR),
            "preferred_channel": preferred,
            "preferred_hours": preferred_hours,
            "consents": consents,
            "contacts": contacts,
            "events_seen": np.nan_to_num(get("n"), nan=0.0).astype(np.int64).tolist(),
        }
        if list(columns) != _PROFILE_FIELDS:
            raise AssertionError(f"profile fields {list(columns)} != {_PROFILE_FIELDS}")
        return [
            _profile(dict(zip(_PROFILE_FIELDS, cells, strict=True)))
            for cells in zip(*columns.values(), strict=True)
        ]

    def orders(self, lines: np.ndarray, lines_90d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Orders in all and in the last 90 days (``finalise.order_count`` of the lines and
        of those of the 90 days' day buckets): the lines less each order's lines beyond
        its first (``ol``) and those of the orders folded (``lx``)."""
        e, f, v = self.family("ol")
        extra = np.maximum(v - 1.0, 0.0)
        day_start = self.codes.per_field(_number, "ol")[f] // SECONDS_PER_DAY * SECONDS_PER_DAY
        now = self.now[e]
        inside = (day_start + SECONDS_PER_DAY > now - 90 * SECONDS_PER_DAY) & (day_start <= now)
        folded = np.nan_to_num(self.scalar("lx"), nan=0.0)
        total = lines - (self.total(e, extra) + folded)
        recent = lines_90d - self.total(e[inside], extra[inside])
        return (
            np.maximum(total, np.minimum(lines, 1.0)),
            np.maximum(recent, np.minimum(lines_90d, 1.0)),
        )

    def bucket_sum(
        self, entity: np.ndarray, field: np.ndarray, value: np.ndarray, days: int
    ) -> np.ndarray:
        """``finalise._bucket_sum``: the day buckets any of which lies in the window."""
        start = self.codes.per_field(_number, "pd", "rd", "wd", "wm", "wc")[field] * SECONDS_PER_DAY
        now = self.now[entity]
        inside = (start + SECONDS_PER_DAY > now - days * SECONDS_PER_DAY) & (start <= now)
        return self.total(entity[inside], value[inside])

    def trigger_rate(self, days: np.ndarray, kind: str) -> list[float]:
        """:func:`features.finalise.trigger_rate` of each entity's ``days`` toward the
        priors' ``<kind>_rate`` by ``<kind>_weight``."""
        rate = getattr(self.priors, f"{kind}_rate")
        weight = getattr(self.priors, f"{kind}_weight")
        out: list[float] = ((days + weight * rate) / (LEFT_DAYS_WINDOW + weight)).tolist()
        return out

    def left_days(
        self, pd_e: np.ndarray, pd_f: np.ndarray, pd_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``browse_left_days_30d`` and ``cart_left_days_30d``: days in the last 30 with
        ``BROWSE_LEFT_SECONDS`` of product views and neither an add-to-cart nor a
        purchase, and days with an add-to-cart and no purchase."""
        span = np.int64(1 << 24)
        days = _number_of_day_key(self)

        def keys(family: str, entity: np.ndarray, field: np.ndarray) -> np.ndarray:
            return entity.astype(np.int64) * span + days(family, field)

        bought = keys("pd", pd_e[pd_v > 0], pd_f[pd_v > 0])
        wc_e, wc_f, _ = self.family("wc")
        carted = keys("wc", wc_e, wc_f)
        cart_left = self.bucket_sum(wc_e, wc_f, (~np.isin(carted, bought)).astype(float), 30)
        wm_e, wm_f, wm_v = self.family("wm")
        viewed = keys("wm", wm_e, wm_f)
        left = (wm_v >= BROWSE_LEFT_SECONDS) & ~np.isin(viewed, np.concatenate([bought, carted]))
        return self.bucket_sum(wm_e, wm_f, left.astype(float), 30), cart_left

    def engagement(self, tier_index: np.ndarray) -> list[dict[Channel, ChannelEngagement]]:
        """Messages per consent channel and their rates, smoothed toward the tier's prior;
        a clicked day converts when a purchase day follows within ``CONVERSION_DAYS``."""
        n, channels = self.n, len(CONSENT_CHANNELS)
        consent = self.codes.per_field(_consent, "es", "ed", "eo", "ek")
        counts = {}
        for name in ("es", "ed", "eo", "ek"):
            e, f, v = self.family(name)
            ch = consent[f].astype(np.int64)
            mine = ch >= 0
            table = np.zeros((n, channels))
            table[e[mine], ch[mine]] = v[mine]
            counts[name] = table
        # clicks converted: a purchase day within CONVERSION_DAYS of a clicked day
        e, f, _ = self.family("kd")
        day = self.codes.per_field(_tail_number, "kd")[f]
        ch = self.codes.per_field(_tail_consent, "kd")[f].astype(np.int64)
        start = day * SECONDS_PER_DAY
        now = self.now[e]
        inside = (start + SECONDS_PER_DAY > now - 90 * SECONDS_PER_DAY) & (start <= now)
        inside &= ch >= 0
        e, day, ch = e[inside], day[inside].astype(np.int64), ch[inside]
        pe, pf, pv = self.family("pd")
        bought = pv > 0
        purchase_days = _day_pairs(
            pe[bought], self.codes.per_field(_number, "pd", "rd")[pf[bought]]
        )
        converted = np.zeros(len(e), dtype=bool)
        for i in range(CONVERSION_DAYS + 1):
            converted |= np.isin(_day_pairs(e, day + i), purchase_days)
        cell = e * channels + ch
        clicked_days = np.bincount(cell, minlength=n * channels).reshape(n, channels)
        conversions = np.bincount(cell, weights=converted, minlength=n * channels).reshape(
            n, channels
        )
        cache: dict[tuple[Any, ...], ChannelEngagement] = {}
        made = []
        for c, channel in enumerate(CONSENT_CHANNELS):
            prior = [self.priors.channel(t, channel.value) for t in TIERS]
            open_prior = np.array([p.open_rate for p in prior])[tier_index]
            click_prior = np.array([p.click_rate for p in prior])[tier_index]
            conversion_prior = np.array([p.conversion_rate for p in prior])[tier_index]
            sent, delivered = counts["es"][:, c], counts["ed"][:, c]
            opened, clicked = counts["eo"][:, c], counts["ek"][:, c]
            base = np.maximum(delivered, sent)
            cells = zip(
                sent.astype(np.int64).tolist(),
                delivered.astype(np.int64).tolist(),
                opened.astype(np.int64).tolist(),
                clicked.astype(np.int64).tolist(),
                conversions[:, c].astype(np.int64).tolist(),
                ((opened + open_prior * PRIOR_WEIGHT) / (base + PRIOR_WEIGHT)).tolist(),
                ((clicked + click_prior * PRIOR_WEIGHT) / (base + PRIOR_WEIGHT)).tolist(),
                (
                    (conversions[:, c] + conversion_prior * PRIOR_WEIGHT)
                    / (clicked_days[:, c] + PRIOR_WEIGHT)
                ).tolist(),
                strict=True,
            )
            column = []
            for cell in cells:
                one = cache.get(cell)
                if one is None:
                    one = cache[cell] = ChannelEngagement(*cell)
                column.append(one)
            made.append(column)
        by_customer = zip(*made, strict=True)
        return [dict(zip(CONSENT_CHANNELS, parts, strict=True)) for parts in by_customer]

    def activity(self) -> tuple[list[tuple[float, ...]], list[int | None]]:
        """Shares of activity per local hour of week, and the smoothed peak
        (``finalise._peak_hour``: the earliest best of the hours next to an active one)."""
        n = self.n
        e, f, v = self.family("h")
        hour = self.codes.per_field(_number, "h")[f].astype(np.int64) % HOURS_PER_WEEK
        total = self.total(e, v)
        cell = e * HOURS_PER_WEEK + hour
        week = np.bincount(cell, weights=v, minlength=n * HOURS_PER_WEEK).reshape(n, HOURS_PER_WEEK)
        present = np.bincount(cell, minlength=n * HOURS_PER_WEEK).reshape(n, HOURS_PER_WEEK) > 0
        active = np.flatnonzero(total > 0)
        activity: list[tuple[float, ...]] = [_EMPTY] * n
        peak: list[int | None] = [None] * n
        if not len(active):
            return activity, peak
        week, present = week[active], present[active]
        smoothed = np.roll(week, 1, axis=1) + 2 * week + np.roll(week, -1, axis=1)
        candidate = present | np.roll(present, 1, axis=1) | np.roll(present, -1, axis=1)
        smoothed[~candidate] = -np.inf
        best = np.argmax(smoothed, axis=1).tolist()
        # most hours are empty: set the counted ones on a shared row of zeros
        row, hour_of = np.nonzero(present)
        share = (week[row, hour_of] / total[active][row]).tolist()
        bounds = np.searchsorted(row, np.arange(len(active) + 1)).tolist()
        hours = hour_of.tolist()
        zeros = [0.0] * HOURS_PER_WEEK
        for j, i in enumerate(active.tolist()):
            shares = zeros.copy()
            for k in range(bounds[j], bounds[j + 1]):
                shares[hours[k]] = share[k]
            activity[i] = tuple(shares)
            peak[i] = best[j]
        return activity, peak

    def cart(self) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
        """Products in the cart (added in the last 30 days, not removed or bought since),
        in text order, their value at the prices when added, and the age of the latest
        addition (the cart's age runs from when it was last added to)."""
        e, rank, stamp = self.recent("ca", CART_DAYS)
        since = np.maximum(self.latest("cr", e, rank), self.latest("cb", e, rank))
        keep = stamp > since
        e, rank, stamp = e[keep], rank[keep], stamp[keep]
        order = np.lexsort((rank, e))
        e, rank, stamp = e[order], rank[order], stamp[order]
        price = self.latest("cv", e, rank)
        price[np.isneginf(price)] = 0.0
        value = self.total(e, price)
        latest = np.full(self.n, -np.inf)
        np.maximum.at(latest, e, stamp)
        age = np.where(np.isfinite(latest), (self.now - latest) / SECONDS_PER_HOUR, np.nan)
        return self.grouped(e, self.texts(rank)), value, age

    def browse(self) -> tuple[list[Any], list[Any], np.ndarray, np.ndarray]:
        """Products viewed in the last 7 days and not bought since (ten: the longest looked
        at on the latest day first, then the latest),
        categories viewed (ten), how many products were viewed, and the last view."""
        e, rank, stamp = self.recent("v", BROWSE_DAYS)
        viewed = np.bincount(e, minlength=self.n)
        last = np.full(self.n, np.nan)
        first = np.r_[True, e[1:] != e[:-1]] if len(e) else np.zeros(0, dtype=bool)
        last[e[first]] = stamp[first]
        keep = stamp > self.latest("cb", e, rank)
        e, rank, stamp = e[keep], rank[keep], stamp[keep]
        dwell = self.latest("vs", e, rank)
        timed = np.isfinite(dwell)
        if timed.any():  # what they lingered on first (finalise.lingered)
            has = np.zeros(self.n, dtype=bool)
            has[e[timed]] = True
            ranked = has[e]
            zones = np.array([self.statics[i].timezone for i in e[ranked].tolist()], dtype=object)
            start = local_days(stamp[ranked].astype(np.int64), zones) * VIEW_DAY_SCALE
            own = dwell[ranked]
            dwell[ranked] = np.where(own >= start, own, start + DEFAULT_VIEW_SECONDS)
            order = np.lexsort((rank, -stamp, -dwell, e))
            e, rank = e[order], rank[order]
        browsed = self.grouped(e, self.texts(rank), TOP_N)
        ce, crank, _ = self.recent("vc", BROWSE_DAYS)
        categories = self.grouped(ce, self.texts(crank), TOP_N)
        return browsed, categories, viewed, last

    def seasonal(self, first_seen: np.ndarray) -> list[tuple[int, ...]]:
        """``seasonal_months`` of the customers with any shopping day (kept or folded)."""
        out: list[tuple[int, ...]] = [_EMPTY] * self.n
        e, f, v = self.family("ad")
        me, mf, mv = self.family("am")  # months the online store folded older days into
        counts = np.bincount(e, minlength=self.n) + np.bincount(
            me, weights=mv, minlength=self.n
        ).astype(np.int64)
        bounds = np.searchsorted(e, np.arange(self.n + 1)).tolist()
        mbounds = np.searchsorted(me, np.arange(self.n + 1)).tolist()
        keys, fields, values = self.codes.keys, f.tolist(), v.tolist()
        mfields, mvalues = mf.tolist(), mv.tolist()
        month_activity, prior = self.priors.month_activity, self.priors.season_prior
        for i in np.flatnonzero(counts > 0).tolist():
            lo, hi = bounds[i], bounds[i + 1]
            days = {keys[k]: x for k, x in zip(fields[lo:hi], values[lo:hi], strict=True)}
            mlo, mhi = mbounds[i], mbounds[i + 1]
            folded = {keys[k]: x for k, x in zip(mfields[mlo:mhi], mvalues[mlo:mhi], strict=True)}
            seen = float(first_seen[i])
            out[i] = seasonal_months(
                days,
                None if seen != seen else seen,
                float(self.now[i]),
                month_activity,
                prior,
                folded,
            )
        return out

    def consents(self) -> list[dict[Channel, bool]]:
        """Consent per consent channel (and a wallet pass): the register's last value is
        a grant."""
        e, f, v = self.family("g")
        ch = self.codes.per_field(_registered, "g")[f].astype(np.int64)
        mine = ch >= 0
        seconds = np.floor(v / 8)
        granted = np.zeros((self.n, len(_REGISTERED)), dtype=bool)
        granted[e[mine], ch[mine]] = np.rint(v - seconds * 8)[mine] == 0
        shared: dict[tuple[bool, ...], dict[Channel, bool]] = {}
        out = []
        for row in map(tuple, granted.tolist()):
            made = shared.get(row)
            if made is None:
                made = shared[row] = dict(zip(_REGISTERED, row, strict=True))
            out.append(made)
        return out

    def contacts(self) -> list[ContactHistory]:
        """Contacts per channel over the rolling day, week and month, the last contact
        and the last refusal per channel."""
        n, channels = self.n, len(_CHANNEL_LIST)
        windows = (SECONDS_PER_DAY, 7 * SECONDS_PER_DAY, 30 * SECONDS_PER_DAY)
        counts = [np.zeros(n * channels) for _ in windows]
        present = [np.zeros(n * channels, dtype=bool) for _ in windows]
        timed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # cell, second, count
        names = (*(family for family, _ in CONTACT_BUCKETS), "xm")
        last_second = self._last_contact_seconds(names)
        for family, span in CONTACT_BUCKETS:
            e, f, v = self.family(family)
            if not len(e):
                continue
            ch = self.codes.per_field(_tail_channel, *names)[f].astype(np.int64)
            if (ch < 0).any():
                bad = self.codes.keys[int(f[np.argmax(ch < 0)])]
                raise KeyError(bad.rpartition("|")[0])
            number = self.codes.per_field(_tail_number, *names)[f]
            start = number * span
            now = self.now[e]
            cell = e * channels + ch
            for w, window in enumerate(windows):
                inside = (start <= now) & (start + span > now - window)
                counts[w] += np.bincount(
                    cell[inside], weights=np.trunc(v[inside]), minlength=n * channels
                )
                present[w][cell[inside]] = True
            # each contact's time: its hour's last contact's second (xm), else the bucket's
            # last second (an older version's), for the caps (finalise.build_profile alike)
            inside = (start <= now) & (start + span > now - windows[-1])
            offset = np.full(int(inside.sum()), float(span - 1))
            if family == "xh":
                offset = last_second(cell[inside], number[inside], offset)
            timed.append(
                (
                    cell[inside],
                    (start[inside] + offset).astype(np.int64),
                    np.trunc(v[inside]).astype(np.int64),
                )
            )
        times = self._contact_times(timed)
        per_window: list[list[dict[Channel, int]]] = []
        for w in range(len(windows)):
            dicts: list[dict[Channel, int]] = [{} for _ in range(n)]
            cells = np.flatnonzero(present[w])
            for cell, count in zip(cells.tolist(), counts[w][cells].tolist(), strict=True):
                dicts[cell // channels][_CHANNEL_LIST[cell % channels]] = int(count)
            per_window.append(dicts)
        last_contact = self.stamps("xl")
        last_refusal = self.stamps("xr")
        empty = ContactHistory()
        out = []
        for i in range(n):
            c1, c7, c30 = per_window[0][i], per_window[1][i], per_window[2][i]
            contact, refusal = last_contact[i], last_refusal[i]
            if not (c1 or c7 or c30 or contact or refusal):
                out.append(empty)
                continue
            out.append(
                ContactHistory(
                    last_contact_at=contact or {},
                    contacts_1d=c1,
                    contacts_7d=c7,
                    contacts_30d=c30,
                    last_refusal_at=refusal or {},
                    contact_times=times.get(i, {}),
                )
            )
        return out

    def _last_contact_seconds(
        self, names: tuple[str, ...]
    ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """A look-up of the second of the hour of each (cell, hour)'s last contact
        (``xm``): given cells, hours and defaults, the seconds, the default where none
        is known (or the stored one is not a second of an hour)."""
        channels = len(_CHANNEL_LIST)
        e, f, v = self.family("xm")
        ch = self.codes.per_field(_tail_channel, *names)[f]
        hour = self.codes.per_field(_tail_number, *names)[f]
        valid = (ch >= 0) & (hour >= 0) & (v >= 0) & (v < SECONDS_PER_HOUR)
        keys = (e[valid] * channels + ch[valid].astype(np.int64)) * (1 << 32) + hour[valid].astype(
            np.int64
        )
        order = np.argsort(keys, kind="stable")
        keys, seconds = keys[order], np.trunc(v[valid][order])

        def look_up(cell: np.ndarray, hours: np.ndarray, default: np.ndarray) -> np.ndarray:
            if not len(keys):
                return default
            wanted = cell * (1 << 32) + hours.astype(np.int64)
            at = np.searchsorted(keys, wanted).clip(max=len(keys) - 1)
            return np.where(keys[at] == wanted, seconds[at], default)

        return look_up

    def _contact_times(
        self, timed: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> dict[int, dict[Channel, tuple[dt.datetime, ...]]]:
        """Per entity with contacts in the last 30 days, their times per channel."""
        out: dict[int, dict[Channel, tuple[dt.datetime, ...]]] = {}
        if not timed:
            return out
        channels = len(_CHANNEL_LIST)
        cell = np.concatenate([c for c, _, _ in timed])
        second = np.concatenate([t for _, t, _ in timed])
        repeat = np.concatenate([r for _, _, r in timed]).clip(min=0)
        cell, second = np.repeat(cell, repeat), np.repeat(second, repeat)
        order = np.lexsort((second, cell))
        cell, second = cell[order], second[order]
        bounds = np.flatnonzero(cell[1:] != cell[:-1]) + 1
        for part_cell, part in zip(
            cell[np.concatenate([[0], bounds])].tolist() if len(cell) else [],
            np.split(second, bounds) if len(cell) else [],
            strict=True,
        ):
            entity, ch = divmod(int(part_cell), channels)
            out.setdefault(entity, {})[_CHANNEL_LIST[ch]] = contact_moments(part.tolist())
        return out

    def stamps(self, name: str) -> list[dict[Channel, dt.datetime] | None]:
        """Per entity, the moment of the family's field per channel."""
        out: list[dict[Channel, dt.datetime] | None] = [None] * self.n
        e, f, v = self.family(name)
        keys = self.codes.keys
        channels = {c.value: c for c in _CHANNEL_LIST}
        for i, k, x in zip(e.tolist(), f.tolist(), v.tolist(), strict=True):
            got = out[i]
            if got is None:
                got = out[i] = {}
            got[channels[keys[k]]] = dt.datetime.fromtimestamp(x, dt.UTC)
        return out

    def preferred_channel(self) -> list[str | None]:
        """The declared channel with the latest declaration (by name on a tie)."""
        out: list[str | None] = [None] * self.n
        best: dict[int, tuple[float, str]] = {}
        e, f, v = self.family("pc")
        keys = self.codes.keys
        for i, k, x in zip(e.tolist(), f.tolist(), v.tolist(), strict=True):
            candidate = (x, keys[k])
            if i not in best or candidate > best[i]:
                best[i] = candidate
        for i, (_, name) in best.items():
            out[i] = name
        return out

    def shares(self, name: str) -> tuple[list[dict[str, float]], list[str | None]]:
        """``finalise._shares`` and ``_top`` of a decayed affinity family."""
        e, f, v = self.family(name)
        total = self.total(e, v)
        rank = self.codes.rank[f]
        order = np.lexsort((rank, e))
        e, rank, v = e[order], rank[order], v[order]
        keep = total[e] > 0
        e, rank, v = e[keep], rank[keep], v[keep]
        share = v / total[e]
        out: list[dict[str, float]] = [{} for _ in range(self.n)]
        top: list[str | None] = [None] * self.n
        if not len(e):
            return out, top
        texts = self.texts(rank)
        starts = np.flatnonzero(np.r_[True, e[1:] != e[:-1]])
        # the top: the largest share, the first key in text order on a tie
        largest = np.maximum.reduceat(share, starts)
        at_top = np.flatnonzero(share == np.repeat(largest, np.diff(np.r_[starts, len(e)])))
        first = at_top[np.r_[True, e[at_top][1:] != e[at_top][:-1]]]
        for i, j in zip(e[first].tolist(), first.tolist(), strict=True):
            top[i] = texts[j]
        ends = [*starts[1:].tolist(), len(e)]
        shares = share.tolist()
        for i, lo, hi in zip(e[starts].tolist(), starts.tolist(), ends, strict=True):
            out[i] = dict(zip(texts[lo:hi], shares[lo:hi], strict=True))
        return out, top

    def local_dates(self) -> list[dt.date]:
        """Each customer's date at their ``as_of``, in their own time zone (computed once
        per zone and moment)."""
        today: dict[tuple[str, dt.datetime], dt.date] = {}
        out: list[dt.date] = []
        for static, at in zip(self.statics, self.as_of, strict=True):
            key = (static.timezone, at)
            local = today.get(key)
            if local is None:
                local = today[key] = at.astimezone(time_zone(static.timezone)).date()
            out.append(local)
        return out

    def calendar_days(self, then: np.ndarray, dates: Sequence[dt.date]) -> list[int | None]:
        """Each customer's local calendar days since ``then`` (epoch seconds, NaN for
        none) to their local date (:meth:`local_dates`), in their own time zone
        (:func:`features.finalise.calendar_days_since`)."""
        return [
            None if math.isnan(t) else calendar_days_since(t, local, time_zone(static.timezone))
            for static, t, local in zip(self.statics, then.tolist(), dates, strict=True)
        ]

    def birthdays(self, dates: Sequence[dt.date]) -> list[int | None]:
        """Days to each customer's next birthday from their local date (:meth:`local_dates`)."""
        return [
            days_to_birthday(static.birth_date, local)
            for static, local in zip(self.statics, dates, strict=True)
        ]


_PROFILE_FIELDS = [f.name for f in dataclasses.fields(CustomerProfile)]


def _profile(values: dict[str, Any]) -> CustomerProfile:
    """A profile of all its field values, without the frozen dataclass's ``__init__``
    (one ``object.__setattr__`` per field: ten times what building the instance's
    dictionary costs); callers give every field, checked once per chunk."""
    profile: CustomerProfile = object.__new__(CustomerProfile)
    profile.__dict__.update(values)
    return profile


def _optional(values: np.ndarray) -> list[float | None]:
    """Cells as floats, NaN as None ("never")."""
    cells = values.tolist()
    for i in np.flatnonzero(np.isnan(values)).tolist():
        cells[i] = None
    return cells


def _distinct(entity: np.ndarray) -> list[int]:
    """The distinct values of a sorted array."""
    return entity[np.r_[True, entity[1:] != entity[:-1]]].tolist() if len(entity) else []


def _day_pairs(entity: np.ndarray, day: np.ndarray) -> np.ndarray:
    """One integer per (entity, day number)."""
    return entity.astype(np.int64) * (1 << 33) + (np.asarray(day, dtype=np.int64) + (1 << 32))
