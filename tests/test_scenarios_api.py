"""The playbook's journey scenarios through the real API, as a journey tool drives it.

Each test signs a customer up with an ``identify`` (time zone, consents, birthday),
posts the raw events a retailer's systems send (product views, cart adds, orders,
deliveries, pick-ups, unsubscribes) to ``POST /v1/events`` of a real app on a real
Redis, asks ``POST /v1/decisions`` at a moment given in the context (or the server's
clock) and asserts the answer: action, channel, send time in the customer's local
time, offer or not, and the reasons of the others. The API's own contact history
(what it decided before) carries cool-downs, sequences and caps from one call to the
next. The batch twins of these scenarios are ``tests/test_scenarios.py``.

The API explores (Thompson sampling over the response statistics it learns), so a
test pins the engine's choice where the API cannot explore (time-critical reminders,
a single option that can win) and otherwise the option of highest expected priority,
which the answer names when exploration picked another (:func:`best_of`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.dataset import RetailDataset
from serving.app import create_app
from serving.auth import new_api_key
from serving.settings import Settings
from tests.api_support import redis_client
from training.registry import ModelRegistry

UTC = dt.UTC
PARIS, TOKYO, LOS_ANGELES = "Europe/Paris", "Asia/Tokyo", "America/Los_Angeles"
COLLECT = {"fulfilment": "click_collect"}
_ids = itertools.count()

SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
#: One channel's reason in an action's grouped reasons.
PER_CHANNEL = re.compile(
    r"(?:^|; )(email|sms|push|wallet|postal|web|app|call_centre): ([a-z_0-9]+) \("
)


@dataclass
class Shop:
    """A retailer's systems and a journey tool, talking to one API."""

    api: TestClient
    headers: dict[str, str]
    #: numbers the journey tool's requests: each carries an ``Idempotency-Key``, which
    #: seeds the API's draws, so every run explores the same way (no flaky test)
    requests: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    def post(self, *items: dict[str, Any]) -> dict[str, Any]:
        response = self.api.post("/v1/events", json={"events": list(items)}, headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["rejected"] == 0, body["rejections"]
        return body

    def signup(
        self,
        at: dt.datetime,
        *,
        timezone: str = PARIS,
        consents: Sequence[str] = ("email",),
        birthday: dt.date | None = None,
    ) -> str:
        """A new customer, identified at ``at`` with these consents (the others refused)."""
        customer = f"S{uuid.uuid4().hex[:10]}"
        traits: dict[str, Any] = {"timezone": timezone, "createdAt": at.isoformat()}
        for channel in ("email", "sms", "push", "postal", "call_centre"):
            traits[f"consent_{channel}"] = channel in consents
        if birthday is not None:
            traits["birthday"] = birthday.isoformat()
        self.post(identify(customer, at, **traits))
        return customer

    def decide(
        self,
        customer: str,
        at: dt.datetime | None,
        idempotency_key: str | None = None,
        **context: Any,
    ) -> dict[str, Any]:
        if at is not None:
            context["timestamp"] = at.isoformat()
        headers = dict(self.headers)
        headers["Idempotency-Key"] = idempotency_key or f"journey-{next(self.requests)}"
        response = self.api.post(
            "/v1/decisions",
            json={"customer_id": customer, "context": context},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert not body["degraded"] and not body["cold_start"], body
        return body

    def first_contact(self, customer: str, at: dt.datetime, **context: Any) -> dict[str, Any]:
        """The first contact the API chooses when asked again and again (exploration may
        keep a message that is worth little for another time): the answers with none
        record nothing, so each try sees the same state."""
        for _ in range(8):
            chosen = contacts(self.decide(customer, at, **context))
            if chosen:
                return chosen[0]
        raise AssertionError(f"no contact chosen for {customer} at {at} in 8 tries")


def identify(customer: str, at: dt.datetime, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"id-{next(_ids)}-{uuid.uuid4().hex[:6]}",
        "userId": customer,
        "timestamp": at.isoformat(),
        "traits": traits,
    }


def event(
    customer: str,
    at: dt.datetime,
    event_type: str,
    product: str | None = None,
    *,
    channel: str = "web",
    **extra: Any,
) -> dict[str, Any]:
    """A contract event; ``extra`` may set ``offer_id``, ``revenue``, ``properties``,
    ``decision_id``."""
    row: dict[str, Any] = {
        "event_id": f"e-{next(_ids)}-{uuid.uuid4().hex[:6]}",
        "customer_id": customer,
        "timestamp": at.isoformat(),
        "channel": channel,
        "event_type": event_type,
        "product_id": product,
    }
    if event_type == "purchase":
        row["quantity"] = 1
        row["revenue"] = 59.9
    row.update(extra)
    return row


def purchase(customer: str, at: dt.datetime, product: str = "P1", **extra: Any) -> dict[str, Any]:
    """A purchase of ``product`` on the web (one unit at 59.90 unless ``extra`` says)."""
    return event(customer, at, "purchase", product, **extra)


def local(zone: str, text: str) -> dt.datetime:
    """A local wall-clock time (``2026-03-04 15:00``) in ``zone``, as a UTC instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def the_action(answer: dict[str, Any]) -> dict[str, Any]:
    [chosen] = answer["actions"]
    return chosen  # type: ignore[no-any-return]


def contacts(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in answer["actions"] if a["channel"] is not None]


def codes(answer: dict[str, Any], action_id: str) -> list[str]:
    """The reason codes the answer gives for ``action_id`` (one per channel when the
    reasons differ by channel: ``push: no_consent (...); email: ...``), in order."""
    out = []
    for r in answer["rejected"]:
        if r["action_id"] != action_id:
            continue
        per_channel = PER_CHANNEL.findall(r["message"])
        out += (
            [code for _, code in per_channel]
            if r["channel"] is None and per_channel
            else [r["code"]]
        )
    return out


def message(answer: dict[str, Any], action_id: str) -> str:
    return " ".join(r["message"] for r in answer["rejected"] if r["action_id"] == action_id)


def best_of(answer: dict[str, Any]) -> str:
    """The action of highest expected priority: the chosen one unless exploration picked
    another, in which case the pick's reason names it."""
    chosen = the_action(answer)
    if not chosen["explored"]:
        return str(chosen["action_id"])
    [pick] = [r for r in chosen["reasons"] if r.startswith("pick: ")]
    return pick.split(" ahead of ", 1)[1].split(",", 1)[0]


def channel_priorities(chosen: dict[str, Any]) -> dict[str, float]:
    """The priority of the chosen action on each channel it could use, from its reasons."""
    [factor] = [r for r in chosen["reasons"] if r.startswith("channel: ")]
    found = {
        c: float(p) for p, c in re.findall(r"(?:priority|below) ([-0-9.e+]+) on (\w+)", factor)
    }
    return {chosen["channel"]: chosen["score"], **found}


def best_channel(chosen: dict[str, Any]) -> str:
    """The channel the engine rates best for the action: the chosen one, unless exploration
    sent it on another, which the reasons say, naming the best ("priority 3.98 on sms,
    below 3.99 on email"). Read from the words, not from the priorities printed to three
    digits, which can tie."""
    [factor] = [r for r in chosen["reasons"] if r.startswith("channel: ")]
    if "explored: not the action's best channel" not in factor:
        return str(chosen["channel"])
    assert chosen["explored"], factor
    named = set(re.findall(r"below [-0-9.e+]+ on (\w+)", factor))
    assert len(named) == 1, factor
    return named.pop()


def send_local(chosen: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(chosen["send_at_local"])


def send_utc(chosen: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(chosen["send_at"].replace("Z", "+00:00"))


# ---------------------------------------------------------------- the app


@pytest.fixture(scope="module")
def shop(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The API on real Redis with the example catalog and contact policy, the tiny data
    set's products (P1 black trousers, P2 white shirt), no customer known beforehand,
    no model registered (rules score) and exploration on its priors."""
    root: Path = tmp_path_factory.mktemp("scenarios_api")
    with open_shop(base, root, redis_client(root), f"scen{uuid.uuid4().hex[:8]}") as opened:
        yield opened


@pytest.fixture(scope="module")
def spring_shop(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The app of :func:`shop` with the spring collection beside the trousers and the shirt
    (launched 15 February): a jacket launched on 1 March (P3) and linen shorts on
    20 April (P4). A launch shows the new arrivals a customer does not hold: with the
    shirt alone, it had nothing to show after mid-March or to one who bought the shirt."""
    root: Path = tmp_path_factory.mktemp("spring_shop")
    spring = base.products.iloc[[1, 1]].assign(
        product_id=["P3", "P4"],
        name=["Spring jacket", "Linen shorts"],
        category=["jackets", "shorts"],
        launch_date=pd.to_datetime(["2026-03-01", "2026-04-20"]),
    )
    products = pd.concat([base.products, spring], ignore_index=True)
    data = dataclasses.replace(base, products=products)
    with open_shop(data, root, redis_client(root), f"spring{uuid.uuid4().hex[:8]}") as opened:
        yield opened


@contextlib.contextmanager
def open_shop(
    base: RetailDataset, root: Path, client: Any, prefix: str, **overrides: Any
) -> Iterator[Shop]:
    """The app of :func:`shop` on ``client`` under the key prefix ``prefix`` (``overrides``:
    other settings, e.g. a marketer's ``catalog_path``)."""
    products = root / "products.parquet"
    base.products.to_parquet(products)
    key, spec = new_api_key("journeys", ("decide", "ingest", "profiles"))
    settings = Settings(
        api_keys=[spec],
        data_dir=root,
        products_path=products,
        redis_prefix=prefix,
        model_poll_seconds=0,
        redis_retry_seconds=0.2,
        archive_fsync="never",
        decision_log_fsync="never",
        **{
            # no outcome comes back in these journeys: statistics learned from them would
            # say that nothing works, and make each test depend on the ones before it
            "response_stats": False,
            **overrides,
        },
    )
    registry = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    app = create_app(settings, client=client, registry=registry)
    with TestClient(app) as api:
        yield Shop(api, {"Authorization": f"Bearer {key}"})


# ---------------------------------------------------------------- abandoned cart


@pytest.mark.parametrize("zone", [PARIS, TOKYO, LOS_ANGELES])
def test_fresh_cart_is_reminded_within_hours_plainly_on_the_cheapest_channel(
    shop: Shop, zone: str
) -> None:
    """A cart left on a Wednesday afternoon (local time, wherever the customer lives):
    an hour later, a plain reminder at once by e-mail (a push, never sent to them, is
    answered at most as often as the store's pushes are tapped, a fifth of e-mail's
    opens; SMS costs more), the later discount not yet eligible."""
    added = local(zone, "2026-03-04 15:00")
    customer = shop.signup(
        added - dt.timedelta(days=20), timezone=zone, consents=("email", "push", "sms")
    )
    shop.post(
        event(customer, added - dt.timedelta(minutes=10), "product_view", "P1"),
        event(customer, added, "add_to_cart", "P1"),
    )
    now = added + dt.timedelta(hours=2)
    answer = shop.decide(customer, now)
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["offer_id"]) == ("cart_reminder_1", None)
    assert chosen["products"] == ["P1"] and chosen["template"] == "cart_reminder_plain"
    # e-mail leads; its channels are explored (all send now), never another action
    assert best_channel(chosen) == "email"
    assert set(channel_priorities(chosen)) == {"push", "email", "sms"}
    assert send_utc(chosen) == now and chosen["timing"] == "as soon as possible"
    assert send_local(chosen).strftime("%a %H:%M") == "Wed 17:00"
    assert send_local(chosen).utcoffset() == now.astimezone(ZoneInfo(zone)).utcoffset()
    assert codes(answer, "cart_reminder_2_discount") == ["not_eligible"]  # not yet
    assert codes(answer, "recommendations_weekly") == ["lost_arbitration"]


def test_a_reminder_explored_on_another_channel_says_so(shop: Shop) -> None:
    """The reminder's channels are explored (all send at once): when the draw sends it by
    SMS or push rather than e-mail, the answer says the channel was explored and gives
    the priorities that make e-mail the best (it used to call the drawn one the best)."""
    drawn = []
    for _ in range(12):
        added = local(PARIS, "2026-03-04 15:00")
        customer = shop.signup(added - dt.timedelta(days=20), consents=("email", "push", "sms"))
        shop.post(event(customer, added, "add_to_cart", "P1"))
        chosen = the_action(shop.decide(customer, added + dt.timedelta(hours=2)))
        assert best_channel(chosen) == "email"
        if chosen["channel"] != "email":
            drawn.append(chosen)
            break
    assert drawn, "twelve reminders, all by e-mail: the channels are no longer explored"
    [factor] = [r for r in drawn[0]["reasons"] if r.startswith("channel: ")]
    assert "below" in factor and "on email" in factor


def test_a_cart_added_a_minute_ago_is_in_the_next_answer(shop: Shop) -> None:
    """The cart is in the profile the very next decision reads: a minute after the add,
    the cart journey's answer is "not yet" (the reminder waits an hour) and "we miss you"
    is off for a lapsed customer who is back; an hour later the reminder goes at once,
    naming the product; once it is bought, no reminder."""
    journey = ["cart_reminder_1", "reactivation"]
    added = local(PARIS, "2026-03-04 10:00")
    twins = [shop.signup(added - dt.timedelta(days=200), consents=("email",)) for _ in "ab"]
    for twin in twins:
        shop.post(event(twin, added - dt.timedelta(days=150), "purchase", "P2"))
    # before the cart, "we miss you" (asked of one twin: it schedules a message)
    before = shop.decide(twins[0], added - dt.timedelta(minutes=5), actions=journey)
    assert [a["action_id"] for a in before["actions"]] == ["reactivation"]  # lapsed
    customer = twins[1]
    shop.post(event(customer, added, "add_to_cart", "P1"))
    soon = shop.decide(customer, added + dt.timedelta(minutes=1), actions=journey)
    assert contacts(soon) == []
    assert "cart_age_hours >= 1" in message(soon, "cart_reminder_1")
    assert "cart_size == 0" in message(soon, "reactivation")
    now = added + dt.timedelta(minutes=61)
    chosen = the_action(shop.decide(customer, now))
    assert (chosen["action_id"], chosen["channel"], chosen["products"]) == (
        "cart_reminder_1",
        "email",
        ["P1"],
    )
    assert send_utc(chosen) == now
    shop.post(event(customer, added + dt.timedelta(minutes=70), "purchase", "P1"))
    bought = shop.decide(customer, added + dt.timedelta(minutes=75), actions=journey)
    assert contacts(bought) == [] and codes(bought, "cart_reminder_1") == ["not_eligible"]


@pytest.mark.parametrize(
    ("zone", "added_local", "asked_local", "consents", "channel", "sent_local"),
    [
        # Saturday 21:30 in Paris, asked at 23:30 (22:30 UTC): Sunday 07:00 by e-mail, two
        # hours before push may go (a cart reminder fades with its delay: nba.reserve)
        (
            PARIS,
            "2026-03-07 21:30",
            "2026-03-07 23:30",
            ("email", "push", "sms"),
            "email",
            "Sun 07:00",
        ),
        # Tuesday 23:00 in Tokyo, asked at 01:30 (16:30 UTC, daytime in Europe): 08:00 by SMS
        (TOKYO, "2026-03-03 23:00", "2026-03-04 01:30", ("sms",), "sms", "Wed 08:00"),
        # Tuesday 22:15 in Los Angeles, asked at 23:20 (07:20 UTC Wednesday): push at 09:00
        (
            LOS_ANGELES,
            "2026-03-03 22:15",
            "2026-03-03 23:20",
            ("push",),
            "push",
            "Wed 09:00",
        ),
        # the same by e-mail: at 07:00
        (LOS_ANGELES, "2026-03-03 22:15", "2026-03-03 23:20", ("email",), "email", "Wed 07:00"),
    ],
)
def test_a_cart_left_at_night_is_deferred_past_quiet_hours_not_dropped(
    shop: Shop,
    zone: str,
    added_local: str,
    asked_local: str,
    consents: tuple[str, ...],
    channel: str,
    sent_local: str,
) -> None:
    """A cart left late in the evening, the decision asked at night local time (at a UTC
    time that is day elsewhere): the reminder is kept and goes at the first moment the
    channel allows in the customer's time zone, within the reminder's 12 hours."""
    added, now = local(zone, added_local), local(zone, asked_local)
    customer = shop.signup(added - dt.timedelta(days=30), timezone=zone, consents=consents)
    shop.post(event(customer, added, "add_to_cart", "P1"))
    answer = shop.decide(customer, now)
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["offer_id"]) == ("cart_reminder_1", None)
    assert best_channel(chosen) == channel
    if chosen["channel"] == channel:
        assert send_local(chosen).strftime("%a %H:%M") == sent_local
        assert chosen["timing"].startswith("first moment outside quiet hours")
    assert dt.timedelta(0) < send_utc(chosen) - now <= dt.timedelta(hours=12)
    if zone == PARIS:  # Saturday night: SMS, never on Sunday, has no moment in 12 h
        assert "sms (no_send_slot)" in " ".join(chosen["reasons"])
    assert send_local(chosen).utcoffset() == send_utc(chosen).astimezone(ZoneInfo(zone)).utcoffset()


@pytest.mark.parametrize("promotion_lover", [True, False])
def test_later_time_limited_discount_only_for_a_customer_it_moves(
    shop: Shop, promotion_lover: bool
) -> None:
    """The first reminder went out through the API; a day later the cart is still there:
    a 48-hour discount for a customer whose purchases all used offers, a plain second
    reminder (the discount refused, with its cost) for one who never used one. Either
    goes once the first reminder's e-mail leaves the rolling 24 hours (1 a day).

    The discount gives up 10 % of the 99.80 cart on each of the message's orders (9.98)
    against a response worth 29.94: it pays only where the offer brings more than a third
    of the responses (and its redemptions on orders placed anyway). Three purchases on
    offer left the scorer's shrunk promotion sensitivity at a 0.022 uplift of a 0.080
    response (0.659 < 0.876), six at 0.029 of 0.087; a year of monthly purchases, all on
    offer, is the promotion lover it moves. The flat 6 a redemption passed the three
    (BENCHMARKS.md, issue 12, value10)."""
    offer = {"offer_id": "O2"} if promotion_lover else {}
    customer = shop.signup(local(PARIS, "2025-03-01 10:00"), consents=("email",))
    monthly = [f"2025-{m:02d}-05" for m in range(4, 13)]
    days = [*monthly, "2026-01-05", "2026-02-02", "2026-02-20"]
    for day in days:
        shop.post(event(customer, local(PARIS, f"{day} 19:00"), "purchase", "P2", **offer))
    added = local(PARIS, "2026-03-09 09:00")  # a cart of 99.80: a response is worth 29.94
    shop.post(
        event(customer, added, "add_to_cart", "P1"), event(customer, added, "add_to_cart", "P2")
    )
    first = the_action(shop.decide(customer, added + dt.timedelta(hours=2)))
    assert (first["action_id"], first["offer_id"]) == ("cart_reminder_1", None)
    now = local(PARIS, "2026-03-10 10:00")  # the cart 25 h old, the reminder 23 h ago
    answer = shop.decide(customer, now)
    chosen = the_action(answer)
    assert codes(answer, "cart_reminder_1") == ["not_eligible"]  # past its day
    assert send_utc(chosen) >= send_utc(first) + dt.timedelta(hours=24)
    assert "once the rolling cap frees" in chosen["timing"]
    if promotion_lover:  # the discount leads (the plain one may be explored instead)
        assert best_of(answer) == "cart_reminder_2_discount"
        if chosen["action_id"] == "cart_reminder_2_discount":
            assert chosen["offer_id"] == "cart_10pct_48h"
            expires = dt.datetime.fromisoformat(chosen["offer_expires_at"].replace("Z", "+00:00"))
            assert expires == send_utc(chosen) + dt.timedelta(hours=48)
    else:
        assert best_of(answer) == "cart_reminder_2" and chosen["offer_id"] is None
        assert codes(answer, "cart_reminder_2_discount") == ["no_consent", "uplift_too_low"]
        assert "does not pay its cost 9.98" in message(answer, "cart_reminder_2_discount")


def test_events_arriving_out_of_order_make_the_same_cart(shop: Shop) -> None:
    """The order placed at 10:30 reaches the API before the cart add of 10:00 it
    completes (and the add is then sent twice): the cart is bought, no reminder; a
    cart add that arrives after a later removal leaves the cart empty too."""
    customer = shop.signup(local(PARIS, "2026-02-01 10:00"), consents=("email", "push"))
    added = local(PARIS, "2026-03-04 10:00")
    add = event(customer, added, "add_to_cart", "P1")
    shop.post(event(customer, added + dt.timedelta(minutes=30), "purchase", "P1"))
    assert shop.post(add)["accepted"] == 1
    assert shop.post(add)["duplicate"] == 1
    now = added + dt.timedelta(hours=3)
    answer = shop.decide(customer, now, actions=["cart_reminder_1"])
    assert contacts(answer) == [] and codes(answer, "cart_reminder_1") == ["not_eligible"]

    other = shop.signup(local(PARIS, "2026-02-01 10:00"), consents=("email", "push"))
    shop.post(event(other, added + dt.timedelta(minutes=20), "remove_from_cart", "P1"))
    shop.post(event(other, added, "add_to_cart", "P1"))
    emptied = shop.decide(other, now, actions=["cart_reminder_1"])
    assert codes(emptied, "cart_reminder_1") == ["not_eligible"]
    in_order = shop.signup(local(PARIS, "2026-02-01 10:00"), consents=("email", "push"))
    shop.post(event(in_order, added, "add_to_cart", "P1"))
    assert the_action(shop.decide(in_order, now))["action_id"] == "cart_reminder_1"


# ---------------------------------------------------------------- browse abandonment


@pytest.mark.parametrize(("zone", "asked_utc"), [(PARIS, "18:30"), (TOKYO, "10:30")])
def test_browse_abandonment_is_told_that_evening(shop: Shop, zone: str, asked_utc: str) -> None:
    """Looked at black trousers for 20 minutes on Friday evening (19:00 local), bought
    nothing: a reminder that evening, 18:00-22:00 local time; asked at 18:30 UTC for a
    Parisian, at 10:30 UTC for someone in Tokyo (19:30 for both)."""
    start = local(zone, "2026-03-06 19:00")
    customer = shop.signup(start - dt.timedelta(days=40), timezone=zone, consents=("email", "push"))
    dwell = {"properties": {"dwell_seconds": 600}}
    shop.post(
        event(customer, start, "product_view", "P1", **dwell),
        event(customer, start + dt.timedelta(minutes=12), "product_view", "P1", **dwell),
    )
    now = dt.datetime.fromisoformat(f"{start.date().isoformat()}T{asked_utc}:00+00:00")
    assert now.astimezone(ZoneInfo(zone)).strftime("%a %H:%M") == "Fri 19:30"
    answer = shop.decide(customer, now)
    chosen = the_action(answer)
    assert chosen["action_id"] == "browse_reminder_evening" and chosen["products"] == ["P1"]
    sent = send_local(chosen)
    assert sent.date() == dt.date(2026, 3, 6) and 19 <= sent.hour < 22
    assert codes(answer, "cart_reminder_1") == ["not_eligible"]  # nothing in the cart


# ---------------------------------------------------------------- lifecycle


def test_welcome_series_for_a_new_sign_up(shop: Shop) -> None:
    """Signed up this morning (an identify with the consent), looked at a product: the
    first welcome leads, at once; a welcome journey asking for its steps gets the first,
    three days after it went the second, and never the first again."""
    signed = local(PARIS, "2026-03-04 09:00")
    steps = ["welcome_1", "welcome_2", "welcome_3_first_order"]
    customer = shop.signup(signed, consents=("email",))
    shop.post(event(customer, signed + dt.timedelta(minutes=5), "product_view", "P1"))
    now = signed + dt.timedelta(hours=1)
    answer = shop.decide(customer, now)
    assert best_of(answer) == "welcome_1"
    assert codes(answer, "welcome_2") == ["not_eligible"]
    other = shop.signup(signed, consents=("email",))
    shop.post(event(other, signed + dt.timedelta(minutes=5), "product_view", "P1"))
    # the first welcome is the best option; exploration may still draw doing nothing
    # (rarely: a journey tool that asks again gets a new draw)
    for _ in range(5):
        answer = shop.decide(other, now, actions=steps)
        assert best_of(answer) == "welcome_1"
        first = the_action(answer)
        if first["action_id"] != "do_nothing":
            break
    assert (first["action_id"], first["channel"]) == ("welcome_1", "email")
    assert first["timing"] == "as soon as possible" and send_utc(first) == now
    later = now + dt.timedelta(days=3, hours=2)
    second = shop.decide(other, later, actions=steps)
    assert best_of(second) == "welcome_2"  # exploration may draw doing nothing, saying so
    assert codes(second, "welcome_1") == ["not_eligible"]


@pytest.mark.parametrize("zone", [PARIS, LOS_ANGELES])
def test_birthday_in_the_coming_week(shop: Shop, zone: str) -> None:
    """A past buyer whose birthday is in six days: the wishes with their points, by
    e-mail (cheaper than SMS), within the week and never after the day."""
    now = local(zone, "2026-04-06 10:00")
    customer = shop.signup(
        local(zone, "2026-01-10 10:00"),
        timezone=zone,
        consents=("email", "sms"),
        birthday=dt.date(1990, 4, 12),
    )
    shop.post(
        event(customer, local(zone, "2026-02-10 19:00"), "product_view", "P1"),
        event(customer, local(zone, "2026-02-10 19:05"), "purchase", "P1"),
    )
    shop.post(event(customer, local(zone, "2026-03-20 19:00"), "product_view", "P2"))
    answer = shop.decide(customer, now)
    assert best_of(answer) == "birthday"
    chosen = the_action(answer)
    if chosen["action_id"] == "birthday":
        assert chosen["offer_id"] == "birthday_points" and chosen["score"] > 0
        assert best_channel(chosen) == "email"
        assert send_local(chosen).date() <= dt.date(2026, 4, 12)
    week_after = shop.decide(customer, now + dt.timedelta(days=8), actions=["birthday"])
    assert contacts(week_after) == [] and codes(week_after, "birthday") == ["not_eligible"]


def test_reactivation_of_a_lapsing_customer_without_a_discount(shop: Shop) -> None:
    """Two purchases last autumn, silence since: "we miss you" by e-mail, without the
    win-back discount (they never bought on offer: it would not pay)."""
    customer = shop.signup(local(PARIS, "2025-08-01 10:00"), consents=("email", "sms"))
    shop.post(event(customer, local(PARIS, "2025-09-01 11:00"), "purchase", "P2"))
    shop.post(event(customer, local(PARIS, "2025-10-01 11:00"), "purchase", "P2"))
    answer = shop.decide(customer, local(PARIS, "2026-03-04 10:00"))
    assert best_of(answer) == "reactivation"
    chosen = the_action(answer)
    if chosen["action_id"] == "reactivation":
        assert chosen["offer_id"] is None and best_channel(chosen) == "email"
    assert set(codes(answer, "reactivation_offer")) <= {"uplift_too_low", "lost_arbitration"}


# ---------------------------------------------------------------- after a purchase


def test_cross_sell_after_a_purchase_offers_complementary_items(shop: Shop) -> None:
    """Bought black trousers two days ago: complementary items, not the trousers. The
    cross-sell is the best option; exploration may draw another, so twins are asked
    until one gets it."""
    bought = local(PARIS, "2026-03-02 19:00")
    for _ in range(5):
        customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
        shop.post(
            event(customer, bought - dt.timedelta(minutes=5), "product_view", "P1"),
            event(customer, bought, "purchase", "P1"),
        )
        answer = shop.decide(
            customer,
            bought + dt.timedelta(days=2),
            actions=["cross_sell_after_purchase", "recommendations_weekly", "review_request"],
        )
        assert best_of(answer) == "cross_sell_after_purchase"
        chosen = the_action(answer)
        if chosen["action_id"] == "cross_sell_after_purchase":
            break
    assert chosen["action_id"] == "cross_sell_after_purchase"
    assert chosen["products"] and "P1" not in chosen["products"]


def test_click_and_collect_cross_sell_only_while_the_pickup_is_pending(shop: Shop) -> None:
    """A first click-and-collect order placed 5 hours ago: "add to your pickup" at once;
    once collected (a pick-up event, even arriving late), no more; a past collector
    buying in store has nothing pending: no pickup message."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email", "push"))
    ordered = local(PARIS, "2026-03-04 11:00")
    shop.post(event(customer, ordered, "purchase", "P1", properties=COLLECT))
    now = ordered + dt.timedelta(hours=5)
    answer = shop.decide(customer, now)
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["template"]) == (
        "cross_sell_click_collect",
        "add_to_your_pickup",
    )
    assert send_utc(chosen) == now
    collected = ordered + dt.timedelta(hours=20)
    shop.post(event(customer, collected, "click_collect_pickup", "P1", channel="store"))
    after = shop.decide(customer, collected + dt.timedelta(hours=1))
    assert codes(after, "cross_sell_click_collect") == ["not_eligible"]  # (before its cool-down)

    past = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email", "push"))
    shop.post(
        event(past, local(PARIS, "2026-02-01 11:00"), "purchase", "P2", properties=COLLECT),
        event(
            past, local(PARIS, "2026-02-02 17:00"), "click_collect_pickup", "P2", channel="store"
        ),
    )
    shop.post(event(past, local(PARIS, "2026-03-04 11:00"), "purchase", "P1", channel="store"))
    instore = shop.decide(past, local(PARIS, "2026-03-04 16:00"))
    assert codes(instore, "cross_sell_click_collect") == ["not_eligible"]
    assert all(a["action_id"] != "cross_sell_click_collect" for a in instore["actions"])


def test_review_request_after_delivery(shop: Shop) -> None:
    """Bought on Monday; the complementary items went out through the API on Wednesday;
    delivered Wednesday: on Friday, a review request; never before the delivery."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    shop.post(event(customer, local(PARIS, "2026-03-02 19:00"), "purchase", "P1"))
    waiting = shop.decide(customer, local(PARIS, "2026-03-04 08:00"))
    assert codes(waiting, "review_request") == ["not_eligible"]  # not delivered yet
    shop.post(event(customer, local(PARIS, "2026-03-04 10:00"), "order_delivered", "P1"))
    answer = shop.decide(customer, local(PARIS, "2026-03-06 10:00"))
    assert best_of(answer) == "review_request"


# ---------------------------------------------------------------- consent


def test_no_consent_means_nothing_outbound(shop: Shop) -> None:
    """A fresh cart, every consent refused: nothing is sent and every channel of the
    reminder says why; an on-site placement may still show content."""
    customer = shop.signup(local(PARIS, "2026-02-01 10:00"), consents=())
    added = local(PARIS, "2026-03-04 09:00")
    shop.post(event(customer, added, "add_to_cart", "P1"))
    answer = shop.decide(customer, added + dt.timedelta(hours=2))
    assert contacts(answer) == []
    assert the_action(answer)["action_id"] == "do_nothing"
    assert codes(answer, "cart_reminder_1") == ["no_consent"] * 3
    on_site = shop.decide(customer, added + dt.timedelta(hours=2), channel="web")
    assert all(a["channel"] in (None, "web") for a in on_site["actions"])


@pytest.mark.parametrize("how", ["unsubscribe", "identify", "sms_stop"])
def test_an_unsubscribe_posted_as_an_event_stops_that_channel_at_once(shop: Shop, how: str) -> None:
    """An SMS-and-e-mail customer with a fresh cart withdraws SMS (an ``unsubscribe`` on
    SMS, an identify with ``consent_sms: false`` or an ``SMS STOP``): the very next
    decision never uses SMS, and says why; e-mail still works."""
    customer = shop.signup(local(PARIS, "2026-02-01 10:00"), consents=("sms", "email"))
    added = local(PARIS, "2026-03-04 09:00")
    shop.post(event(customer, added, "add_to_cart", "P1"))
    stop = added + dt.timedelta(minutes=30)
    withdrawal = {
        "unsubscribe": event(customer, stop, "unsubscribe", channel="sms"),
        "identify": identify(customer, stop, consent_sms=False),
        "sms_stop": event(customer, stop, "sms_stop", channel="sms"),
    }[how]
    shop.post(withdrawal)
    answer = shop.decide(customer, stop + dt.timedelta(minutes=31), actions=["cart_reminder_1"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert set(channel_priorities(chosen)) == {"email"}
    assert "sms (no_consent)" in " ".join(chosen["reasons"])


# ---------------------------------------------------------------- coherence across calls


def test_no_second_message_on_another_channel_or_in_a_second_call(shop: Shop) -> None:
    """The API chose a cart reminder five minutes ago: a second call (another journey
    step, another channel asking) sends no cart reminder again on any channel (the
    action's cool-down) and nothing else before 12 hours; a lapsed customer with a cart
    gets no "we miss you" either."""
    customer = shop.signup(local(PARIS, "2025-08-01 10:00"), consents=("email", "push", "sms"))
    shop.post(event(customer, local(PARIS, "2025-09-01 19:00"), "purchase", "P2"))
    shop.post(event(customer, local(PARIS, "2025-10-01 19:00"), "purchase", "P2"))
    added = local(PARIS, "2026-03-04 09:00")
    shop.post(event(customer, added, "add_to_cart", "P1", channel="app"))
    now = added + dt.timedelta(hours=2)
    first = the_action(shop.decide(customer, now))
    assert first["action_id"] == "cart_reminder_1" and send_utc(first) == now
    for asking in (None, "email", "sms"):
        later = shop.decide(customer, now + dt.timedelta(minutes=5), channel=asking)
        assert "action_cooldown" in codes(later, "cart_reminder_1")
        assert "reactivation" not in [a["action_id"] for a in later["actions"]]
        for chosen in contacts(later):
            assert send_utc(chosen) >= now + dt.timedelta(hours=12), chosen


@pytest.mark.parametrize("reported", [False, True])
def test_rolling_daily_cap_holds_across_calls(shop: Shop, reported: bool) -> None:
    """An e-mail-only customer got a cart reminder by e-mail at 08:00 (the API's
    decision); at 21:05 they browse trousers for 20 minutes. The e-mail cap (1 in 24
    hours, rolling) counts the API's own e-mail: no second one that evening (the browse
    reminder has no moment before it expires, and says so), whether or not the journey
    tool reported its send with a ``message_sent`` naming the decision (counted once)."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    shop.post(event(customer, local(PARIS, "2026-03-02 06:00"), "add_to_cart", "P1"))
    first = shop.decide(customer, local(PARIS, "2026-03-02 08:00"))
    reminder = the_action(first)
    assert (reminder["action_id"], reminder["channel"]) == ("cart_reminder_1", "email")
    if reported:
        sent = event(
            customer,
            send_utc(reminder),
            "message_sent",
            channel="email",
            decision_id=first["decision_id"],
        )
        shop.post(sent, sent)
    shop.post(event(customer, local(PARIS, "2026-03-02 12:00"), "remove_from_cart", "P1"))
    dwell = {"properties": {"dwell_seconds": 600}}
    shop.post(
        event(customer, local(PARIS, "2026-03-02 20:40"), "product_view", "P1", **dwell),
        event(customer, local(PARIS, "2026-03-02 20:52"), "product_view", "P1", **dwell),
    )
    now = local(PARIS, "2026-03-02 21:05")
    evening = shop.decide(customer, now, actions=["browse_reminder_evening"])
    assert contacts(evening) == []
    assert codes(evening, "browse_reminder_evening") == ["no_consent", "channel_daily_cap"]
    assert "1 email contact(s) in 24 hours, the cap is 1" in message(
        evening, "browse_reminder_evening"
    )
    # another e-mail waits until the morning's leaves the window, 09:00 the next day
    picks = shop.first_contact(customer, now, actions=["recommendations_weekly"])
    assert send_utc(picks) >= local(PARIS, "2026-03-03 09:00")
    assert "once the rolling cap frees" in picks["timing"]


def test_rolling_weekly_cap_holds_across_calls(shop: Shop) -> None:
    """A new e-mail-only customer whom four journeys write to through the API, a day
    apart (welcome, cart reminder, "add to your pickup", browse reminder): on Friday
    evening a new cart finds the week's four e-mails (the cap) and no moment before the
    reminder expires, and says so; nothing was reported sent."""
    monday = local(PARIS, "2026-03-02 09:00")
    customer = shop.signup(monday, consents=("email",))
    dwell = {"properties": {"dwell_seconds": 600}}
    steps = [
        (monday, "product_view", "P1", {}, monday + dt.timedelta(hours=1), "welcome_1"),
        (
            local(PARIS, "2026-03-03 09:00"),
            "add_to_cart",
            "P1",
            {},
            local(PARIS, "2026-03-03 11:00"),
            "cart_reminder_1",
        ),
        (
            local(PARIS, "2026-03-04 11:00"),
            "purchase",
            "P1",
            {"properties": COLLECT},
            local(PARIS, "2026-03-04 12:30"),
            "cross_sell_click_collect",
        ),
        (
            local(PARIS, "2026-03-05 19:10"),
            "product_view",
            "P2",
            dwell,
            local(PARIS, "2026-03-05 19:30"),
            "browse_reminder_evening",
        ),
    ]
    sent = []
    for happened, kind, product, extra, asked, action in steps:
        shop.post(event(customer, happened, kind, product, **extra))
        if kind == "product_view" and extra:  # twenty minutes on the page
            shop.post(event(customer, happened + dt.timedelta(minutes=10), kind, product, **extra))
        chosen = shop.first_contact(customer, asked, actions=[action])
        assert (chosen["action_id"], chosen["channel"]) == (action, "email")
        sent.append(send_utc(chosen))
    assert all(b - a >= dt.timedelta(hours=24) for a, b in itertools.pairwise(sent)), sent
    shop.post(event(customer, local(PARIS, "2026-03-06 18:00"), "add_to_cart", "P2"))
    friday = shop.decide(customer, local(PARIS, "2026-03-06 20:00"), actions=["cart_reminder_1"])
    assert contacts(friday) == []
    assert sorted(codes(friday, "cart_reminder_1")) == [
        "channel_weekly_cap",
        "no_consent",
        "no_consent",
    ]
    assert "4 email contact(s) in 7 days, the cap is 4" in message(friday, "cart_reminder_1")


def test_the_decision_time_defaults_to_the_server_clock(shop: Shop) -> None:
    """A journey tool that sends no timestamp gets the decision for now (the server's
    clock): a cart left 90 minutes ago (by that clock) is reminded at once or at the
    next allowed moment, as when the same moment is given in the context."""
    clock = dt.datetime.now(UTC).replace(microsecond=0)
    customer = shop.signup(clock - dt.timedelta(days=10), timezone=TOKYO, consents=("email",))
    shop.post(event(customer, clock - dt.timedelta(minutes=90), "add_to_cart", "P1"))
    implicit = shop.decide(customer, None, actions=["cart_reminder_1"])
    decided = dt.datetime.fromisoformat(implicit["decided_at"].replace("Z", "+00:00"))
    assert clock <= decided <= dt.datetime.now(UTC)
    chosen = the_action(implicit)
    assert chosen["action_id"] == "cart_reminder_1"
    assert decided <= send_utc(chosen) <= decided + dt.timedelta(hours=12)
    assert 7 <= send_local(chosen).hour < 22 and str(send_local(chosen).utcoffset()) == "9:00:00"
