"""Historical campaigns: the schedule's messages and how customers answered them.

The calendar (which day each campaign ran, with which featured category,
product and offer) is drawn once per run, so every chunk of customers saw the
same campaigns. For a chunk, every consenting customer gets each occurrence at
one of the campaign's local hours; outcomes are drawn from the
:class:`~simulator.response.ResponseModel`. A withdrawal (unsubscribe,
complaint, SMS STOP) ends contact on that channel: sends are first drawn as if
nobody withdrew, then everything sent after a customer's first withdrawal on
the channel is dropped, which is the same process drawn in a different order.

What each channel records, as events on that channel:

* e-mail: ``message_sent``, ``message_delivered`` or ``message_bounced``,
  ``message_opened``, ``message_clicked``, ``unsubscribe`` or ``complaint``;
* SMS: the same without opens (not trackable), and ``sms_stop``;
* push: like e-mail, withdrawals are ``unsubscribe`` (notifications disabled);
* postal: sent, delivered or returned (bounced); readers who respond visit a
  store (60%) or the web site within 10 days, with the coupon if any;
* call centre: ``message_sent`` (call placed), ``message_opened`` (answered),
  ``call_refused`` (declined), ``unsubscribe`` (do-not-call request).

Every message event carries the offer the recipient got (if any) and, for
product campaigns, the featured product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nba.channels import Channel
from nba.events import EventType
from simulator.clock import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, LocalClock, weekday
from simulator.config import (
    CATEGORIES,
    CHANNEL_RESPONSE,
    MESSAGE_CHANNELS,
    SimulatorConfig,
)
from simulator.eventlog import CHANNEL_CODE, EventBuffer
from simulator.response import ResponseModel
from simulator.rhythm import next_active_moment, store_moment
from simulator.world import (
    CATEGORY_NAMES,
    OFFER_KINDS,
    TIERS,
    Catalogue,
    CustomerWorld,
    OfferTable,
)

#: Share of unanswered calls reported as refused (the rest leave no trace).
CALL_REFUSED_SHARE = 0.6
#: A send this long after the previous one to the same customer counts as recent (fatigue).
FATIGUE_WINDOW_NS = 7 * DAY_NS
#: Spread of a campaign's sends after its hour (throughput of the sending platform).
SEND_SPREAD_NS = 30 * MINUTE_NS
#: Postal mail lands 2-4 days after posting and is answered within 10 days.
POSTAL_TRANSIT_DAYS = (2, 5)
POSTAL_RESPONSE_DAYS = (0, 10)
#: Mean delay between an open and a click, and an open and an unsubscribe.
CLICK_DELAY_NS = 90 * SECOND_NS
UNSUBSCRIBE_DELAY_NS = 60 * SECOND_NS
#: Mean delay of an unsubscribe without an open (list-unsubscribe, STOP reply).
BLIND_UNSUBSCRIBE_NS = {Channel.EMAIL: 6 * HOUR_NS, Channel.SMS: 10 * MINUTE_NS}


@dataclass(frozen=True)
class CampaignCalendar:
    """Campaign occurrences, arrays of shape ``(n_occurrences,)``; -1 means none."""

    campaign: np.ndarray  # index into config.campaigns
    day: np.ndarray  # day of the window
    category: np.ndarray  # featured category
    product: np.ndarray  # featured product
    offer: np.ndarray  # offer carried (for a random offer_share of recipients)

    def frame(
        self, config: SimulatorConfig, product_ids: np.ndarray, offer_ids: np.ndarray
    ) -> pd.DataFrame:
        """Readable occurrences for ``truth/campaigns.parquet``."""
        campaigns = config.campaigns
        start = pd.Timestamp(config.start)
        none = np.array([None], dtype=object)
        return pd.DataFrame(
            {
                "campaign": [campaigns[i].name for i in self.campaign],
                "channel": [campaigns[i].channel.value for i in self.campaign],
                "kind": [campaigns[i].kind for i in self.campaign],
                "date": (start + pd.to_timedelta(self.day, unit="D")).normalize().tz_localize(None),
                "featured_category": np.concatenate([np.array(CATEGORY_NAMES, dtype=object), none])[
                    self.category
                ],
                "featured_product": np.concatenate([product_ids.astype(object), none])[
                    self.product
                ],
                "offer_id": np.concatenate([offer_ids.astype(object), none])[self.offer],
                "offer_share": [campaigns[i].offer_share for i in self.campaign],
            }
        )


def build_calendar(
    config: SimulatorConfig, rng: np.random.Generator, catalogue: Catalogue, offers: OfferTable
) -> CampaignCalendar:
    """Occurrence days of every campaign, with their featured category, product and offer."""
    first_weekday = int(weekday(np.array([pd.Timestamp(config.start).value]))[0])
    days_weekday = (first_weekday + np.arange(config.days)) % 7
    campaign: list[np.ndarray] = [np.empty(0, dtype=np.intp)]
    day: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    for i, c in enumerate(config.campaigns):
        if c.days_of_week:
            d = np.flatnonzero(np.isin(days_weekday, c.days_of_week))
        elif c.every_days:
            d = np.arange(c.first_day, config.days, c.every_days)
        else:
            d = np.array([c.first_day]) if c.first_day < config.days else np.array([], dtype=int)
        campaign.append(np.full(d.size, i))
        day.append(d)
    camp = np.concatenate(campaign).astype(np.intp)
    days = np.concatenate(day).astype(np.int64)
    n = camp.size
    shares = np.array([c.catalogue_share for c in CATEGORIES])
    category = rng.choice(len(CATEGORY_NAMES), size=n, p=shares / shares.sum())
    product = np.full(n, -1, dtype=np.intp)
    offer = np.full(n, -1, dtype=np.intp)
    start = int(pd.Timestamp(config.start).value)
    for j in range(n):  # a few dozen occurrences
        spec = config.campaigns[camp[j]]
        if spec.kind == "new_collection":
            launched = catalogue.launch_day <= days[j]
            recent = launched & (catalogue.launch_day >= days[j] - 30)
            pool = np.flatnonzero(recent if recent.any() else launched)
            weights = catalogue.popularity[pool]
            product[j] = pool[rng.choice(pool.size, p=weights / weights.sum())]
            category[j] = catalogue.category[product[j]]
        elif spec.kind in ("catalogue", "loyalty"):
            category[j] = -1
        if spec.offer_rate and rng.random() < spec.offer_rate:
            moment = start + days[j] * DAY_NS
            kinds = [OFFER_KINDS.index(k) for k in spec.offer_kinds]
            ok = (
                offers.public
                & np.isin(offers.kind, kinds)
                & offers.channel_ok[:, CHANNEL_CODE[spec.channel]]
                & (offers.valid_from <= moment)
                & (offers.valid_to >= moment + DAY_NS)
            )
            if ok.any():
                offer[j] = rng.choice(np.flatnonzero(ok))
    order = np.lexsort((camp, days))
    return CampaignCalendar(camp[order], days[order], category[order], product[order], offer[order])


@dataclass(frozen=True)
class ClickSessions:
    """Visits caused by messages, arrays of shape ``(m,)``.

    ``converted`` visits end in a purchase (drawn by the response model), the
    others do not; ``offer`` is redeemed on purchase when it is redeemable.
    """

    customer: np.ndarray  # chunk-local row
    timestamp: np.ndarray
    channel: np.ndarray  # channel code (web, app or store)
    category: np.ndarray  # -1: drawn from taste
    product: np.ndarray  # first product viewed, -1: none
    converted: np.ndarray
    offer: np.ndarray


@dataclass(frozen=True)
class CouponHoldings:
    """Offers customers opened and may redeem, arrays of shape ``(h,)``."""

    customer: np.ndarray  # chunk-local row
    start: np.ndarray  # ns UTC
    end: np.ndarray  # ns UTC
    offer: np.ndarray


@dataclass(frozen=True)
class MessageHistory:
    """What a chunk's customers received and did with it."""

    events: EventBuffer
    clicks: ClickSessions
    coupons: CouponHoldings
    withdrawn_at: np.ndarray  # shape (n, 5): first withdrawal per consent channel, -1 none


