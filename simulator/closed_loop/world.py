"""The world a closed loop runs in: simulated history, profiles at the cut, the truth.

:func:`build_world` simulates ``history_days + days`` days of a retailer and
cuts at ``history_days``:

* before the cut, everything happened as simulated (the retailer's historical
  campaigns included); profiles are built from it in batch, as of the cut;
* after the cut, only the customers' own behaviour is kept (browsing, carts,
  purchases, deliveries, store visits, reviews: the *background*), the same for
  every policy; the simulator's campaigns and their consent changes are dropped,
  since the policies now decide who hears what. Customers keep the small
  organic effects of those dropped campaigns (a click's visit), identical
  across policies.

The audience is every customer known at the cut. With ``playbook`` (the
world in which the playbook's every scenario is exercised), it is joined by
the customers who sign up during the horizon (*arrivals*), each from their
sign-up on: their background includes their sign-up opt-ins (``opt_in``
events, from which the loop and the checker learn their consent); the
customers table, which gives consent only as its final state, is not used for
them. The playbook world also places the cut on ``ClosedLoopConfig.cut``
whatever the history's length (the example catalog's spring launch runs in
March and April), launches a new collection ``launch_after_days`` into the
horizon, keeps customer acquisition at the simulator's default pace per
quarter, and answers with the sourced relevance cap
(:data:`~simulator.config.SOURCED_MAX_AFFINITY`); see
:meth:`ClosedLoopConfig.simulator_config`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.batch import ProfileBuild, build_profiles, statics_of
from features.dataset import RetailDataset
from features.finalise import CustomerStatic
from features.offer_rows import offers_by_id
from nba.catalog import Catalog, parse_catalog
from nba.channels import CONSENT_CHANNELS, Channel
from nba.contact_policy import ContactPolicy, parse_contact_policy
from nba.events import REFUSAL_EVENTS, EventType
from nba.offer_table import apply_offer_table
from simulator import ResponseModel, SimulatedRetailer, SimulatorConfig, simulate
from simulator.closed_loop.mapping import MessageMapping, with_catalog_offers
from simulator.closed_loop.truth import TrueValue
from simulator.config import SOURCED_MAX_AFFINITY, ResponseConstants
from simulator.world import TIERS, tier_of

EXAMPLES = Path(__file__).resolve().parents[2] / "nba" / "examples"

#: Event types of the customers' own behaviour, replayed after the cut for every policy.
BACKGROUND_EVENTS: frozenset[str] = frozenset(
    e.value
    for e in (
        EventType.PRODUCT_VIEW,
        EventType.SEARCH,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.CHECKOUT_STARTED,
        EventType.PURCHASE,
        EventType.ORDER_DELIVERED,
        EventType.CLICK_COLLECT_PICKUP,
        EventType.STORE_VISIT,
        EventType.REVIEW,
        EventType.COUPON_REDEEMED,
        EventType.WALLET_PASS_ADDED,
        EventType.LOYALTY_TIER_REACHED,
    )
)
_WITHDRAW = frozenset(
    {EventType.UNSUBSCRIBE.value, EventType.COMPLAINT.value, EventType.SMS_STOP.value}
)
_REFUSAL = frozenset(e.value for e in REFUSAL_EVENTS)
#: Default cut: the horizon opens in the example catalog's spring launch window.
CUT = dt.datetime(2026, 3, 6, tzinfo=dt.UTC)
QUARTER_DAYS = 90


@dataclass(frozen=True)
class ClosedLoopConfig:
    """What a closed-loop run depends on: the same config gives the same results.

    Decisions are made every ``trigger_every_hours`` for customers whose
    background showed activity since the previous tick, and once a day at
    ``decision_hour_utc`` for everyone. A customer with a message scheduled or
    sent less than ``outcome_hours`` ago waits (a journey tool keeps one
    message in flight per customer).
    """

    n_customers: int = 3000
    history_days: int = 60
    days: int = 21
    seed: int = 0
    n_products: int = 1000
    playbook: bool = False  # the playbook world (see the module doc)
    cut: dt.datetime = CUT
    launch_after_days: int = 3
    acquisition_per_quarter: float = 0.10  # sign-ups per 90 days, share of the base
    decision_hour_utc: int = 6
    trigger_every_hours: int = 3
    outcome_hours: float = 3.0
    purchase_delay_hours: float = 2.0
    delivery_days: float = 3.0

    def __post_init__(self) -> None:
        for name, minimum in (("n_customers", 1), ("history_days", 14), ("days", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
        if not 1 <= self.trigger_every_hours <= 24 or 24 % self.trigger_every_hours:
            raise ValueError("trigger_every_hours must divide 24")
        if (
            self.decision_hour_utc % self.trigger_every_hours
            or not 0 <= self.decision_hour_utc < 24
        ):
            raise ValueError("decision_hour_utc must be a tick: a multiple of trigger_every_hours")
        if not self.purchase_delay_hours < self.outcome_hours:
            raise ValueError("purchase_delay_hours must be shorter than outcome_hours")
        if not 0 <= self.acquisition_per_quarter <= 1:
            raise ValueError(
                f"acquisition_per_quarter must be in [0, 1] (got {self.acquisition_per_quarter})"
            )
        if not isinstance(self.launch_after_days, int) or self.launch_after_days < 0:
            raise ValueError(
                f"launch_after_days must be an integer >= 0 (got {self.launch_after_days!r})"
            )

    def simulator_config(self) -> SimulatorConfig:
        """The simulator's defaults over ``history_days + days``; in the playbook world,
        the window ends ``days`` after ``cut``; new collections launch in the
        middle of the history and ``launch_after_days`` into the horizon (on its last day
        if it is shorter); customers join
        during the window at ``acquisition_per_quarter`` of the base per 90 days (the
        simulator's default share over its default 90 days), at most half the base."""
        days = self.history_days + self.days
        if not self.playbook:
            return SimulatorConfig(
                n_customers=self.n_customers, days=days, seed=self.seed, n_products=self.n_products
            )
        return SimulatorConfig(
            n_customers=self.n_customers,
            days=days,
            seed=self.seed,
            start=self.cut - dt.timedelta(days=self.history_days),
            n_products=self.n_products,
            new_collection_days=(
                self.history_days // 2,
                self.history_days + min(self.launch_after_days, self.days - 1),
            ),
            new_customer_share=min(0.5, self.acquisition_per_quarter * days / QUARTER_DAYS),
            response=ResponseConstants(max_affinity=SOURCED_MAX_AFFINITY),
        )


@dataclass(frozen=True, eq=False)
class ClosedLoopWorld:
    """Everything the policies share: profiles at the cut, background, truth, rules.

    ``consent`` is each customer's set of opted-in consent channels at the cut,
    read from the raw customers table and events (not from the profiles), for
    the independent violation checker. ``history_contacts`` are the messages of
    the 30 days before the cut (``customer_id``, ``channel``, ``sent_at``) and
    ``refusals`` the last refusal or complaint per customer and channel, both
    needed to check caps and cool-downs across the cut. ``arrivals`` are the
    customers who sign up during the horizon (id -> sign-up time), with their
    static attributes in ``arrival_statics`` and their sign-up opt-ins, read from
    the raw events, in ``opt_ins`` ((id, channel) -> time).
    """

    config: ClosedLoopConfig
    sim: SimulatedRetailer
    cut: dt.datetime
    build: ProfileBuild
    catalog: Catalog
    contact_policy: ContactPolicy
    response: ResponseModel
    mapping: MessageMapping
    background: pd.DataFrame
    consent: dict[str, frozenset[Channel]]
    history_contacts: pd.DataFrame
    refusals: dict[tuple[str, Channel], dt.datetime]
    timezones: dict[str, str] = field(default_factory=dict)
    arrivals: dict[str, dt.datetime] = field(default_factory=dict)
    arrival_statics: dict[str, CustomerStatic] = field(default_factory=dict)
    opt_ins: dict[tuple[str, Channel], dt.datetime] = field(default_factory=dict)

    @property
    def customer_ids(self) -> list[str]:
        """Every customer the loop serves: those known at the cut, then the arrivals."""
        return [p.customer_id for p in self.build.profiles] + list(self.arrivals)

    @property
    def end(self) -> dt.datetime:
        return self.cut + dt.timedelta(days=self.config.days)

    @functools.cached_property
    def truth(self) -> TrueValue:
        return TrueValue(self.response)


def example_catalog() -> Catalog:
    return parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())


