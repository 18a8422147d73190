"""The playbook audited a second time (issue 12, item 2), from the parts no scenario
drove end to end: lifecycle and journey phase, inbound placements, postal mail and the
call centre, offers' budgets and validity, products not yet launched, experiments from
configuration, explanations and bad input.

As in :mod:`tests.test_scenarios_audit`, every situation is built from raw contract
events or Segment messages posted to the real API on a real Redis, and the answer is read
as a marketer reads it: action, channel, local send time, offer, products, reasons.

Misfires found and fixed here:

* content shown in a web or in-app placement (the weekly picks in the app) was recorded
  as a send: the cart reminder's e-mail waited 12 hours behind it (the gap between
  messages) and the picks could not show again for a week (their cool-down). A
  placement is no send (``features.online.contact_state.sends_of``);
* "goes well with" on a product's page showed that very product first (the page's
  product is now left out of what a placement recommends);
* a product whose ``launch_date`` is after the customer's local day was recommended
  (first of the popularity list before any sale) and reminded after a teaser view. It
  is not on sale: ``StockLevels.unavailable`` (out of stock or not launched) is left
  out of recommendations, carts and browse reminders;
* a data set's unknown customers, products and offers were reported only once its
  events file had no other problem: the user fixing a duplicate id met them in a
  second round. Every table's readable values are now checked across tables
  (``DataContractError.checked``);
* explanations: an action that lost on several channels was listed once per channel,
  without the channel (the birthday twice); it is one entry, each channel's reason
  joined. An action asked outside its validity said "outside the validity dates"
  without them; it names them as the catalog gives them. An action losing with a
  negative priority (a letter to a low-value customer, a gift dearer than its
  response) now says its costs exceed what it earns. A session on an outbound channel
  got a 422 quoting Python's ``<Channel.WEB: 'web'>``.

The other tests found the product right and guard it: lifecycle and phase read-outs
along a journey, reactivation only once at risk, up-sell for loyal high baskets,
placements at night without consent, offers' daily budgets, channels, validity and
cost, postal mail only where it pays, call-centre hours and holidays, a holdout that
gets and counts nothing, arms sticky across replicas and answering as their arm,
purchases credited to the arm's decision.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from cli.decide import EXAMPLES, load_catalog
from experiments.attribution import attribute, exposures_of
from experiments.decision_log import read_decision_log
from features.archive import read_archive
from features.dataset import RetailDataset, load_dataset
from features.online.stock import StockLevels
from features.validation import DataContractError
from nba.experiment import ExperimentConfig, parse_experiment_text
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from tests.api_support import redis_client
from tests.conftest import CUSTOMERS_CSV, EVENTS_CSV, WriteDataset
from tests.test_scenarios_api import (
    PARIS,
    TOKYO,
    Shop,
    best_of,
    codes,
    contacts,
    event,
    local,
    message,
    open_shop,
    send_local,
    send_utc,
    shop,
    the_action,
)
from tests.test_scenarios_audit import profile_of

__all__ = ["shop"]  # the journey scenarios' app, shared


def purchase(customer: str, at: dt.datetime, product: str = "P1", revenue: float = 59.9) -> Any:
    return event(customer, at, "purchase", product, revenue=revenue)


# ---------------------------------------------------------------- lifecycle and phase


def test_lifecycle_and_journey_phase_follow_the_customer(shop: Shop) -> None:
    """The profile read-out walks the journey: a sign-up is new and discovering; two
    products viewed, considering; a cart, deciding; a first order, recommending (review,
    cross-sell); a second order a month later and two quiet weeks, active and loyal; then
    quiet for 1.5 and 3 purchase gaps, at risk, then lapsed."""
    start = local(PARIS, "2026-01-05 10:00")
    customer = shop.signup(start, consents=("email",))
    seen = profile_of(shop, customer, start + dt.timedelta(hours=1))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("new", "discovery")
    shop.post(
        event(customer, start + dt.timedelta(days=1), "product_view", "P1"),
        event(customer, start + dt.timedelta(days=1, minutes=3), "product_view", "P2"),
    )
    seen = profile_of(shop, customer, start + dt.timedelta(days=1, hours=1))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("new", "consideration")
    shop.post(event(customer, start + dt.timedelta(days=1, minutes=5), "add_to_cart", "P1"))
    seen = profile_of(shop, customer, start + dt.timedelta(days=1, hours=1))
    assert seen["journey_phase"] == "decision"
    first = start + dt.timedelta(days=2)
    shop.post(purchase(customer, first))
    seen = profile_of(shop, customer, first + dt.timedelta(days=1))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("new", "recommendation")
    second = first + dt.timedelta(days=30)
    shop.post(purchase(customer, second, "P2", 39.9))
    seen = profile_of(shop, customer, second + dt.timedelta(days=20))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("active", "loyalty")
    seen = profile_of(shop, customer, second + dt.timedelta(days=50))
    assert seen["lifecycle_state"] == "at_risk"
    seen = profile_of(shop, customer, second + dt.timedelta(days=95))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("lapsed", "lapse")


def test_reactivation_only_once_the_customer_is_lapsing(shop: Shop) -> None:
    """ "We miss you" is for customers drifting away: not for an active customer two weeks
    after their order (the reason names the rule), yes once they are at risk."""
    customer = shop.signup(local(PARIS, "2025-10-01 10:00"), consents=("email",))
    bought = local(PARIS, "2025-11-03 12:00")
    shop.post(purchase(customer, bought - dt.timedelta(days=30)), purchase(customer, bought))
    active = shop.decide(customer, bought + dt.timedelta(days=20), actions=["reactivation"])
    assert contacts(active) == []
    assert codes(active, "reactivation") == ["not_eligible"]
    assert "lifecycle_state" in message(active, "reactivation")
    at_risk = shop.decide(customer, bought + dt.timedelta(days=60), actions=["reactivation"])
    chosen = the_action(at_risk)
    assert (chosen["action_id"], chosen["channel"]) == ("reactivation", "email")


def test_up_sell_after_purchases_for_a_loyal_high_basket_customer(shop: Shop) -> None:
    """Two orders of 120 a month apart, then three quiet weeks: a loyal customer with a
    high basket gets the premium line (up-sell); a customer of 40 baskets does not, and
    the reason names the basket rule."""
    bought = local(PARIS, "2026-02-02 12:00")
    rich, modest = (shop.signup(bought - dt.timedelta(days=90)) for _ in "ab")
    for customer, revenue in ((rich, 120.0), (modest, 40.0)):
        shop.post(
            purchase(customer, bought - dt.timedelta(days=30), revenue=revenue),
            purchase(customer, bought, "P2", revenue=revenue),
        )
    now = bought + dt.timedelta(days=21)
    assert profile_of(shop, rich, now)["journey_phase"] == "loyalty"
    chosen = the_action(shop.decide(rich, now, actions=["up_sell_premium"]))
    assert (chosen["action_id"], chosen["channel"]) == ("up_sell_premium", "email")
    assert 7 <= send_local(chosen).hour < 22
    answer = shop.decide(modest, now, actions=["up_sell_premium"])
    assert contacts(answer) == [] and codes(answer, "up_sell_premium") == ["not_eligible"]
    assert "average_basket" in message(answer, "up_sell_premium")


# ---------------------------------------------------------------- inbound placements


def visit(at: dt.datetime, channel: str = "web", product: str | None = None) -> dict[str, Any]:
    session: dict[str, Any] = {"channel": channel, "started_at": at.isoformat()}
    if product is not None:
        session["product_id"] = product
    return session


def test_an_on_site_placement_at_night_answers_at_once_without_consent(shop: Shop) -> None:
    """A customer who refused every outbound channel browses the site at 23:30 (every
    outbound channel is in its quiet hours): the placement answers now, on the web,
    with products, no consent needed for what they are looking at."""
    now = local(PARIS, "2026-03-04 23:30")
    customer = shop.signup(now - dt.timedelta(days=40), consents=())
    shop.post(event(customer, now - dt.timedelta(minutes=2), "product_view", "P1"))
    answer = shop.decide(customer, now, channel="web", session=visit(now, product="P1"))
    chosen = the_action(answer)
    assert chosen["channel"] == "web"
    assert chosen["action_id"] in {"cross_sell_on_site", "popular_on_site"}
    assert send_utc(chosen) == now
    assert send_local(chosen).strftime("%H:%M") == "23:30"
    assert chosen["products"], chosen


def test_goes_well_with_never_shows_the_product_on_the_page(shop: Shop) -> None:
    """On the black trousers' page, "goes well with" shows the shirt, not the trousers the
    customer is looking at. Misfire: the page's own product came first."""
    now = local(PARIS, "2026-03-04 12:00")
    customer = shop.signup(now - dt.timedelta(days=40), consents=())
    shop.post(event(customer, now - dt.timedelta(minutes=1), "product_view", "P1"))
    answer = shop.decide(
        customer, now, session=visit(now, product="P1"), actions=["cross_sell_on_site"]
    )
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("cross_sell_on_site", "web")
    assert chosen["products"] == ["P2"]


