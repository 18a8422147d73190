"""Feature definitions: how each event changes a customer's profile state.

One definition serves batch, point-in-time, Spark and online computation. An
event becomes a few *ops* on named fields of the customer's state; every op is
a sum, a maximum or a minimum, so applying a set of ops gives the same state in
any order (out-of-order events are harmless), and de-duplicating by event id
makes replays harmless too. The profile is then a pure function of the state
and the moment it is read (:mod:`features.finalise`).

State fields are ``family`` or ``family:key`` (``pd:20512`` is the number of
purchases on UTC day 20512). Families and their ops are listed in
:data:`FAMILIES`. Last-writer-wins registers (consent, loyalty tier) are
encoded as ``timestamp * 8 + value`` and merged with a maximum.

:func:`event_ops` is vectorised: it turns a whole frame of events into ops with
a handful of pandas operations, for ten million events as for ten.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import pandas as pd

from features.contract import LoyaltyTier
from nba.channels import CONSENT_CHANNELS, Channel
from nba.events import REFUSAL_EVENTS, EventType

SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600

#: Reference time and time constant of decayed affinities: a purchase 30 days
#: ago weighs 1/e of one today. Sums are kept as ``w * exp((t - T0) / TAU)``.
DECAY_T0 = int(pd.Timestamp("2024-01-01", tz="UTC").timestamp())
DECAY_TAU_SECONDS = 30 * SECONDS_PER_DAY

#: How much each kind of event says about taste.
AFFINITY_WEIGHTS: dict[EventType, float] = {
    EventType.PRODUCT_VIEW: 1.0,
    EventType.ADD_TO_CART: 3.0,
    EventType.PURCHASE: 5.0,
    EventType.REVIEW: 2.0,
}

#: Events that show the customer is active (for recency and activity by hour).
ACTIVITY_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.PRODUCT_VIEW,
        EventType.SEARCH,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.CHECKOUT_STARTED,
        EventType.PURCHASE,
        EventType.STORE_VISIT,
        EventType.CLICK_COLLECT_PICKUP,
        EventType.REVIEW,
        EventType.MESSAGE_OPENED,
        EventType.MESSAGE_CLICKED,
        EventType.COUPON_REDEEMED,
        EventType.WALLET_PASS_ADDED,
    }
)

#: Events that show a customer shopping (seasonality): not the answers to messages.
SHOPPING_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.PRODUCT_VIEW,
        EventType.SEARCH,
        EventType.ADD_TO_CART,
        EventType.CHECKOUT_STARTED,
        EventType.PURCHASE,
        EventType.STORE_VISIT,
        EventType.CLICK_COLLECT_PICKUP,
    }
)

#: A product counts as new for this many days after its launch (early adopters).
NEW_PRODUCT_DAYS = 30
#: Default time spent on one product view, when the event does not say.
DEFAULT_VIEW_SECONDS = 60.0
#: ``vs`` values are ``local day * VIEW_DAY_SCALE + seconds`` (a view's dwell is at most an
#: hour): a day's start in seconds, so that they expire as times do.
VIEW_DAY_SCALE = 86_400.0
#: A click on a channel converts when a purchase follows within this many days.
CONVERSION_DAYS = 3
#: A purchase is a click-and-collect order when its properties say
#: ``{"fulfilment": "click_collect"}`` (also ``click_and_collect``, ``pickup``).
FULFILMENT_PROPERTY = "fulfilment"
CLICK_COLLECT_FULFILMENTS = frozenset({"click_collect", "click_and_collect", "pickup"})

#: A bounce withdraws its channel when its properties call it permanent (the address does
#: not exist: mailing it again harms the sender's reputation): ``{"bounce_type":
#: "hard"}`` (also ``permanent``), or ``{"permanent": true}``. A soft bounce (a full
#: mailbox) or a bounce that does not say changes nothing; a new opt-in reopens the channel.
BOUNCE_TYPE_PROPERTY = "bounce_type"
HARD_BOUNCE_TYPES = frozenset({"hard", "permanent"})

#: The key of a return or cancellation that names no product: it undoes the customer's
#: latest order before it (every purchase line of that moment).
RETURN_ORDER_KEY = "*"
#: Returns and cancellations: they take the purchase they undo out of the profile's
#: purchases and revenue (features.finalise.settle_returns).
RETURN_EVENTS: frozenset[EventType] = frozenset(
    {EventType.ORDER_RETURNED, EventType.ORDER_CANCELLED}
)

#: Returns and cancellations undo purchases of the last this many days: the window in
#: which the state keeps each purchase's day and product (``pd``, ``rd``, ``bp``), longer
#: than retail return periods (14 to 60 days).
RETURN_DAYS = 90
#: A purchase marks its local day in ``ad`` with its second less this (a negative number:
#: a day shopped by purchases alone says which order was its latest, and any other
#: shopping event's 1 wins the max). ``2**32`` seconds reach past the year 2100.
PURCHASE_DAY_OFFSET = 2**32

TIER_RANK: dict[str, int] = {t.value: i for i, t in enumerate(LoyaltyTier)}
TIERS: tuple[str, ...] = tuple(t.value for t in LoyaltyTier)


class Op(IntEnum):
    """How ops on one field combine."""

    SUM = 0
    MAX = 1
    MIN = 2


class KeyKind(IntEnum):
    NONE = 0
    DAY = 1  # UTC day number
    HOUR = 2  # UTC hour number (hours since the epoch)
    HOUR_OF_WEEK = 3  # local hour of week, Monday 00:00 = 0
    MONTH = 4  # local month 1..12
    CHANNEL = 5
    CHANNEL_DAY = 6  # "channel|day"
    PRODUCT = 7
    CATEGORY = 8
    BRAND = 9
    CHANNEL_HOUR = 10  # "channel|hour" (UTC hours since the epoch)
    SECOND = 11  # epoch second (an order's moment)


@dataclass(frozen=True)
class Family:
    """A family of state fields, combined with one op; ``retention_days`` bounds keyed
    fields by their time (older keys are dropped: the profile never reads them)."""

    name: str
    op: Op
    key: KeyKind
    meaning: str
    retention_days: int | None = None


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("n", Op.SUM, KeyKind.NONE, "events seen"),
        Family("t0", Op.MIN, KeyKind.NONE, "first seen (epoch seconds)"),
        Family("su", Op.MAX, KeyKind.NONE, "signed up (the customer record's created_at)"),
        Family("tv", Op.MAX, KeyKind.NONE, "last activity"),
        Family("tp", Op.MAX, KeyKind.NONE, "last purchase"),
        Family("tf", Op.MIN, KeyKind.NONE, "first purchase"),
        Family("tc", Op.MAX, KeyKind.NONE, "last checkout started"),
        Family("td", Op.MAX, KeyKind.NONE, "last order delivered or collected"),
        Family("cc", Op.MIN, KeyKind.NONE, "first click-and-collect pick-up"),
        Family("cl", Op.MAX, KeyKind.NONE, "last click-and-collect pick-up"),
        Family("co", Op.MAX, KeyKind.NONE, "last click-and-collect order"),
        Family("tx", Op.MAX, KeyKind.NONE, "last order returned or cancelled"),
        # returns and cancellations by what they undo: a product (its latest purchase
        # before them), or RETURN_ORDER_KEY (the customer's latest order before them);
        # features.finalise.settle_returns takes the undone purchases out of the counts
        Family("rt", Op.MAX, KeyKind.PRODUCT, "last returned or cancelled", retention_days=90),
        Family("rw", Op.MAX, KeyKind.PRODUCT, "last returned whole", retention_days=90),
        Family("ra", Op.SUM, KeyKind.PRODUCT, "amount refunded"),
        Family("np", Op.SUM, KeyKind.NONE, "purchases"),
        # the contract has one purchase event per order line, every line at its order's
        # second: the lines of each order by its second, so that an order of three lines is
        # one order (features.finalise.order_count), and a return of one of its lines
        # leaves it (features.finalise.settle_returns). The online store folds the orders
        # past the return window into ``lx`` (features.state.fold_orders)
        Family("ol", Op.SUM, KeyKind.SECOND, "purchase lines of the order at this second"),
        # the lines beyond each order's first, of the orders folded out of ``ol``: the
        # orders are ``np`` less these and less those of ``ol``; no event writes them
        Family("lx", Op.SUM, KeyKind.NONE, "lines beyond the first of the orders folded"),
        Family("rv", Op.SUM, KeyKind.NONE, "revenue"),
        Family("pp", Op.SUM, KeyKind.NONE, "purchases with an offer or coupon"),
        Family("pn", Op.SUM, KeyKind.NONE, "purchases of new products"),
        Family("pd", Op.SUM, KeyKind.DAY, "purchases per day", retention_days=90),
        Family("rd", Op.SUM, KeyKind.DAY, "revenue per day", retention_days=90),
        # the last purchase of each UTC month (keyed by the month's first day): the latest
        # purchase kept when a return undoes a later one and ``pd`` no longer holds it
        Family("pq", Op.MAX, KeyKind.DAY, "last purchase in the month", retention_days=400),
        Family("pm", Op.SUM, KeyKind.MONTH, "purchases per local month of year"),
        # days with shopping, by local day number, for two years and the month before them:
        # the evidence of seasonal buyers (features.seasonality, which reads the last
        # 24 months and the current one); purchases alone are too few, events come in bursts.
        # 1 where anything but a purchase was shopped; a day shopped by purchases alone holds
        # its latest purchase's second less PURCHASE_DAY_OFFSET (below 1: any other shopping
        # wins the max), so that a day whose orders were all cancelled or returned whole is
        # no shopping day while the return window can undo them
        # (features.finalise.withdrawn_days)
        Family("ad", Op.MAX, KeyKind.DAY, "shopped on this local day", retention_days=800),
        # the same days counted per local month (keyed by the month's first day), once no
        # event can reach them any more: the online store folds ``ad`` days older than its
        # replay window into these (a day shopped by purchases alone once no return can undo
        # them: RETURN_DAYS; features.state.fold_shopping_days); no event writes them
        Family("am", Op.SUM, KeyKind.DAY, "shopping days in its month", retention_days=800),
        Family("c", Op.SUM, KeyKind.CATEGORY, "decayed category interest"),
        Family("b", Op.SUM, KeyKind.BRAND, "decayed brand interest"),
        Family("h", Op.SUM, KeyKind.HOUR_OF_WEEK, "activity per local hour of week"),
        Family("es", Op.SUM, KeyKind.CHANNEL, "messages sent"),
        Family("ed", Op.SUM, KeyKind.CHANNEL, "messages delivered"),
        Family("eo", Op.SUM, KeyKind.CHANNEL, "messages opened"),
        Family("ek", Op.SUM, KeyKind.CHANNEL, "messages clicked"),
        Family("kd", Op.MAX, KeyKind.CHANNEL_DAY, "clicked on this day", retention_days=90),
        # days with product views (UTC day numbers): how often a customer browses, so how
        # likely a same-day browse or cart reminder is (nba.reserve)
        Family("wd", Op.MAX, KeyKind.DAY, "viewed products on this day", retention_days=31),
        # seconds of product views per UTC day, and days with an add-to-cart: how often a
        # customer's own sessions left products or a cart behind (browse_left_days_30d,
        # cart_left_days_30d: nba.reserve)
        Family("wm", Op.SUM, KeyKind.DAY, "seconds of views on this day", retention_days=31),
        Family("wc", Op.MAX, KeyKind.DAY, "added to cart on this day", retention_days=31),
        # contacts per UTC hour, and the second of the hour of the last of them: caps count
        # each contact over rolling windows (the last 24 h, 7 days) to the second, not
        # calendar days (so "one e-mail a day" never blocks for 48 h), and a reached cap
        # of several contacts frees when its oldest contact leaves the window; contacts
        # sharing a channel and an hour are taken at the last one's second (a cap holds a
        # little longer, never less). The hour's key is shared by the customers contacted
        # in it: a key per contact's second cost the batch build a third of its speed
        Family("xh", Op.SUM, KeyKind.CHANNEL_HOUR, "contacts per hour", retention_days=30),
        Family("xm", Op.MAX, KeyKind.CHANNEL_HOUR, "last contact's second", retention_days=30),
        # contacts per UTC day: written by earlier versions, still read, no longer produced
        Family("xd", Op.SUM, KeyKind.CHANNEL_DAY, "contacts per day (legacy)", retention_days=30),
        Family("xl", Op.MAX, KeyKind.CHANNEL, "last contact"),
        Family("xr", Op.MAX, KeyKind.CHANNEL, "last refusal or complaint"),
        Family("g", Op.MAX, KeyKind.CHANNEL, "consent register (ts*8 + withdrawn)"),
        Family("lt", Op.MAX, KeyKind.NONE, "loyalty tier register (ts*8 + rank)"),
        # the highest tier a change of tier reached (tier events, identify traits; not the
        # customers table, which may be a snapshot taken after them): a tier below it is
        # a tier lost, not one reached
        Family("lm", Op.MAX, KeyKind.NONE, "highest loyalty tier rank reached"),
        Family("pc", Op.MAX, KeyKind.CHANNEL, "declared preferred channel (when declared)"),
        Family("ph", Op.MAX, KeyKind.NONE, "declared preferred hours register (ts*1024 + hours)"),
        Family("ca", Op.MAX, KeyKind.PRODUCT, "last added to cart", retention_days=30),
        Family("cr", Op.MAX, KeyKind.PRODUCT, "last removed from cart", retention_days=30),
        # each product's latest purchase: written by earlier versions, still read (with
        # ``bp``, features.finalise.latest_purchases), no longer produced
        Family("cb", Op.MAX, KeyKind.PRODUCT, "last purchased (legacy)", retention_days=90),
        # every purchase of the return window by product and UTC day (``P1|20512``: the
        # day's last purchase of it): a product's latest purchase is its latest day's, and a
        # return or cancellation of an earlier order of a product bought again since finds
        # its purchase. Only a ``purchase`` writes it: a click-and-collect pick-up is the
        # order's fulfilment (``td``, ``dv``), not a purchase
        Family("bp", Op.MAX, KeyKind.PRODUCT, "purchased on this day", retention_days=90),
        Family("cv", Op.MAX, KeyKind.PRODUCT, "unit price when added", retention_days=30),
        Family("v", Op.MAX, KeyKind.PRODUCT, "last viewed", retention_days=7),
        Family("vc", Op.MAX, KeyKind.CATEGORY, "category last viewed", retention_days=7),
        Family("vm", Op.SUM, KeyKind.HOUR, "browse seconds per hour", retention_days=2),
        # how long a product was looked at, for views that give a dwell time: its longest
        # view on the last local day it was viewed with one (day * VIEW_DAY_SCALE +
        # seconds, merged by max: the latest day wins), so a browse reminder names first
        # what the customer lingered on, not the last glance. The value reads as a time
        # (the local day's start + seconds), so it expires like one, after the views
        Family("vs", Op.MAX, KeyKind.PRODUCT, "longest view on its day", retention_days=9),
        # what each delivery or pick-up handed over (its product), so that a return is
        # known to be of the order last delivered or of another (a review request asks
        # about the order kept: features.finalise.delivery_returned); two weeks cover the
        # review's ten days (an older delivery: any return after it counts as its own)
        Family("dv", Op.MAX, KeyKind.PRODUCT, "last delivered or collected", retention_days=14),
    )
}

#: Families whose key is a time (day or hour), for retention.
_TIMED_KEYS = {KeyKind.DAY: SECONDS_PER_DAY, KeyKind.HOUR: SECONDS_PER_HOUR}


@dataclass(frozen=True)
class FamilyOps:
    """Ops of one family: a frame with columns ``row`` (position of the event or
    customer in the input frame), ``ts`` (epoch seconds when the op became
    known), ``key`` and ``value``. ``row`` ties ops to their event id, for
    de-duplication online; ``ts`` serves point-in-time cuts offline."""

    family: Family
    frame: pd.DataFrame


@dataclass(frozen=True)
class ProductCatalog:
    """What the definitions need to know about products, indexed by product id."""

    category: pd.Series
    brand: pd.Series
    launch: pd.Series  # epoch seconds
    price: pd.Series

    @classmethod
    def from_products(cls, products: pd.DataFrame) -> ProductCatalog:
        indexed = products.set_index("product_id")
        return cls(
            category=indexed["category"].astype(object),
            brand=indexed["brand"].astype(object),
            launch=pd.Series(epoch_seconds(indexed["launch_date"]), index=indexed.index),
            price=indexed["price"].astype(float),
        )


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Timestamps (aware, or naive meaning UTC; any resolution) to integer epoch seconds.

    >>> epoch_seconds(pd.Series(pd.to_datetime(["1970-01-02T00:00:01Z"])))
    array([86401])
    """
    stamps = pd.to_datetime(ts)
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_localize("UTC")
    seconds = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.to_numpy(dtype=np.int64)