def example_contact_policy() -> ContactPolicy:
    return parse_contact_policy((EXAMPLES / "contact_policy.yaml").read_text())


def loop_contact_policy(policy: ContactPolicy) -> ContactPolicy:
    """``policy`` with the mobile wallet closed (daily cap 0): the simulator has no wallet,
    so no policy may pick it. Every other rule is unchanged and shared by all policies."""
    return ContactPolicy.from_dict({"channels": {"wallet": {"cap_1d": 0}}}, base=policy)


def build_world(
    config: ClosedLoopConfig,
    catalog: Catalog | None = None,
    contact_policy: ContactPolicy | None = None,
) -> ClosedLoopWorld:
    """Simulate, cut, build profiles at the cut and gather what the checker needs."""
    contact_policy = loop_contact_policy(contact_policy or example_contact_policy())
    sim = simulate(config.simulator_config())
    # the engine is given the retailer's offers table, as `nba decide` and the API are:
    # the terms it decides with are those the simulated world answers to
    catalog = apply_offer_table(
        catalog or example_catalog(), offers_by_id(sim.offers, "simulated offers table")
    ).catalog
    cut = config.simulator_config().start + dt.timedelta(days=config.history_days)
    stamp = pd.Timestamp(cut)
    events = sim.event_frame()  # not kept on ``sim``: ~11 KB per customer after the build
    # the customers table is the end of the simulation's: the profiles at the cut see
    # each customer's loyalty tier as it stood then, not the one the horizon reaches
    at_cut = tiers_at(sim.customers, sim.truth.customers, events, stamp)
    data = RetailDataset(at_cut, sim.products, sim.offers, events)
    # combined in forked processes, one per core (the same profiles, field for field): the
    # build's transient frames then live in them, not in this process, which the policies'
    # processes are forked from (at 20,000 customers x 63 days its peak 1.41 -> 1.08 GB;
    # 6.2 GB at 100,000 x 90 on one process)
    build = build_profiles(data, as_of=cut)
    audience = {p.customer_id for p in build.profiles}
    known = events["customer_id"].isin(audience)
    end = stamp + pd.Timedelta(days=config.days)
    created = pd.to_datetime(sim.customers["created_at"], utc=True)
    joining = sim.customers[(created >= stamp) & (created < end) & config.playbook].sort_values(
        "created_at", kind="stable"
    )
    arriving = events["customer_id"].isin(set(joining["customer_id"]))
    in_horizon = (events["timestamp"] >= stamp) & (events["timestamp"] < end)
    signed_up = arriving & (events["event_type"] == EventType.OPT_IN.value)
    after = events[
        (known | arriving) & in_horizon & (events["event_type"].isin(BACKGROUND_EVENTS) | signed_up)
    ]
    opted = events[signed_up & in_horizon]
    before = events[known & (events["timestamp"] < stamp)]
    sent = before[
        (before["event_type"] == EventType.MESSAGE_SENT.value)
        & (before["timestamp"] >= stamp - pd.Timedelta(days=30))
    ]
    history_contacts = pd.DataFrame(
        {
            "customer_id": sent["customer_id"].astype(str).to_numpy(),
            "channel": sent["channel"].astype(str).to_numpy(),
            "sent_at": sent["timestamp"].to_numpy(),
        }
    )
    refused = before[before["event_type"].isin(_REFUSAL)].sort_values("timestamp")
    refusals = {
        (str(c), Channel(ch)): t.floor("us").to_pydatetime()
        for c, ch, t in zip(
            refused["customer_id"], refused["channel"], refused["timestamp"], strict=True
        )
    }
    customers = sim.customers[
        sim.customers["customer_id"].isin(audience | set(joining["customer_id"]))
    ]
    return ClosedLoopWorld(
        config=config,
        sim=sim,
        cut=cut,
        build=build,
        catalog=catalog,
        contact_policy=contact_policy,
        response=with_catalog_offers(sim, catalog),
        mapping=MessageMapping(sim.products),
        background=after.sort_values("timestamp", kind="stable").reset_index(drop=True),
        consent=consent_at(customers, before, stamp),
        history_contacts=history_contacts,
        refusals=refusals,
        timezones=dict(zip(customers["customer_id"], customers["timezone"], strict=True)),
        arrivals={
            str(c): pd.Timestamp(t).floor("us").to_pydatetime()
            for c, t in zip(joining["customer_id"], created[joining.index], strict=True)
        },
        arrival_statics=statics_of(joining),
        opt_ins={
            (str(c), Channel(ch)): pd.Timestamp(t).floor("us").to_pydatetime()
            for c, ch, t in zip(
                opted["customer_id"], opted["channel"], opted["timestamp"], strict=True
            )
        },
    )