def test_a_placement_is_not_capped_by_the_days_messages_nor_counts_as_one(shop: Shop) -> None:
    """An app visit an hour after a cart is left shows the weekly picks in the app at
    once; the placement is no message: the cart reminder still goes by e-mail at once
    after it (no 12-hour gap between messages), and the next visit, once the day's
    e-mail has gone, shows the picks again at once. Misfire: the picks shown in the app
    were recorded as sent, so the reminder waited for the next morning and the picks
    for a week (their e-mail cool-down)."""
    added = local(PARIS, "2026-03-04 09:00")
    customer = shop.signup(added - dt.timedelta(days=40), consents=("email",))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    picks = ["recommendations_weekly"]
    first = added + dt.timedelta(minutes=90)
    placed = the_action(
        shop.decide(customer, first, channel="app", session=visit(first, "app"), actions=picks)
    )
    assert (placed["action_id"], placed["channel"]) == ("recommendations_weekly", "app")
    assert send_utc(placed) == first and placed["products"] == ["P2"]  # not the cart's
    now = added + dt.timedelta(hours=2)
    reminder = the_action(shop.decide(customer, now))
    assert (reminder["action_id"], reminder["channel"]) == ("cart_reminder_1", "email")
    assert send_utc(reminder) == now
    later = now + dt.timedelta(hours=1)
    again = the_action(
        shop.decide(customer, later, channel="app", session=visit(later, "app"), actions=picks)
    )
    assert (again["action_id"], again["channel"]) == ("recommendations_weekly", "app")
    assert send_utc(again) == later