def decay_weight(seconds: np.ndarray | float) -> np.ndarray | float:
    """``exp((t - T0) / TAU)``: multiply an event's weight by this to sum it decayed."""
    return np.exp((np.asarray(seconds, dtype=float) - DECAY_T0) / DECAY_TAU_SECONDS)


def local_parts(seconds: np.ndarray, timezones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local hour of week (Monday 00:00 = 0) and month (1..12) of UTC epoch seconds,
    each in its own IANA ``timezones``; vectorised per distinct zone."""
    if len(seconds) <= SMALL_BATCH:
        return _local_parts_small(seconds, timezones)
    how = np.zeros(len(seconds), dtype=np.int64)
    month = np.zeros(len(seconds), dtype=np.int64)
    utc = pd.to_datetime(seconds, unit="s", utc=True)
    zones = pd.Categorical(timezones)
    for code, tz in enumerate(zones.categories):
        mask = zones.codes == code
        local = utc[mask].tz_convert(tz)
        how[mask] = local.day_of_week.to_numpy() * 24 + local.hour.to_numpy()
        month[mask] = local.month.to_numpy()
    return how, month


def local_days(seconds: np.ndarray, timezones: np.ndarray) -> np.ndarray:
    """Local day numbers (days since 1970-01-01 in each IANA ``timezones``) of UTC epoch
    seconds; vectorised per distinct zone."""
    days = np.zeros(len(seconds), dtype=np.int64)
    utc = pd.to_datetime(seconds, unit="s", utc=True)
    zones = pd.Categorical(timezones)
    for code, tz in enumerate(zones.categories):
        mask = zones.codes == code
        offset = utc[mask].tz_convert(tz).tz_localize(None) - utc[mask].tz_localize(None)
        days[mask] = (seconds[mask] + offset.total_seconds().to_numpy().astype(np.int64)) // (
            SECONDS_PER_DAY
        )
    return days


def local_day(local: dt.datetime) -> int:
    """The local day number of an aware moment (see :func:`local_days`)."""
    return local.date().toordinal() - _EPOCH_ORDINAL


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

#: Below this many events, per-event Python is faster than pandas (online batches).
SMALL_BATCH = 256


@functools.lru_cache(maxsize=1024)
def time_zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _local_parts_small(seconds: np.ndarray, timezones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`local_parts` event by event (same results; tested against the vectorised path)."""
    how = np.zeros(len(seconds), dtype=np.int64)
    month = np.zeros(len(seconds), dtype=np.int64)
    for i, (sec, tz) in enumerate(zip(seconds.tolist(), list(timezones), strict=True)):
        local = dt.datetime.fromtimestamp(sec, time_zone(str(tz)))
        how[i] = local.weekday() * 24 + local.hour
        month[i] = local.month
    return how, month


def encode_register(seconds: np.ndarray | float, value: np.ndarray | int) -> np.ndarray | float:
    """Encode a last-writer-wins register as one number merged by ``max``."""
    return np.asarray(seconds, dtype=float) * 8 + np.asarray(value, dtype=float)


def decode_register(encoded: float) -> tuple[float, int]:
    """``(seconds, value)`` of an encoded register."""
    seconds = math.floor(encoded / 8)
    return float(seconds), round(encoded - seconds * 8)


#: Declared hours ``start-end`` (whole local hours, 0-24) as one register value below 1024.
_HOURS_BASE = 25
_HOURS_SCALE = 1024


def encode_hours(text: str) -> int | None:
    """``start * 25 + end`` of declared hours such as ``18-21`` (``None`` when not hours).

    >>> encode_hours("18-21"), decode_hours(encode_hours("18-21"))
    (471, '18-21')
    """
    start, sep, end = str(text).partition("-")
    if not sep or not start.strip().isdigit() or not end.strip().isdigit():
        return None
    a, b = int(start), int(end)
    if not (0 <= a <= 23 and 0 <= b <= 24 and a != b):
        return None
    return a * _HOURS_BASE + b


def decode_hours(code: int) -> str:
    """The declared hours ``start-end`` of :func:`encode_hours`."""
    return f"{code // _HOURS_BASE}-{code % _HOURS_BASE}"


def encode_hours_register(seconds: float, code: int) -> float:
    """The ``ph`` register of hours ``code`` declared at ``seconds``."""
    return seconds * _HOURS_SCALE + code


def decode_hours_register(encoded: float) -> tuple[float, str]:
    """``(seconds, hours)`` of a declared-hours register (``ts * 1024 + code``)."""
    seconds = math.floor(encoded / _HOURS_SCALE)
    return float(seconds), decode_hours(round(encoded - seconds * _HOURS_SCALE))


def _family_ops(
    family: str, rows: np.ndarray, keys: object, values: object, ts: np.ndarray
) -> FamilyOps:
    # copy=False: no consolidation of the columns into one block (a full copy)
    frame = pd.DataFrame({"row": rows, "ts": ts, "key": keys, "value": values}, copy=False)
    return FamilyOps(FAMILIES[family], frame)


def _view_seconds(properties: pd.Series, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of each view of ``mask`` (its ``dwell_seconds``, else the default), and
    whether the event gave them."""
    seconds = np.full(int(mask.sum()), DEFAULT_VIEW_SECONDS)
    given = np.zeros(len(seconds), dtype=bool)
    props = properties[mask]
    has = props.notna().to_numpy()
    if has.any():
        parsed = pd.json_normalize(props[has].map(_loads).tolist())
        if "dwell_seconds" in parsed:
            dwell = pd.to_numeric(parsed["dwell_seconds"], errors="coerce").to_numpy()
            finite = np.isfinite(dwell)
            seconds[has] = np.where(finite, np.clip(dwell, 0, 3600), DEFAULT_VIEW_SECONDS)
            given[has] = finite
    return seconds, given


def _click_collect_orders(properties: pd.Series, mask: np.ndarray) -> np.ndarray:
    """Of the rows of ``mask``, those whose properties name a click-and-collect fulfilment."""
    out = np.zeros(len(mask), dtype=bool)
    rows = np.flatnonzero(mask & properties.notna().to_numpy())
    for row in rows:
        out[row] = _is_click_collect(properties.iloc[row])
    return out


def _is_click_collect(properties: object) -> bool:
    if not isinstance(properties, str) or FULFILMENT_PROPERTY not in properties:
        return False
    try:
        value = _loads(properties).get(FULFILMENT_PROPERTY)
    except ValueError:
        return False
    return isinstance(value, str) and value.strip().lower() in CLICK_COLLECT_FULFILMENTS


def _hard_bounces(properties: pd.Series, mask: np.ndarray) -> np.ndarray:
    """Of the rows of ``mask``, those whose properties call the bounce permanent."""
    out = np.zeros(len(mask), dtype=bool)
    for row in np.flatnonzero(mask & properties.notna().to_numpy()):
        out[row] = _is_hard_bounce(properties.iloc[row])
    return out


def _is_hard_bounce(properties: object) -> bool:
    """True when a bounce's properties call it permanent (:data:`HARD_BOUNCE_TYPES`)."""
    if not isinstance(properties, str) or (
        "bounce" not in properties and "permanent" not in properties
    ):
        return False
    try:
        found = _loads(properties)
    except ValueError:
        return False
    kind = found.get(BOUNCE_TYPE_PROPERTY)
    return found.get("permanent") is True or (
        isinstance(kind, str) and kind.strip().lower() in HARD_BOUNCE_TYPES
    )


def _loads(text: str) -> dict[str, object]:
    import json

    value = json.loads(text)
    return value if isinstance(value, dict) else {}


#: The columns of the events :func:`event_ops` reads.
EVENT_COLUMNS_READ = (
    "customer_id",
    "timestamp",
    "channel",
    "event_type",
    "product_id",
    "offer_id",
    "revenue",
    "properties",
)


def event_ops(
    events: pd.DataFrame,
    catalog: ProductCatalog,
    timezones: pd.Series,
    default_timezone: str = "UTC",
) -> Iterator[FamilyOps]:
    """The ops that ``events`` make, family by family.

    Parameters
    ----------
    events : DataFrame
        Contract events (any order), shape (n_events, ...). Only ``customer_id``,
        ``timestamp``, ``channel``, ``event_type``, ``product_id``, ``offer_id``,
        ``revenue`` and ``properties`` are read.
    catalog : ProductCatalog
        Category, brand, launch and price of products; unknown products simply
        contribute no category or brand.
    timezones : Series
        IANA time zone by customer id; customers not in it are taken to live in
        ``default_timezone`` (the retailer's, online; UTC unless given).
    """
    n = len(events)
    rows = np.arange(n)
    t = epoch_seconds(events["timestamp"])
    etype_cat = pd.Categorical(events["event_type"])
    etype_names = list(etype_cat.categories)
    etype_codes = etype_cat.codes
    channel = pd.Categorical(events["channel"])
    pid = pd.Categorical(events["product_id"])
    has_product = pid.codes >= 0
    customers = pd.Categorical(events["customer_id"])
    tz = _lookup(timezones.astype(object), customers, default=default_timezone)

    def of(*types: EventType) -> np.ndarray:
        wanted = np.zeros(len(etype_names) + 1, dtype=bool)  # the last entry: code -1
        wanted[[etype_names.index(x.value) for x in types if x.value in etype_names]] = True
        return wanted[etype_codes]

    def _ops(family: str, at: np.ndarray, keys: object, values: object) -> FamilyOps:
        return _family_ops(family, at, keys, values, t[at])

    yield _ops("n", rows, 0, 1.0)
    yield _ops("t0", rows, 0, t.astype(float))

    activity = of(*ACTIVITY_EVENTS)
    yield _ops("tv", rows[activity], 0, t[activity].astype(float))
    how, _ = local_parts(t[activity], tz[activity])
    yield _ops("h", rows[activity], how, 1.0)
    shopping = of(*SHOPPING_EVENTS)
    bought = of(EventType.PURCHASE)[shopping]
    yield _ops(
        "ad",
        rows[shopping],
        local_days(t[shopping], tz[shopping]),
        np.where(bought, t[shopping] - PURCHASE_DAY_OFFSET, 1).astype(float),
    )
    viewed = of(EventType.PRODUCT_VIEW)
    yield _ops("wd", rows[viewed], t[viewed] // SECONDS_PER_DAY, 1.0)
    yield _ops(
        "wm",
        rows[viewed],
        t[viewed] // SECONDS_PER_DAY,
        _view_seconds(events["properties"], viewed)[0],
    )
    carted = of(EventType.ADD_TO_CART)
    yield _ops("wc", rows[carted], t[carted] // SECONDS_PER_DAY, 1.0)

    purchase = of(EventType.PURCHASE)
    pr = rows[purchase]
    revenue = events["revenue"].to_numpy(dtype=float, na_value=0.0)[purchase]
    pday = t[purchase] // SECONDS_PER_DAY
    yield _ops("tp", pr, 0, t[purchase].astype(float))
    yield _ops("tf", pr, 0, t[purchase].astype(float))
    yield _ops("np", pr, 0, 1.0)
    yield _ops("ol", pr, t[purchase], 1.0)
    yield _ops("rv", pr, 0, revenue)
    yield _ops("pd", pr, pday, 1.0)
    yield _ops("rd", pr, pday, revenue)
    yield _ops("pq", pr, month_first_days(pday), t[purchase].astype(float))
    promo = purchase & events["offer_id"].notna().to_numpy()
    yield _ops("pp", rows[promo], 0, 1.0)
    _, pmonth = local_parts(t[purchase], tz[purchase])
    yield _ops("pm", pr, pmonth, 1.0)

    launch = _lookup(catalog.launch.astype(float), pid, default=np.nan).astype(float)
    new = purchase & (t - launch >= 0) & (t - launch <= NEW_PRODUCT_DAYS * SECONDS_PER_DAY)
    yield _ops("pn", rows[new], 0, 1.0)

    category = _lookup_labels(catalog.category, pid)
    brand = _lookup_labels(catalog.brand, pid)
    weight_of = np.array([AFFINITY_WEIGHTS.get(EventType(e), 0.0) for e in etype_names] + [0.0])
    weights = weight_of[etype_codes]
    weighted = (weights > 0) & has_product
    decayed = weights * decay_weight(t)
    with_cat = weighted & pd.notna(category)
    yield _ops("c", rows[with_cat], category[with_cat], decayed[with_cat])
    with_brand = weighted & pd.notna(brand)
    yield _ops("b", rows[with_brand], brand[with_brand], decayed[with_brand])

    for family, types in (
        ("es", (EventType.MESSAGE_SENT,)),
        ("ed", (EventType.MESSAGE_DELIVERED,)),
        ("eo", (EventType.MESSAGE_OPENED,)),
        ("ek", (EventType.MESSAGE_CLICKED,)),
    ):
        mask = of(*types)
        yield _ops(family, rows[mask], channel[mask], 1.0)
    clicked = of(EventType.MESSAGE_CLICKED)
    yield _ops(
        "kd",
        rows[clicked],
        _channel_day(channel[clicked], t[clicked] // SECONDS_PER_DAY),
        1.0,
    )
    sent = of(EventType.MESSAGE_SENT)
    sent_hours = _channel_day(channel[sent], t[sent] // SECONDS_PER_HOUR)
    yield _ops("xh", rows[sent], sent_hours, 1.0)
    yield _ops("xm", rows[sent], sent_hours, (t[sent] % SECONDS_PER_HOUR).astype(float))
    yield _ops("xl", rows[sent], channel[sent], t[sent].astype(float))
    refused = of(*REFUSAL_EVENTS)
    yield _ops("xr", rows[refused], channel[refused], t[refused].astype(float))

    consent_channels = channel.isin([c.value for c in CONSENT_CHANNELS])
    withdraw = of(EventType.UNSUBSCRIBE, EventType.COMPLAINT, EventType.SMS_STOP)
    bounced = of(EventType.MESSAGE_BOUNCED)
    if bounced.any():
        withdraw = withdraw | _hard_bounces(events["properties"], bounced)
    withdraw = withdraw & consent_channels
    grant = of(EventType.OPT_IN) & consent_channels
    change = withdraw | grant
    yield _ops(
        "g",
        rows[change],
        channel[change],
        encode_register(t[change], withdraw[change].astype(int)),
    )

    # a pass in the customer's wallet is what opens the wallet channel (its "consent")
    passes = of(EventType.WALLET_PASS_ADDED)
    yield _ops("g", rows[passes], Channel.WALLET.value, encode_register(t[passes], 0))

    tier_events = of(EventType.LOYALTY_TIER_REACHED)
    if tier_events.any():
        tiers = (
            events["properties"][tier_events]
            .map(lambda p: _loads(p).get("tier") if isinstance(p, str) else None)
            .map(TIER_RANK)
        )
        known = tiers.notna().to_numpy()
        tier_rows = rows[tier_events][known]
        yield _ops(
            "lt",
            tier_rows,
            0,
            encode_register(t[tier_events][known], tiers[known].to_numpy(dtype=int)),
        )
        ranks = tiers[known].to_numpy(dtype=float)
        held = ranks > 0  # no tier is the floor: nothing to keep
        yield _ops("lm", tier_rows[held], 0, ranks[held])

    stamped: tuple[tuple[str, tuple[EventType, ...]], ...] = (
        ("tc", (EventType.CHECKOUT_STARTED,)),
        # a click-and-collect pick-up is the order's hand-over, as a delivery is
        ("td", (EventType.ORDER_DELIVERED, EventType.CLICK_COLLECT_PICKUP)),
        ("tx", (EventType.ORDER_RETURNED, EventType.ORDER_CANCELLED)),
    )
    for family, kinds in stamped:
        mask = of(*kinds)
        yield _ops(family, rows[mask], 0, t[mask].astype(float))
    returned = of(*RETURN_EVENTS)
    if returned.any():
        undo_key = _return_keys(events["product_id"], returned)
        amount = events["revenue"].to_numpy(dtype=float, na_value=np.nan)[returned]
        whole = ~(np.isfinite(amount) & (amount > 0))  # no amount refunded: the whole
        rr, rt_ = rows[returned], t[returned].astype(float)
        yield _ops("rt", rr, undo_key, rt_)
        yield _ops("rw", rr[whole], undo_key[whole], rt_[whole])
        yield _ops("ra", rr[~whole], undo_key[~whole], amount[~whole])
    pickup = of(EventType.CLICK_COLLECT_PICKUP)
    yield _ops("cc", rows[pickup], 0, t[pickup].astype(float))
    yield _ops("cl", rows[pickup], 0, t[pickup].astype(float))
    collect_order = _click_collect_orders(events["properties"], purchase)
    yield _ops("co", rows[collect_order], 0, t[collect_order].astype(float))

    keyed_types: tuple[tuple[str, tuple[EventType, ...]], ...] = (
        ("ca", (EventType.ADD_TO_CART,)),
        ("cr", (EventType.REMOVE_FROM_CART,)),
        ("v", (EventType.PRODUCT_VIEW,)),
        ("dv", (EventType.ORDER_DELIVERED, EventType.CLICK_COLLECT_PICKUP)),
    )
    for family, kinds in keyed_types:
        mask = of(*kinds) & has_product
        yield _ops(family, rows[mask], pid[mask], t[mask].astype(float))
    bought_line = of(EventType.PURCHASE) & has_product
    yield _ops(
        "bp",
        rows[bought_line],
        purchase_line_keys(pid[bought_line], t[bought_line]),
        t[bought_line].astype(float),
    )
    added = of(EventType.ADD_TO_CART) & has_product
    price = _lookup(catalog.price.astype(float), pid, default=np.nan).astype(float)
    priced = added & np.isfinite(price)
    yield _ops("cv", rows[priced], pid[priced], price[priced])
    viewed = of(EventType.PRODUCT_VIEW) & has_product
    viewed_cat = viewed & pd.notna(category)
    yield _ops("vc", rows[viewed_cat], category[viewed_cat], t[viewed_cat].astype(float))
    dwell, given = _view_seconds(events["properties"], viewed)
    yield _ops("vm", rows[viewed], t[viewed] // SECONDS_PER_HOUR, dwell)
    timed = viewed.copy()
    timed[viewed] = given  # a view without a dwell time orders as the latest (finalise)
    if timed.any():
        days = local_days(t[timed], tz[timed]).astype(float)
        yield _ops("vs", rows[timed], pid[timed], days * VIEW_DAY_SCALE + dwell[given])


def _return_keys(product_ids: pd.Series, mask: np.ndarray) -> np.ndarray:
    """What each return or cancellation of ``mask`` undoes: its product, or
    :data:`RETURN_ORDER_KEY` (the latest order) when it names none."""
    named = product_ids[mask].astype(object).to_numpy()
    return np.where(pd.isna(named), RETURN_ORDER_KEY, named).astype(object)


def purchase_line_key(product_id: str, second: int) -> str:
    """The ``bp`` key of a purchase of ``product_id`` at ``second``: ``product|UTC day``.

    >>> purchase_line_key("P1", 20_512 * 86_400 + 60)
    'P1|20512'
    """
    return f"{product_id}|{second // SECONDS_PER_DAY}"


def purchase_line_keys(product_ids: object, seconds: np.ndarray) -> np.ndarray:
    """:func:`purchase_line_key` of many purchases."""
    products = np.asarray(product_ids, dtype=object)
    days = (np.asarray(seconds, dtype=np.int64) // SECONDS_PER_DAY).tolist()
    return np.array(
        [f"{p}|{d}" for p, d in zip(products.tolist(), days, strict=True)], dtype=object
    )


def _channel_day(channels: pd.Categorical, numbers: np.ndarray) -> pd.Categorical:
    """``channel|number`` keys (a day or an hour number); the text is built once per
    distinct key."""
    numbers = np.asarray(numbers, dtype=np.int64)
    pair = channels.codes.astype(np.int64) * (int(numbers.max(initial=0)) + 1) + numbers
    codes, uniques = pd.factorize(pair)
    names = np.asarray(channels.categories, dtype=object)
    span = int(numbers.max(initial=0)) + 1
    texts = [f"{names[u // span]}|{u % span}" for u in uniques.tolist()]
    return pd.Categorical.from_codes(codes, categories=pd.Index(texts, dtype=object))


def _lookup(table: pd.Series, codes_of: pd.Categorical, default: object) -> np.ndarray:
    """``table[value]`` for every value of a categorical, vectorised through its codes."""
    per_category = table.reindex(codes_of.categories).to_numpy(dtype=object)
    per_category = np.concatenate([per_category, np.array([default], dtype=object)])
    out: np.ndarray = per_category[codes_of.codes]  # code -1 (missing) picks the default
    if default is None or (isinstance(default, float) and np.isnan(default)):
        return out
    out = out.copy()
    out[pd.isna(out)] = default
    return out


def _lookup_labels(table: pd.Series, codes_of: pd.Categorical) -> pd.Categorical:
    """``table[value]`` (text, missing where unknown) of every value of a categorical,
    as a categorical."""
    per_category = table.reindex(codes_of.categories).to_numpy(dtype=object)
    codes, uniques = pd.factorize(per_category)  # missing labels get code -1
    per_code = np.concatenate([codes, [-1]])
    return pd.Categorical.from_codes(
        per_code[codes_of.codes], categories=pd.Index(uniques, dtype=object)
    )


def customer_ops(customers: pd.DataFrame) -> Iterator[FamilyOps]:
    """Ops from the customers table: first seen, consents and loyalty tier as
    registers stamped with the time they were set (so that a point-in-time view
    does not see a consent withdrawn later).

    ``rows`` index the customers frame.
    """
    rows = np.arange(len(customers))
    created = epoch_seconds(customers["created_at"])
    yield _family_ops("t0", rows, 0, created.astype(float), created)
    yield _family_ops("su", rows, 0, created.astype(float), created)
    for ch in CONSENT_CHANNELS:
        at = customers[f"consent_{ch.value}_at"]
        when = np.where(
            at.notna().to_numpy(), epoch_seconds(at.fillna(customers["created_at"])), created
        )
        granted = customers[f"consent_{ch.value}"].fillna(False).to_numpy(dtype=bool)
        yield _family_ops("g", rows, ch.value, encode_register(when, (~granted).astype(int)), when)
    tier = customers["loyalty_tier"].map(TIER_RANK).fillna(0).to_numpy(dtype=int)
    yield _family_ops("lt", rows, 0, encode_register(created, tier), created)
    # declared preferences, stamped like the row (the latest declaration wins)
    if "preferred_channel" in customers:
        channel = customers["preferred_channel"].astype(object)
        declared = channel.notna().to_numpy()
        keys = channel[declared].map(lambda c: getattr(c, "value", c)).astype(str).to_numpy()
        yield _family_ops(
            "pc", rows[declared], keys, created[declared].astype(float), created[declared]
        )
    if "preferred_hours" in customers:
        codes = customers["preferred_hours"].map(
            lambda h: encode_hours(h) if isinstance(h, str) else None
        )
        declared = codes.notna().to_numpy()
        values = created[declared].astype(float) * _HOURS_SCALE + codes[declared].to_numpy(float)
        yield _family_ops("ph", rows[declared], 0, values, created[declared])


def key_time_seconds(family: Family, key: object) -> float | None:
    """The time a keyed field refers to (for retention), or None when untimed."""
    if family.key is KeyKind.DAY:
        return float(key) * SECONDS_PER_DAY  # type: ignore[arg-type]
    if family.key is KeyKind.HOUR:
        return float(key) * SECONDS_PER_HOUR  # type: ignore[arg-type]
    if family.key is KeyKind.CHANNEL_DAY:
        return float(str(key).rsplit("|", 1)[1]) * SECONDS_PER_DAY
    if family.key is KeyKind.CHANNEL_HOUR:
        return float(str(key).rsplit("|", 1)[1]) * SECONDS_PER_HOUR
    return None


@functools.lru_cache(maxsize=4096)
def first_day_of_month(day: int) -> int:
    """The day number (days since 1970-01-01) of the first day of ``day``'s month.

    >>> first_day_of_month(20105)  # 2025-01-17
    20089
    """
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return day - date.day + 1


def month_first_days(days: np.ndarray) -> np.ndarray:
    """:func:`first_day_of_month` of many day numbers.

    >>> month_first_days(np.array([20105, 20089])).tolist()
    [20089, 20089]
    """
    months = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)


def field_name(family: str, key: object) -> str:
    """The state field of ``family`` and ``key`` (``"np"``, ``"pd:20512"``)."""
    if FAMILIES[family].key is KeyKind.NONE:
        return family
    return f"{family}:{key}"


def all_channels() -> list[str]:
    return [c.value for c in Channel]


# ----------------------------------------------------------------------------
# One event at a time: the online path for small batches (the API's events).
# It must give exactly the ops of :func:`event_ops` (tests/test_features_definitions.py
# checks it on generated events); keep the two in step when a definition changes.

_CONSENT_VALUES = frozenset(c.value for c in CONSENT_CHANNELS)
_REFUSAL_VALUES = frozenset(e.value for e in REFUSAL_EVENTS)
_WITHDRAW = frozenset(
    {EventType.UNSUBSCRIBE.value, EventType.COMPLAINT.value, EventType.SMS_STOP.value}
)
_ACTIVITY = frozenset(e.value for e in ACTIVITY_EVENTS)
_RETURNS = frozenset(e.value for e in RETURN_EVENTS)
_SHOPPING = frozenset(e.value for e in SHOPPING_EVENTS)
_AFFINITY = {e.value: w for e, w in AFFINITY_WEIGHTS.items() if w > 0}
_COUNTED = {
    EventType.MESSAGE_SENT.value: "es",
    EventType.MESSAGE_DELIVERED.value: "ed",
    EventType.MESSAGE_OPENED.value: "eo",
    EventType.MESSAGE_CLICKED.value: "ek",
}
_STAMPED = {
    EventType.CHECKOUT_STARTED.value: "tc",
    EventType.ORDER_DELIVERED.value: "td",
    EventType.ORDER_RETURNED.value: "tx",
    EventType.ORDER_CANCELLED.value: "tx",
    EventType.CLICK_COLLECT_PICKUP.value: "cc",
}
_PRODUCT_STAMPED = {
    EventType.ADD_TO_CART.value: ("ca",),
    EventType.REMOVE_FROM_CART.value: ("cr",),
    # a pick-up is the order's fulfilment (``td``, ``dv``), not a purchase
    EventType.CLICK_COLLECT_PICKUP.value: ("dv",),
    EventType.ORDER_DELIVERED.value: ("dv",),
    EventType.PRODUCT_VIEW.value: ("v",),
}


@dataclass(frozen=True)
class CatalogLookup:
    """:class:`ProductCatalog` as plain dicts (fast per-event lookups)."""

    category: dict[str, str]
    brand: dict[str, str]
    launch: dict[str, float]
    price: dict[str, float]

    @classmethod
    def of(cls, catalog: ProductCatalog) -> CatalogLookup:
        def known(series: pd.Series) -> dict[str, Any]:
            return {str(k): v for k, v in series.items() if pd.notna(v)}

        return cls(
            known(catalog.category),
            known(catalog.brand),
            {k: float(v) for k, v in known(catalog.launch).items()},
            {k: float(v) for k, v in known(catalog.price).items()},
        )


def _dwell(properties: str | None) -> float | None:
    """A view's ``dwell_seconds`` (0 to 3,600), ``None`` when the event gives none."""
    if not isinstance(properties, str):
        return None
    value = _loads(properties).get("dwell_seconds")
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return min(max(number, 0.0), 3600.0) if math.isfinite(number) else None


def single_event_ops(
    ts: int,
    event_type: str,
    channel: str,
    product_id: str | None,
    offer_id: str | None,
    revenue: float | None,
    properties: str | None,
    timezone: str,
    catalog: CatalogLookup,
) -> list[tuple[str, float]]:
    """The ``(field, value)`` ops of one event: those :func:`event_ops` gives it."""
    ops: list[tuple[str, float]] = [("n", 1.0), ("t0", float(ts))]
    fts = float(ts)
    local: dt.datetime | None = None
    if event_type in _ACTIVITY or event_type in _SHOPPING:
        local = dt.datetime.fromtimestamp(ts, time_zone(timezone))
    if event_type in _ACTIVITY:
        ops.append(("tv", fts))
        ops.append((f"h:{local.weekday() * 24 + local.hour}", 1.0))  # type: ignore[union-attr]
    if event_type in _SHOPPING:
        marker = fts - PURCHASE_DAY_OFFSET if event_type == EventType.PURCHASE.value else 1.0
        ops.append((f"ad:{local_day(local)}", marker))  # type: ignore[arg-type]
    if event_type == EventType.PRODUCT_VIEW.value:
        ops.append((f"wd:{ts // SECONDS_PER_DAY}", 1.0))
        ops.append((f"wm:{ts // SECONDS_PER_DAY}", _dwell(properties) or DEFAULT_VIEW_SECONDS))
    if event_type == EventType.ADD_TO_CART.value:
        ops.append((f"wc:{ts // SECONDS_PER_DAY}", 1.0))
    has_product = product_id is not None
    category = catalog.category.get(product_id) if has_product else None  # type: ignore[arg-type]
    if event_type == EventType.PURCHASE.value:
        money = 0.0 if revenue is None or revenue != revenue else float(revenue)  # NaN: 0
        day = ts // SECONDS_PER_DAY
        ops += [("tp", fts), ("tf", fts), ("np", 1.0), (f"ol:{ts}", 1.0), ("rv", money)]
        ops += [(f"pd:{day}", 1.0), (f"rd:{day}", money), (f"pq:{first_day_of_month(day)}", fts)]
        if offer_id is not None:
            ops.append(("pp", 1.0))
        if _is_click_collect(properties):
            ops.append(("co", fts))
        ops.append((f"pm:{local.month}", 1.0))  # type: ignore[union-attr]
        launch = catalog.launch.get(product_id) if has_product else None  # type: ignore[arg-type]
        if launch is not None and 0 <= ts - launch <= NEW_PRODUCT_DAYS * SECONDS_PER_DAY:
            ops.append(("pn", 1.0))
    weight = _AFFINITY.get(event_type, 0.0)
    if weight > 0 and has_product:
        decayed = weight * math.exp((ts - DECAY_T0) / DECAY_TAU_SECONDS)
        if category is not None:
            ops.append((f"c:{category}", decayed))
        brand = catalog.brand.get(product_id)  # type: ignore[arg-type]
        if brand is not None:
            ops.append((f"b:{brand}", decayed))
    counted = _COUNTED.get(event_type)
    if counted is not None:
        ops.append((f"{counted}:{channel}", 1.0))
    if event_type == EventType.MESSAGE_CLICKED.value:
        ops.append((f"kd:{channel}|{ts // SECONDS_PER_DAY}", 1.0))
    if event_type == EventType.MESSAGE_SENT.value:
        hour_key = f"{channel}|{ts // SECONDS_PER_HOUR}"
        ops.append((f"xh:{hour_key}", 1.0))
        ops.append((f"xm:{hour_key}", float(ts % SECONDS_PER_HOUR)))
        ops.append((f"xl:{channel}", fts))
    if event_type in _REFUSAL_VALUES:
        ops.append((f"xr:{channel}", fts))
    if channel in _CONSENT_VALUES:
        if event_type in _WITHDRAW or (
            event_type == EventType.MESSAGE_BOUNCED.value and _is_hard_bounce(properties)
        ):
            ops.append((f"g:{channel}", fts * 8 + 1))
        elif event_type == EventType.OPT_IN.value:
            ops.append((f"g:{channel}", fts * 8))
    if event_type == EventType.WALLET_PASS_ADDED.value:
        ops.append((f"g:{Channel.WALLET.value}", fts * 8))
    if event_type == EventType.LOYALTY_TIER_REACHED.value and isinstance(properties, str):
        tier = _loads(properties).get("tier")
        rank = TIER_RANK.get(tier) if isinstance(tier, str) else None
        if rank is not None:
            ops.append(("lt", fts * 8 + rank))
            if rank > 0:
                ops.append(("lm", float(rank)))
    stamped = _STAMPED.get(event_type)
    if stamped is not None:
        ops.append((stamped, fts))
    if event_type in _RETURNS:
        key = RETURN_ORDER_KEY if product_id is None else product_id
        ops.append((f"rt:{key}", fts))
        if revenue is None or not (math.isfinite(revenue) and revenue > 0):
            ops.append((f"rw:{key}", fts))
        else:
            ops.append((f"ra:{key}", float(revenue)))
    if event_type == EventType.CLICK_COLLECT_PICKUP.value:
        ops.append(("cl", fts))
        ops.append(("td", fts))
    if has_product:
        for family in _PRODUCT_STAMPED.get(event_type, ()):
            ops.append((f"{family}:{product_id}", fts))
        if event_type == EventType.PURCHASE.value:
            ops.append((f"bp:{purchase_line_key(product_id, ts)}", fts))  # type: ignore[arg-type]
        if event_type == EventType.ADD_TO_CART.value:
            price = catalog.price.get(product_id)  # type: ignore[arg-type]
            if price is not None and math.isfinite(price):
                ops.append((f"cv:{product_id}", price))
        if event_type == EventType.PRODUCT_VIEW.value:
            if category is not None:
                ops.append((f"vc:{category}", fts))
            dwell = _dwell(properties)
            ops.append(
                (f"vm:{ts // SECONDS_PER_HOUR}", DEFAULT_VIEW_SECONDS if dwell is None else dwell)
            )
            if dwell is not None:
                day = local_day(local)  # type: ignore[arg-type]
                ops.append((f"vs:{product_id}", day * VIEW_DAY_SCALE + dwell))
    return ops