def tiers_at(
    customers: pd.DataFrame, truth: pd.DataFrame, events: pd.DataFrame, moment: pd.Timestamp
) -> pd.DataFrame:
    """``customers`` with each ``loyalty_tier`` as it stood just before ``moment``.

    The simulated customers table gives the tier at the end of the simulation. A
    customer's tier at ``moment`` is the one their spend gave at the start of the
    window (``truth``: ``loyalty_member``, ``spend_before``), raised by every
    ``loyalty_tier_reached`` event before ``moment`` (the simulator's tiers only rise
    within the window).
    """
    ranks = {tier: rank for rank, tier in enumerate(TIERS)}
    start = pd.Series(
        tier_of(truth["spend_before"].to_numpy(float), truth["loyalty_member"].to_numpy(bool)),
        index=truth["customer_id"].astype(str).to_numpy(),
    )
    reached = events[
        (events["event_type"] == EventType.LOYALTY_TIER_REACHED.value)
        & (events["timestamp"] < moment)
    ]
    rank = (
        reached["properties"]
        .map(lambda p: json.loads(p).get("tier") if isinstance(p, str) else None)
        .map(ranks)
    )
    reached_rank = (
        pd.Series(rank.to_numpy(), index=reached["customer_id"].astype(str).to_numpy())
        .dropna()
        .groupby(level=0)
        .max()
    )
    ids = customers["customer_id"].astype(str)
    held = np.maximum(
        ids.map(start).fillna(0).to_numpy(int), ids.map(reached_rank).fillna(0).to_numpy(int)
    )
    out = customers.copy()
    out["loyalty_tier"] = np.array(TIERS, dtype=object)[held]
    return out