# ---------------------------------------------------------------- products on sale


@pytest.fixture(scope="module")
def launching(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app with a products table that lists, first, a jacket launched on
    2026-03-05 (in stock, the most popular before anyone has bought anything: the table's
    order) beside the tiny data set's trousers and shirt."""
    jacket = pd.DataFrame(
        {
            "product_id": ["P3"],
            "name": ["Spring jacket"],
            "category": ["jackets"],
            "brand": ["Atelier"],
            "price": [89.0],
            "margin": [35.0],
            "stock": pd.array([40], dtype="Int64"),
            "launch_date": pd.to_datetime(["2026-03-05"]),
            "attributes": [None],
        }
    )
    products = pd.concat([jacket, base.products], ignore_index=True)
    root: Path = tmp_path_factory.mktemp("scenarios_launch")
    with open_shop(
        dataclasses.replace(base, products=products),
        root,
        redis_client(root),
        f"launch{uuid.uuid4().hex[:8]}",
    ) as opened:
        yield opened


@pytest.mark.parametrize("zone", [PARIS, TOKYO])
def test_a_product_launched_tomorrow_is_not_shown_today(launching: Shop, zone: str) -> None:
    """The jacket goes on sale on 5 March: on the 4th (the customer's local day) a visit's
    placement shows the trousers and the shirt, not the jacket, whatever the popularity
    list says; on the 5th (local: Tokyo's starts while UTC is still on the 4th) it is
    shown. Misfire: it was shown the day before its launch."""
    eve = local(zone, "2026-03-04 20:00")
    customer = launching.signup(eve - dt.timedelta(days=40), timezone=zone, consents=())
    answer = launching.decide(
        customer, eve, channel="web", actions=["popular_on_site"], session=visit(eve)
    )
    chosen = the_action(answer)
    assert chosen["action_id"] == "popular_on_site"
    assert chosen["products"] == ["P1", "P2"]
    day = local(zone, "2026-03-05 08:00")
    chosen = the_action(
        launching.decide(
            customer, day, channel="web", actions=["popular_on_site"], session=visit(day)
        )
    )
    assert chosen["products"][0] == "P3"


def test_what_cannot_be_bought_follows_the_local_day_and_the_stock() -> None:
    """The jacket launches on 5 March: at 20:00 UTC on the 4th it is not on sale in Paris
    (21:00 on the 4th) but is in Tokyo (05:00 on the 5th); once the trousers sell out,
    both are left out in Paris, the jacket's launch remembered."""
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P3"],
            "price": [59.9, 89.0],
            "stock": [5, 4],
            "launch_date": pd.to_datetime(["2025-09-01", "2026-03-05"]),
        }
    )
    stock = StockLevels(None, "audit2", products)
    at = dt.datetime(2026, 3, 4, 20, 0, tzinfo=dt.UTC)
    paris = CustomerProfile("C1", as_of=at, timezone=PARIS, browsed_products=("P3", "P1"))
    tokyo = dataclasses.replace(paris, timezone=TOKYO)
    assert (stock.unavailable(paris), stock.unavailable(tokyo)) == ({"P3"}, set())
    assert stock.sellable(paris).browsed_products == ("P1",)
    stock.set("P1", 0)
    assert stock.unavailable(paris) == {"P1", "P3"}
    assert stock.sellable(tokyo).browsed_products == ("P3",)


