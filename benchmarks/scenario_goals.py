"""Issue 12, item 2: do the playbook's scenarios fire on a simulated retailer?

Simulates a retailer, builds every profile at the end of its history with the
real feature code, decides with the example catalog and contact policy through
:func:`nba.pipeline.build_pipeline`, and prints:

* fresh carts: customers with a cart 1-12 h old and a consented outbound
  channel, the share whose decision is a cart reminder due within 12 h, and how
  many others get it later (when a spent daily cap frees); the same among those whose
  consented channels the contact policy lets send within 12 h (a campaign e-mail that
  spent the day's cap counts, though the engine did not decide it);
* birthdays: customers consented on a birthday channel whose birthday is 0-7 days away, and the
  share who get the birthday action (the others' winning action is listed);
* channels chosen per action, and seasonal months detected against the truth
  (precision and recall over (customer, month) pairs, on ``--days`` of history).

``--decide-at`` decides at an earlier moment of the history (what is known then), e.g.
the evening before a campaign day.

Run: ``PYTHONPATH=. python benchmarks/scenario_goals.py --customers 5000 --days 90``
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import statistics
from pathlib import Path

import pandas as pd

from features.batch import build_profiles
from features.dataset import RetailDataset
from features.seasonality import MIN_KNOWN_MONTHS
from nba.budgets import UsageCounts
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy, parse_contact_policy
from nba.context import CustomerContext
from nba.decision import Decision
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile
from nba.screening import screen
from simulator import SimulatorConfig, simulate

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"
OUTBOUND = (Channel.EMAIL, Channel.SMS, Channel.PUSH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--decide-at",
        type=_utc,
        default=None,
        help="decide at this UTC moment of the history (ISO, e.g. 2028-01-03T20:00), "
        "with what is known then; default: the end of the history",
    )
    args = parser.parse_args()
    sim = simulate(SimulatorConfig(n_customers=args.customers, days=args.days, seed=args.seed))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    end = data.events["timestamp"].max()
    if args.decide_at is not None and not sim.config.start <= args.decide_at <= end:
        parser.error(
            f"--decide-at {args.decide_at:%Y-%m-%d %H:%M} is outside the simulated history "
            f"({sim.config.start:%Y-%m-%d} to {end:%Y-%m-%d %H:%M} UTC)"
        )
    build = build_profiles(data, as_of=args.decide_at, workers=1)
    now = build.as_of
    catalog = parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())
    policy = parse_contact_policy((EXAMPLES / "contact_policy.yaml").read_text())
    pipeline = build_pipeline(catalog, policy)
    # the action history: the campaign sends of the simulated past are not catalog
    # actions, so every customer starts without one
    carts = carts_ok = carts_later = births = births_ok = 0
    reachable = reachable_ok = 0  # carts with a consented channel free within 12 h
    lost_birthday: collections.Counter[str] = collections.Counter()
    cart_misses: list[str] = []
    email_priorities: dict[bool, list[float]] = {True: [], False: []}
    channels: collections.Counter[tuple[str, str]] = collections.Counter()
    chosen: collections.Counter[str] = collections.Counter()
    for profile in build.profiles:
        decision = pipeline.route(CustomerContext(profile, now), seed=profile.customer_id).decision
        first = decision.actions[0]
        chosen[first.action_id] += 1
        if first.channel is Channel.EMAIL:
            email_priorities[first.action_type.value == "cart_reminder"].append(first.priority)
        if first.channel is not None:
            channels[(first.action_id, first.channel.value)] += 1
        consented = any(profile.consented(c) for c in OUTBOUND)
        age = profile.cart_age_hours
        if profile.cart_items and age is not None and 1 <= age <= 12 and consented:
            carts += 1
            due = first.send_at is not None and first.send_at - now <= dt.timedelta(hours=12)
            reminded = first.action_type.value == "cart_reminder"
            carts_ok += reminded and due
            carts_later += reminded and not due
            if reachable_within(catalog, policy, CustomerContext(profile, now), 12.0):
                reachable += 1
                reachable_ok += reminded and due
            if not (reminded and due):
                cart_misses.append(_miss(profile, decision, now))
        birthday = profile.days_to_birthday
        birthday_consent = any(profile.consented(c) for c in catalog["birthday"].channels)
        if birthday is not None and 0 <= birthday <= 7 and birthday_consent:
            births += 1
            if first.action_id == "birthday":
                births_ok += 1
            else:
                lost_birthday[first.action_id] += 1
    print(f"decided {len(build.profiles)} customers at {now:%Y-%m-%d %H:%M} UTC")
    print(
        f"fresh carts (1-12 h, consented): {carts}, reminded within 12 h: {carts_ok}"
        f" ({carts_ok / max(carts, 1):.0%}); reminded later (a spent cap frees): {carts_later}"
    )
    print(
        f"  of which a consented channel may send a cart reminder within 12 h (consent, "
        f"caps incl. contacts the engine did not decide, quiet hours): {reachable}, "
        f"reminded within 12 h: {reachable_ok} ({reachable_ok / max(reachable, 1):.0%})"
    )
    for miss in cart_misses:
        print("  missed:", miss)
    reserve_arithmetic(carts, len(build.profiles), email_priorities)
    print(
        f"birthday in 0-7 days (consented): {births}, birthday chosen: {births_ok}"
        f" ({births_ok / max(births, 1):.0%}); otherwise: {dict(lost_birthday)}"
    )
    print("actions chosen:", dict(chosen.most_common()))
    print("channels:", dict(sorted(channels.items())))
    seasonal_scores(sim, build.profiles)
    print("store's month factors:", [round(f, 2) for f in build.priors.month_activity])


def _utc(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def reachable_within(
    catalog: Catalog, policy: ContactPolicy, context: CustomerContext, hours: float
) -> bool:
    """Whether a cart reminder has a slot due within ``hours``: a consented channel that
    the contact policy (caps, whoever spent them; gaps; quiet hours) lets send by then."""
    limit = context.now_utc + dt.timedelta(hours=hours)
    return any(
        slot.send.at <= limit
        for candidate in screen(catalog, policy, context, UsageCounts()).candidates
        if candidate.action.type.value == "cart_reminder"
        for slot in candidate.slots
    )


def reserve_arithmetic(carts: int, customers: int, priorities: dict[bool, list[float]]) -> None:
    """What keeping the day's e-mail free for a cart that may come would earn: the chance
    of a fresh cart in the next 24 h (twice the 1-12 h window's share) times a reminder's
    priority, against the priority of the e-mail it would hold back."""
    other, cart = priorities[False], priorities[True]
    if not other or not cart:
        return
    chance = 2 * carts / customers
    print(
        f"reserving the e-mail cap for a cart: P(fresh cart within 24 h) ~ {chance:.2%} x "
        f"median reminder priority {statistics.median(cart):.3g} = "
        f"{chance * statistics.median(cart):.3g}, against the median e-mail it holds back "
        f"{statistics.median(other):.3g}"
    )


def _miss(profile: CustomerProfile, decision: Decision, now: dt.datetime) -> str:
    """One line on a fresh cart without a reminder due within 12 h: what was chosen,
    when, with which priority and on what basis, and what the reminder's channels say."""
    first = decision.actions[0]
    due = "" if first.send_at is None else f" due {first.send_at - now}"
    consents = ",".join(c.value for c in OUTBOUND if profile.consented(c))
    why = "; ".join(
        f"{r.channel.value if r.channel else '-'}: {r.code.value} ({r.message})"
        for r in decision.rejections
        if r.action_id.startswith("cart_reminder")
    )
    return (
        f"{profile.customer_id} cart {profile.cart_age_hours:.1f} h, consents {consents}: "
        f"{first.action_id}{due} priority {first.priority:.3g} ({first.timing_basis}; "
        f"{'explored' if first.explored else 'greedy'}); reminder: {why or 'no rejection'}"
    )


def seasonal_scores(sim, profiles) -> None:  # type: ignore[no-untyped-def]
    truth = sim.truth.customers.set_index("customer_id")
    true_pairs = {
        (cid, int(m))
        for cid, row in truth.iterrows()
        for m in (row["season_month_1"], row["season_month_2"])
        if not pd.isna(m)
    }
    found = {(p.customer_id, m) for p in profiles for m in p.seasonal_months}
    hit = len(true_pairs & found)
    seasonal_ids = {c for c, _ in true_pairs}
    flagged = {p.customer_id for p in profiles if p.seasonal_months}
    if not found:  # a precision of nothing found is undefined, not 0
        print(
            f"seasonal months: none detected ({len(true_pairs)} true): a customer known for "
            f"less than {MIN_KNOWN_MONTHS:g} months has no season of the year yet "
            "(features.seasonality); the goal is measured on a 2-year history (--days 730)"
        )
        return
    print(
        f"seasonal months: precision {hit / max(len(found), 1):.2f}, recall "
        f"{hit / max(len(true_pairs), 1):.2f} ({len(found)} detected, {len(true_pairs)} true); "
        f"seasonal customers flagged {len(flagged & seasonal_ids)}/{len(seasonal_ids)}, "
        f"non-seasonal flagged {len(flagged - seasonal_ids)}/{len(truth) - len(seasonal_ids)}"
    )


if __name__ == "__main__":
    main()