def consent_at(
    customers: pd.DataFrame, events: pd.DataFrame, moment: pd.Timestamp
) -> dict[str, frozenset[Channel]]:
    """Opted-in consent channels of each customer just before ``moment``, from raw data.

    The customers table gives each channel's consent and when it was last set;
    an ``opt_in`` event grants, an unsubscribe, complaint or STOP withdraws; the
    latest change before ``moment`` wins. A table entry set at or after
    ``moment`` is not known yet, and without an earlier change the channel is
    closed (the conservative reading).
    """
    changes: list[pd.DataFrame] = []
    for ch in CONSENT_CHANNELS:
        at = pd.to_datetime(customers[f"consent_{ch.value}_at"], utc=True)
        at = at.fillna(pd.to_datetime(customers["created_at"], utc=True))
        changes.append(
            pd.DataFrame(
                {
                    "customer_id": customers["customer_id"].astype(str).to_numpy(),
                    "channel": ch.value,
                    "at": at.to_numpy(),
                    "granted": customers[f"consent_{ch.value}"].fillna(False).to_numpy(bool),
                }
            )
        )
    flips = events[
        events["event_type"].isin(_WITHDRAW | {EventType.OPT_IN.value})
        & events["channel"].isin([c.value for c in CONSENT_CHANNELS])
    ]
    changes.append(
        pd.DataFrame(
            {
                "customer_id": flips["customer_id"].astype(str).to_numpy(),
                "channel": flips["channel"].astype(str).to_numpy(),
                "at": flips["timestamp"].to_numpy(),
                "granted": (flips["event_type"] == EventType.OPT_IN.value).to_numpy(),
            }
        )
    )
    table = pd.concat(changes, ignore_index=True)
    table = table[pd.to_datetime(table["at"], utc=True) < moment]
    latest = table.sort_values("at", kind="stable").groupby(["customer_id", "channel"]).last()
    granted = latest[latest["granted"]].reset_index()
    out: dict[str, set[Channel]] = {str(c): set() for c in customers["customer_id"]}
    for cid, ch in zip(granted["customer_id"], granted["channel"], strict=True):
        out.setdefault(str(cid), set()).add(Channel(ch))
    return {cid: frozenset(chs) for cid, chs in out.items()}