def test_a_teaser_view_of_an_unlaunched_product_is_no_browse_reminder(launching: Shop) -> None:
    """A customer looked at the jacket's teaser page for five minutes the evening before
    its launch: no "still thinking about it?" for what cannot be bought yet; the shirt
    they also looked at is reminded alone."""
    now = local(PARIS, "2026-03-04 19:00")
    customer = launching.signup(now - dt.timedelta(days=40), consents=("email", "push"))
    views = [
        event(customer, now - dt.timedelta(minutes=30 - m), "product_view", "P3") for m in range(5)
    ]
    launching.post(*views)
    answer = launching.decide(customer, now, actions=["browse_reminder_evening"])
    assert contacts(answer) == []
    assert codes(answer, "browse_reminder_evening") == ["not_eligible"]
    launching.post(event(customer, now - dt.timedelta(minutes=20), "product_view", "P2"))
    chosen = the_action(launching.decide(customer, now, actions=["browse_reminder_evening"]))
    assert chosen["action_id"] == "browse_reminder_evening"
    assert chosen["products"] == ["P2"]


# ---------------------------------------------------------------- offers

#: A marketer's catalog: a flash sale of one a day, a spring sale by e-mail only (until
#: Thursday midnight in Paris), an early-access offer from Thursday, a gift that costs
#: more than it earns, and a plain newsletter to fall back on.
OFFERS_CATALOG = """
version: 1
actions:
  - id: flash_sale
    type: offer
    description: Five off one item, one customer a day.
    channels: [email]
    eligibility: purchases_total >= 1
    value: 20
    ttl_hours: 48
    cooldown_hours: 336
    template: flash_sale
    # fixed amounts here (their cost is the catalog's): a percent discount costs its share
    # of the order it is redeemed on (nba.redemption.redemption_cost); these tests are
    # about budgets, channels and dates
    offer: {id: flash5, kind: fixed_discount, value: 5, cost: 1.0, daily_budget: 1}
  - id: spring_sale
    type: offer
    description: Five off the spring range, by e-mail only.
    channels: [email, sms]
    eligibility: purchases_total >= 1
    value: 20
    ttl_hours: 48
    cooldown_hours: 336
    template: spring_sale
    offer:
      id: spring5
      kind: fixed_discount
      value: 5
      cost: 1.0
      channels: [email]
      valid_from: 2026-03-02T00:00:00+01:00
      valid_to: 2026-03-06T00:00:00+01:00
  - id: early_access
    type: offer
    description: Early access to the summer range, from Thursday.
    channels: [email]
    eligibility: purchases_total >= 1
    value: 20
    ttl_hours: 48
    cooldown_hours: 336
    template: early_access
    offer:
      id: summer_early
      kind: free_shipping
      value: 0
      cost: 1.0
      valid_from: 2026-03-05T00:00:00+01:00
      valid_to: 2026-03-20T00:00:00+01:00
  - id: costly_gift
    type: offer
    description: A gift that costs more than the order it buys.
    channels: [email]
    eligibility: purchases_total >= 1
    value: 10
    ttl_hours: 48
    cooldown_hours: 336
    template: gift
    offer: {id: gift30, kind: fixed_discount, value: 30, cost: 30.0}
  - id: newsletter
    type: content
    description: The weekly newsletter.
    channels: [email, sms]
    eligibility: "true"
    value: 8
    ttl_hours: 48
    cooldown_hours: 168
    template: newsletter
  - id: do_nothing
    type: do_nothing
    description: Send nothing.
    value: 0.01
"""