def simulate_messages(
    rng: np.random.Generator,
    rows: np.ndarray,
    world: CustomerWorld,
    config: SimulatorConfig,
    calendar: CampaignCalendar,
    offers: OfferTable,
    clock: LocalClock,
    response: ResponseModel,
) -> MessageHistory:
    """Messages of the schedule to the chunk ``rows`` (global indices) and their outcomes."""
    n = rows.size
    start = int(pd.Timestamp(config.start).value)
    end = start + config.days * DAY_NS
    events = EventBuffer()
    tier = world.initial_tier()

    # 1. sends, as if nobody ever withdrew
    empty = np.empty(0, dtype=np.int64)
    parts: dict[str, list[np.ndarray]] = {k: [empty] for k in ("cust", "occ", "send", "offer")}
    for occ_campaign in np.unique(calendar.campaign):
        spec = config.campaigns[occ_campaign]
        ch = MESSAGE_CHANNELS.index(spec.channel)
        occ = np.flatnonzero(calendar.campaign == occ_campaign)
        hours = np.array(spec.local_hours)
        hour = hours[rng.integers(0, hours.size, (n, occ.size))]
        jitter = rng.integers(0, SEND_SPREAD_NS, (n, occ.size))
        local = start + calendar.day[occ][None, :] * DAY_NS + hour * HOUR_NS + jitter
        send = clock.to_utc(local.ravel(), np.repeat(world.tz, occ.size)).reshape(n, occ.size)
        ok = world.consent[:, ch][:, None] & (world.consent_at[:, ch][:, None] <= send)
        ok &= (world.created_at[:, None] <= send) & (send >= start) & (send < end)
        if spec.min_tier is not None:
            ok &= (tier >= TIERS.index(spec.min_tier))[:, None]
        gets_offer = rng.random((n, occ.size)) < spec.offer_share
        offer = np.where(gets_offer, calendar.offer[occ][None, :], -1)
        cust, j = np.nonzero(ok)
        parts["cust"].append(cust)
        parts["occ"].append(occ[j])
        parts["send"].append(send[cust, j])
        parts["offer"].append(offer[cust, j])
    cust = np.concatenate(parts["cust"]).astype(np.intp)
    occ = np.concatenate(parts["occ"]).astype(np.intp)
    send = np.concatenate(parts["send"])
    offer = np.concatenate(parts["offer"]).astype(np.intp)
    order = np.lexsort((send, cust))
    cust, occ, send, offer = cust[order], occ[order], send[order], offer[order]
    spec_of = calendar.campaign[occ]
    channel = np.array(
        [MESSAGE_CHANNELS.index(c.channel) for c in config.campaigns], dtype=np.intp
    )[spec_of]
    kind = np.array([c.kind for c in config.campaigns], dtype=object)[spec_of]

    # 2. fatigue: messages to the same customer in the previous 7 days
    seconds = (send - start) // SECOND_NS + FATIGUE_WINDOW_NS // SECOND_NS + 1
    key = cust.astype(np.int64) * (1 << 32) + seconds
    recent = np.arange(key.size) - np.searchsorted(key, key - FATIGUE_WINDOW_NS // SECOND_NS)

    # 3. outcomes from the response model
    outcome = response.sample(
        rng,
        rows[cust],
        channel,
        send,
        kind=kind,
        category=calendar.category[occ],
        product=calendar.product[occ],
        offer=offer,
        recent_contacts=recent,
    )

    # 4. when each outcome happens
    m = cust.size
    quick_open = _CHANNEL["quick_open_minutes"][channel] * MINUTE_NS
    delivered_at = send + rng.integers(SECOND_NS, 120 * SECOND_NS, m)
    is_postal = channel == MESSAGE_CHANNELS.index(Channel.POSTAL)
    is_call = channel == MESSAGE_CHANNELS.index(Channel.CALL_CENTRE)
    transit = rng.integers(*POSTAL_TRANSIT_DAYS, m) * DAY_NS
    delivered_at = np.where(is_postal, send + transit, delivered_at)
    active_now = rng.random(m) < response.hour_factor(rows[cust], channel, delivered_at)
    open_at = np.where(
        active_now & ~is_postal,
        delivered_at + (rng.exponential(1.0, m) * quick_open).astype(np.int64),
        next_active_moment(rng, world, cust, clock, delivered_at),
    )
    open_at = np.where(is_call, send + rng.integers(5, 30, m) * SECOND_NS, open_at)
    click_at = open_at + 5 * SECOND_NS + (rng.exponential(1.0, m) * CLICK_DELAY_NS).astype(np.int64)
    blind = np.full(m, HOUR_NS, dtype=np.int64)
    for blind_channel, delay in BLIND_UNSUBSCRIBE_NS.items():
        blind[channel == MESSAGE_CHANNELS.index(blind_channel)] = delay
    unsub_at = np.where(
        outcome.opened,
        open_at + 5 * SECOND_NS + (rng.exponential(1.0, m) * UNSUBSCRIBE_DELAY_NS).astype(np.int64),
        delivered_at + (rng.exponential(1.0, m) * blind).astype(np.int64),
    )
    unsub_at = np.where(is_postal, delivered_at + rng.integers(1, 10, m) * DAY_NS, unsub_at)

    # 5. first withdrawal per customer and channel; drop what was sent after it
    withdraws = outcome.unsubscribed & (unsub_at < end)
    withdrawn_at = np.full((n, len(MESSAGE_CHANNELS)), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(withdrawn_at, (cust[withdraws], channel[withdraws]), unsub_at[withdraws])
    cutoff = withdrawn_at[cust, channel]
    kept = send <= cutoff
    first_withdrawal = withdraws & kept & (unsub_at == cutoff)
    withdrawn_at = np.where(withdrawn_at == np.iinfo(np.int64).max, -1, withdrawn_at)

    # 6. events
    product = calendar.product[occ]
    ch_code = np.array([CHANNEL_CODE[c] for c in MESSAGE_CHANNELS], dtype=np.int8)[channel]
    g = rows[cust]

    def emit(
        mask: np.ndarray, at: np.ndarray, event: EventType, channel_codes: np.ndarray = ch_code
    ) -> None:
        mask = mask & (at < end)
        events.add(
            g[mask], at[mask], channel_codes[mask], event, product=product[mask], offer=offer[mask]
        )

    tracks_opens = np.array([CHANNEL_RESPONSE[c].tracks_opens for c in MESSAGE_CHANNELS])[channel]
    emit(kept, send, EventType.MESSAGE_SENT)
    emit(kept & outcome.delivered & ~is_call, delivered_at, EventType.MESSAGE_DELIVERED)
    emit(kept & ~outcome.delivered & ~is_call, delivered_at, EventType.MESSAGE_BOUNCED)
    emit(kept & outcome.opened & tracks_opens, open_at, EventType.MESSAGE_OPENED)
    refused = kept & is_call & ~outcome.opened & (rng.random(m) < CALL_REFUSED_SHARE)
    emit(refused, send + rng.integers(5, 40, m) * SECOND_NS, EventType.CALL_REFUSED)
    tracked_click = kept & outcome.clicked & ~is_postal & ~is_call
    emit(tracked_click, click_at, EventType.MESSAGE_CLICKED)
    complaint_share = _CHANNEL["complaint_share"][channel]
    is_sms = channel == MESSAGE_CHANNELS.index(Channel.SMS)
    complaint = rng.random(m) < complaint_share
    emit(first_withdrawal & is_sms, unsub_at, EventType.SMS_STOP)
    emit(first_withdrawal & ~is_sms & complaint, unsub_at, EventType.COMPLAINT)
    emit(first_withdrawal & ~is_sms & ~complaint, unsub_at, EventType.UNSUBSCRIBE)

    # opt-ins of customers who joined during the window
    for code, consent_channel in enumerate(MESSAGE_CHANNELS):
        given_at = world.consent_at[:, code]
        joined = world.consent[:, code] & (given_at >= start) & (given_at < end)
        events.add(rows[joined], given_at[joined], consent_channel, EventType.OPT_IN)

    # 7. visits caused by messages: clicks online, postal readers in store or online
    responded = kept & outcome.clicked
    visit_at = click_at.copy()
    visit_channel = np.where(
        channel == MESSAGE_CHANNELS.index(Channel.PUSH),
        CHANNEL_CODE[Channel.APP],
        CHANNEL_CODE[Channel.WEB],
    ).astype(np.int8)
    visit_at = np.where(is_call, open_at + rng.integers(1, 4, m) * HOUR_NS, visit_at)
    later = rng.integers(*POSTAL_RESPONSE_DAYS, m) * DAY_NS
    in_store = is_postal & (rng.random(m) < 0.6)
    postal_visit = store_moment(rng, world, cust, clock, open_at + later)
    visit_at = np.where(is_postal, np.where(in_store, postal_visit, open_at + later), visit_at)
    visit_channel = np.where(in_store, CHANNEL_CODE[Channel.STORE], visit_channel).astype(np.int8)
    responded &= visit_at < end
    clicks = ClickSessions(
        customer=cust[responded],
        timestamp=visit_at[responded],
        channel=visit_channel[responded],
        category=calendar.category[occ][responded],
        product=product[responded],
        converted=outcome.converted[responded],
        offer=offer[responded],
    )

    # 8. coupons opened and held for the attribution window (or until the offer ends)
    o = np.maximum(offer, 0)
    holds = kept & outcome.opened & (offer >= 0) & offers.redeemable[o] & (open_at < end)
    hold_end = np.minimum(offers.valid_to[o], send + config.response.attribution_days * DAY_NS)
    holds &= hold_end > open_at
    coupons = CouponHoldings(cust[holds], open_at[holds], hold_end[holds], offer[holds])
    return MessageHistory(events, clicks, coupons, withdrawn_at)


_CHANNEL: dict[str, np.ndarray] = {
    name: np.array([getattr(CHANNEL_RESPONSE[c], name) for c in MESSAGE_CHANNELS], dtype=float)
    for name in ("quick_open_minutes", "complaint_share")
}