@pytest.fixture(scope="module")
def marketer(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app with :data:`OFFERS_CATALOG` as its catalog."""
    root: Path = tmp_path_factory.mktemp("scenarios_offers")
    catalog = root / "catalog.yaml"
    catalog.write_text(OFFERS_CATALOG)
    with open_shop(
        base, root, redis_client(root), f"offers{uuid.uuid4().hex[:8]}", catalog_path=catalog
    ) as opened:
        yield opened


def promotion_lover(shop: Shop, at: dt.datetime, consents: tuple[str, ...] = ("email",)) -> str:
    """A customer whose four orders last autumn all used an offer."""
    customer = shop.signup(at - dt.timedelta(days=300), consents=consents)
    shop.post(
        *(
            event(customer, local(PARIS, f"2025-{m:02d}-05 18:00"), "purchase", "P2", offer_id="O2")
            for m in (9, 10, 11, 12)
        )
    )
    return customer


def test_an_exhausted_budget_gives_the_next_customer_the_next_best_action(
    marketer: Shop,
) -> None:
    """The flash sale's budget is one a day: the first promotion lover of the day gets
    it; the second, an hour later, gets the newsletter and the reason says the budget is
    spent; the next day the budget is back for them."""
    now = local(PARIS, "2026-03-04 10:00")
    first, second = promotion_lover(marketer, now), promotion_lover(marketer, now)
    asked = ["flash_sale", "newsletter"]
    chosen = the_action(marketer.decide(first, now, actions=asked))
    assert (chosen["action_id"], chosen["offer_id"]) == ("flash_sale", "flash5")
    answer = marketer.decide(second, now + dt.timedelta(hours=1), actions=asked)
    assert best_of(answer) == "newsletter"
    assert codes(answer, "flash_sale") == ["budget_exhausted"]
    assert "'flash5': 1 given today, the daily budget is 1" in message(answer, "flash_sale")
    tomorrow = the_action(marketer.decide(second, now + dt.timedelta(days=1), actions=asked))
    assert (tomorrow["action_id"], tomorrow["offer_id"]) == ("flash_sale", "flash5")


def test_an_offer_restricted_to_email_never_goes_by_sms(marketer: Shop) -> None:
    """The spring sale may go by e-mail only (the offer's channels), though its action
    lists SMS: a customer who consented to SMS alone gets the newsletter by SMS, and the
    sale's reason says why not by SMS."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = promotion_lover(marketer, now, consents=("sms",))
    answer = marketer.decide(customer, now, actions=["spring_sale", "newsletter"])
    assert best_of(answer) == "newsletter"
    assert [a["channel"] for a in contacts(answer)] in ([], ["sms"])
    assert all(a["offer_id"] is None for a in answer["actions"])
    assert codes(answer, "spring_sale") == ["no_consent"]  # e-mail: its only channel
    assert "email" in message(answer, "spring_sale")


def test_an_offer_starting_tomorrow_waits_and_one_that_ended_never_goes(marketer: Shop) -> None:
    """Early access opens on Thursday (Paris): on Wednesday it is refused, the reason
    giving its dates; on Thursday it goes. The spring sale ended at Thursday midnight:
    on Friday it is refused the same way, never scheduled."""
    wednesday = local(PARIS, "2026-03-04 10:00")
    customer = promotion_lover(marketer, wednesday)
    answer = marketer.decide(customer, wednesday, actions=["early_access"])
    assert contacts(answer) == [] and codes(answer, "early_access") == ["outside_validity"]
    assert "valid from 2026-03-05T00:00:00+01:00" in message(answer, "early_access")
    thursday = local(PARIS, "2026-03-05 09:00")
    chosen = the_action(marketer.decide(customer, thursday, actions=["early_access"]))
    assert (chosen["action_id"], chosen["offer_id"]) == ("early_access", "summer_early")
    assert send_utc(chosen) >= thursday
    friday = local(PARIS, "2026-03-06 09:00")
    late = marketer.decide(promotion_lover(marketer, friday), friday, actions=["spring_sale"])
    assert contacts(late) == [] and codes(late, "spring_sale") == ["outside_validity"]
    assert "until 2026-03-06T00:00:00+01:00" in message(late, "spring_sale")


def test_an_offer_on_its_last_evening_is_sent_before_it_ends_or_not_at_all(
    marketer: Shop,
) -> None:
    """Thursday 21:00 in Paris, the sale ends at midnight: the e-mail goes now, before
    then, never at a later best hour after the offer."""
    evening = local(PARIS, "2026-03-05 21:00")
    customer = promotion_lover(marketer, evening)
    chosen = the_action(marketer.decide(customer, evening, actions=["spring_sale"]))
    assert (chosen["action_id"], chosen["channel"]) == ("spring_sale", "email")
    assert send_utc(chosen) == evening  # now, before midnight


def test_an_offer_on_its_last_day_is_not_deferred_past_its_end_by_a_cap(
    marketer: Shop,
) -> None:
    """Thursday 10:00, the sale's last day: the customer's e-mail of the day went at
    09:00, so the e-mail cap frees on Friday, after the sale: the sale is not scheduled
    then (the reason says why), and a customer without that e-mail gets it today."""
    now = local(PARIS, "2026-03-05 10:00")
    capped = promotion_lover(marketer, now)
    marketer.post(event(capped, now - dt.timedelta(hours=1), "message_sent", channel="email"))
    answer = marketer.decide(capped, now, actions=["spring_sale"])
    assert contacts(answer) == [], answer["actions"]
    assert codes(answer, "spring_sale") != []
    free = promotion_lover(marketer, now)
    chosen = the_action(marketer.decide(free, now, actions=["spring_sale"]))
    assert (chosen["action_id"], chosen["channel"]) == ("spring_sale", "email")
    assert now <= send_utc(chosen) <= local(PARIS, "2026-03-06 00:00")


def test_an_offer_that_costs_more_than_it_earns_is_never_given(marketer: Shop) -> None:
    """A 30-euro gift on a 10-euro response: the newsletter goes, never the gift, and the
    gift's reason says that its cost is not paid."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = promotion_lover(marketer, now)
    answer = marketer.decide(customer, now, actions=["costly_gift", "newsletter"])
    assert the_action(answer)["action_id"] == "newsletter"
    assert codes(answer, "costly_gift") == ["lost_arbitration"]
    assert "30 per redemption x P(response)" in message(answer, "costly_gift")
    assert "exceed what it earns" in message(answer, "costly_gift")


# ---------------------------------------------------------------- experiments


def experiment_text() -> str:
    """The example experiment a marketer edits (engine, journeys and a 10 % holdout in
    March 2026), with a random arm added and a fifth of customers held out."""
    spec = yaml.safe_load((EXAMPLES / "experiment.yaml").read_text())
    spec["arms"] = [
        {"name": "engine", "kind": "champion", "allocation": 0.4},
        {"name": "journeys", "kind": "rule_based", "allocation": 0.3},
        {"name": "explore", "kind": "random", "allocation": 0.1},
        {"name": "holdout", "kind": "control", "allocation": 0.2},
    ]
    return str(yaml.safe_dump(spec))


@dataclasses.dataclass
class Trial:
    """Two API replicas running :func:`experiment_text` on one Redis, and its
    configuration."""

    replicas: tuple[Shop, Shop]
    config: ExperimentConfig
    #: each replica's data directory (its decision log and event archive)
    roots: tuple[Path, Path]

    def customer_in(self, arm: str, at: dt.datetime, **signup: Any) -> str:
        """A new customer (signed up at ``at``) whom the experiment puts in ``arm``."""
        for _ in range(200):
            customer = self.replicas[0].signup(at, **signup)
            if self.config.assign(customer).name == arm:
                return customer
        raise AssertionError(f"no customer landed in {arm} in 200 sign-ups")


@pytest.fixture(scope="module")
def trial(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trial]:
    roots = (tmp_path_factory.mktemp("experiment_a"), tmp_path_factory.mktemp("experiment_b"))
    path, text = roots[0] / "experiment.yaml", experiment_text()
    path.write_text(text)
    client, prefix = redis_client(roots[0]), f"exp{uuid.uuid4().hex[:8]}"
    with (
        open_shop(base, roots[0], client, prefix, experiment_path=path) as one,
        open_shop(base, roots[1], client, prefix, experiment_path=path) as two,
    ):
        yield Trial((one, two), parse_experiment_text(text), roots)


def cart_left(shop: Shop, customer: str, at: dt.datetime) -> None:
    shop.post(
        event(customer, at - dt.timedelta(minutes=5), "product_view", "P1"),
        event(customer, at, "add_to_cart", "P1"),
    )


def test_the_control_group_gets_nothing_and_nothing_is_counted(trial: Trial) -> None:
    """A holdout customer leaves a cart: the answer is "do nothing", marked with the arm
    and saying why; nothing is recorded as sent, so once the experiment has ended the
    same customer gets the cart reminder at once, by the channel the holdout never used."""
    added = local(PARIS, "2026-03-30 16:00")
    one, two = trial.replicas
    customer = trial.customer_in("holdout", added - dt.timedelta(days=30), consents=("email",))
    cart_left(one, customer, added)
    for replica in (one, two):
        answer = replica.decide(customer, added + dt.timedelta(hours=1))
        assert answer["arm"] == "holdout"
        chosen = the_action(answer)
        assert (chosen["action_id"], chosen["channel"]) == ("do_nothing", None)
        assert answer["policy"] == "control"
        assert "not_eligible" in codes(answer, "cart_reminder_1")  # on e-mail
        assert "control group" in message(answer, "cart_reminder_1")
    seen = one.api.get(
        f"/v1/customers/{customer}/profile",
        params={"as_of": (added + dt.timedelta(hours=2)).isoformat()},
        headers=one.headers,
    ).json()
    assert seen["action_history"] == {}
    after = local(PARIS, "2026-03-31 08:00")  # the experiment is over
    answer = two.decide(customer, after)
    assert answer["arm"] is None
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert send_utc(chosen) == after  # no e-mail of the day counted for the holdout


def test_arms_are_the_same_on_every_replica_and_answer_as_their_arm(trial: Trial) -> None:
    """Each customer's arm is their hash's, on either replica and on every call; the
    journeys arm answers with the rule-based journeys, the random arm with a random
    eligible action, the engine with the engine, the holdout with nothing: a fresh cart
    gets a cart reminder from the engine and the journeys."""
    added = local(PARIS, "2026-03-11 15:00")
    one, two = trial.replicas
    policies: dict[str, set[str]] = {}
    for arm in ("engine", "journeys", "explore", "holdout"):
        customer = trial.customer_in(arm, added - dt.timedelta(days=30), consents=("email",))
        cart_left(one, customer, added)
        answers = [r.decide(customer, added + dt.timedelta(hours=1)) for r in (one, two, one)]
        assert {a["arm"] for a in answers} == {arm}
        policies[arm] = {a["policy"] for a in answers}
        if arm in ("engine", "journeys"):
            assert the_action(answers[0])["action_id"] == "cart_reminder_1"
    assert policies == {
        "engine": {"nba"},
        "journeys": {"rules"},
        "explore": {"random"},
        "holdout": {"control"},
    }


def test_a_purchase_answering_a_message_is_credited_to_its_arm(trial: Trial) -> None:
    """The engine's cart reminder is sent (reported with its decision id) and the cart
    bought through it an hour later; a holdout customer buys on their own. Attributing
    the replicas' decision logs and event archives credits the engine arm with the
    purchase, and leaves the holdout's organic."""
    added = local(PARIS, "2026-03-18 15:00")
    one, two = trial.replicas
    treated = trial.customer_in("engine", added - dt.timedelta(days=30), consents=("email",))
    held = trial.customer_in("holdout", added - dt.timedelta(days=30), consents=("email",))
    for customer in (treated, held):
        cart_left(one, customer, added)
    now = added + dt.timedelta(hours=1)
    answer = two.decide(treated, now)
    chosen = the_action(answer)
    assert (answer["arm"], chosen["action_id"]) == ("engine", "cart_reminder_1")
    decision = answer["decision_id"]
    sent = send_utc(chosen)
    two.post(
        event(treated, sent, "message_sent", channel="email", decision_id=decision),
        event(treated, sent + dt.timedelta(hours=1), "purchase", "P1", decision_id=decision),
    )
    assert the_action(one.decide(held, now))["action_id"] == "do_nothing"
    one.post(event(held, now + dt.timedelta(hours=1), "purchase", "P1"))
    logged = pd.concat([read_decision_log(r / "decision-log") for r in trial.roots])
    archived = pd.concat([read_archive(r / "archive") for r in trial.roots])
    credit = attribute(exposures_of(logged), archived, window=trial.config.attribution_window)
    bought = credit[credit["event_type"] == "purchase"]
    assert bought["customer_id"].tolist() == [treated]
    [row] = bought.to_dict("records")
    assert (row["arm"], row["decision_id"], row["action_id"]) == (
        "engine",
        decision,
        "cart_reminder_1",
    )
    assert row["revenue"] == pytest.approx(59.9)


# ---------------------------------------------------------------- postal mail, call centre


#: Four Friday mornings of last summer.
FRIDAYS = ("2025-05-09 11:00", "2025-06-13 11:00", "2025-07-11 11:00", "2025-08-08 11:00")


def lapsed(shop: Shop, at: dt.datetime, basket: float, consents: tuple[str, ...]) -> str:
    """A customer of four orders of ``basket`` on :data:`FRIDAYS`, nothing since (lapsed;
    their most active hour: Friday 11:00)."""
    customer = shop.signup(at - dt.timedelta(days=400), consents=consents)
    shop.post(*(purchase(customer, local(PARIS, day), revenue=basket) for day in FRIDAYS))
    return customer


def test_a_letter_goes_only_where_its_value_pays_for_it(shop: Shop) -> None:
    """Two lapsed customers reachable by post alone: the one of 600-euro baskets gets the
    "we miss you" letter within its four days; for the one of 60-euro baskets a letter costs
    more than it earns, so nothing goes and the reason says so."""
    now = local(PARIS, "2026-03-04 10:00")
    rich = lapsed(shop, now, 600.0, ("postal",))
    chosen = shop.first_contact(rich, now)
    assert (chosen["action_id"], chosen["channel"]) == ("reactivation", "postal")
    assert now <= send_utc(chosen) <= now + dt.timedelta(hours=96)
    modest = lapsed(shop, now, 59.9, ("postal",))
    answer = shop.decide(modest, now)
    assert contacts(answer) == []
    assert "its costs (0.9 a send) exceed what it earns" in message(answer, "reactivation")


@pytest.mark.parametrize(
    "asked",
    [
        "2026-04-30 20:30",  # Thursday evening; their Friday 11:00 is 1 May, a holiday
        "2026-03-07 11:00",  # Saturday
        "2026-03-04 13:15",  # Wednesday, the lunch break
    ],
)
def test_the_call_centre_calls_only_in_its_working_hours(shop: Shop, asked: str) -> None:
    """A lapsed customer of 600-euro baskets who accepts calls only, most active on
    Friday mornings: the win-back call is scheduled in the call centre's hours (weekdays
    10:00-13:00 and 14:00-20:00 local, never on a public holiday), within its five days,
    whenever it is asked."""
    now = local(PARIS, asked)
    customer = lapsed(shop, now, 600.0, ("call_centre",))
    chosen = shop.first_contact(customer, now)
    assert (chosen["action_id"], chosen["channel"]) == ("reactivation_call", "call_centre")
    at = send_local(chosen)
    assert at.weekday() < 5 and at.date() != dt.date(2026, 5, 1)
    assert dt.time(10) <= at.time() < dt.time(13) or dt.time(14) <= at.time() < dt.time(20)
    assert now <= send_utc(chosen) <= now + dt.timedelta(hours=120)


# ---------------------------------------------------------------- bad input


def test_a_data_set_names_every_bad_row_at_once_unknown_references_included(
    write_dataset: WriteDataset,
) -> None:
    """An events file with a replayed row (a duplicate id) and a cart add naming a
    customer, a product and an offer that no table lists: every problem comes at once,
    file, row and field. Misfire: the unknown references were checked only once the
    events file had no other problem, so a user fixing the duplicate met them in a
    second round."""
    extra = "E5,C3,2026-03-07T10:00:00Z,web,add_to_cart,P9,O7,,1,,\n"
    extra += "E3,C1,2026-03-07T11:00:00Z,web,purchase,P1,,,1,50,\n"
    folder = write_dataset(events=EVENTS_CSV + extra)
    with pytest.raises(DataContractError) as info:
        load_dataset(folder)
    problems = [str(p) for p in info.value.problems]
    assert problems == [
        "events.csv: row 6, field 'event_id': duplicate event_id (each must be unique)",
        "events.csv: row 5, field 'customer_id': unknown customer (not in the customers "
        "table), e.g. 'C3'",
        "events.csv: row 5, field 'product_id': unknown product (not in the products "
        "table), e.g. 'P9'",
        "events.csv: row 5, field 'offer_id': unknown offer (not in the offers table), e.g. 'O7'",
    ]


def test_a_data_set_without_a_key_column_is_not_a_flood_of_unknown_references(
    write_dataset: WriteDataset,
) -> None:
    """A customers file without its ``customer_id`` column says so, once: not also every
    event's customer unknown."""
    lines = CUSTOMERS_CSV.splitlines()
    without_ids = "\n".join(line.split(",", 1)[1] for line in lines) + "\n"
    with pytest.raises(DataContractError) as info:
        load_dataset(write_dataset(customers=without_ids))
    assert [str(p) for p in info.value.problems] == [
        "customers.csv: field 'customer_id': required column is missing"
    ]


# ---------------------------------------------------------------- explanations


def test_every_action_not_chosen_has_a_reason_a_marketer_can_read(shop: Shop) -> None:
    """A busy moment (a cart two hours old, a birthday in three days, an order last week,
    three channels consented): the answer names every action of the catalog once, chosen
    or refused; each refusal has a known code and a sentence, each lost one names the
    winner; the chosen one says why this channel (the others' priorities) and why this
    time."""
    now = local(PARIS, "2026-04-09 15:00")
    customer = shop.signup(
        now - dt.timedelta(days=200),
        consents=("email", "push", "sms"),
        birthday=dt.date(1990, 4, 12),
    )
    shop.post(
        purchase(customer, now - dt.timedelta(days=6), "P2", 39.9),
        event(customer, now - dt.timedelta(hours=2), "add_to_cart", "P1"),
    )
    answer = shop.decide(customer, now)
    chosen = the_action(answer)
    catalog = [a.id for a in load_catalog(None)]
    named = [chosen["action_id"]] + [r["action_id"] for r in answer["rejected"]]
    assert sorted(named) == sorted(catalog)  # each once
    known = {c.value for c in ReasonCode}
    for refusal in answer["rejected"]:
        assert refusal["code"] in known and len(refusal["message"]) > 10, refusal
        if refusal["code"] == "lost_arbitration":
            assert f"{chosen['action_id']} was picked" in refusal["message"]
    assert chosen["action_id"] == "cart_reminder_1"
    [why_channel] = [r for r in chosen["reasons"] if r.startswith("channel: ")]
    assert all(f"on {c}" in why_channel for c in ("email", "sms")), why_channel
    [why_time] = [r for r in chosen["reasons"] if r.startswith("send_time: ")]
    assert "Thu 2026-04-09 15:00 local" in why_time
    # the birthday lost on e-mail and on SMS: one entry, each channel's reason (it used
    # to be two entries without their channel)
    assert codes(answer, "birthday") == ["lost_arbitration"] * 2
    assert message(answer, "birthday").startswith("email: lost_arbitration (")
    assert "; sms: lost_arbitration (" in message(answer, "birthday")
    assert "kept sms free for cart_reminder_1" in message(answer, "birthday")


def test_a_session_on_an_outbound_channel_is_a_422_in_plain_words(shop: Shop) -> None:
    """A front end describing its visit as an e-mail session gets a 422 naming the field
    and the two values it takes, in the words of the request (it used to print Python's
    ``<Channel.WEB: 'web'>``)."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = shop.signup(now - dt.timedelta(days=20))
    response = shop.api.post(
        "/v1/decisions",
        json={"customer_id": customer, "context": {"session": {"channel": "email"}}},
        headers=shop.headers,
    )
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail == {
        "loc": ["body", "context", "session", "channel"],
        "message": "Input should be 'web' or 'app'",
    }
