"""Batch decisions: the engine over offline profiles, one row per customer and action.

For platforms that import lists rather than call the API: every customer of an
audience (profiles from ``nba features build``) gets the decision the API
would give at ``now``: the same decision pipeline
(:func:`~nba.pipeline.build_pipeline`, with the registry's champions and their
preparation when ``nba decide`` finds them), the same seed for the same
``Idempotency-Key`` (``<seed>:<customer id>``; tested against the API).

* **Deterministic**: each customer's decision is seeded by ``(seed, customer_id)``
  and its id derived from them, so the same audience, catalog and ``now`` give
  the same file whatever the order of the rows, the number of workers or the
  engine (one machine here, Spark in :mod:`serving.batch_spark`).
* **Budgets**: the audience is split into :func:`chunk_count` chunks by a stable
  hash of the customer id (:func:`chunk_numbers`); each chunk gets a share of
  what is left of each offer budget and action volume, in proportion to its
  size (:func:`chunk_shares`), and uses it first come, first served in
  customer-id order. Totals hold, and since a chunk's members and share depend
  only on the ids, every chunk decides alike wherever it runs (a share a chunk
  does not use is not passed on).
* **Speed**: profiles are read column by column
  (:func:`features.profile_table.profiles_from_frame`), the send-time model
  personalises a whole chunk at once, rows are built as columns, and forked
  workers share the audience instead of receiving it pickled; the calling process
  decides chunks beside them (:func:`_decided`).
* **Rows**: one per chosen action, ``do_nothing`` included; a customer for whom
  nothing is eligible gets one row with no action, so that every customer
  appears, in the order of the audience. Send times are in UTC
  (``send_at_utc``) and as local ISO text with the offset (``send_at_local``),
  since a column holds one time zone only.
* **Products**: each row's ``products`` (a list of product ids, empty for an action
  that shows none) are the API's (:func:`serving.products.products_for`): the cart's
  or browsed items in stock, or the champion recommender's picks (asked once per
  chunk, for every customer with an action that shows them) without what was just
  bought, is in the cart or is sold out, else the popular products that are not.
* **Bad input** raises :class:`AudienceError` naming the row, the customer and
  the field.
"""

from __future__ import annotations

import collections
import concurrent.futures
import concurrent.futures.process
import contextlib
import dataclasses
import datetime as dt
import gc
import logging
import math
import multiprocessing
import threading
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson
import pandas as pd

from features.batch import customer_parts, paused_gc
from features.online.contact_state import OwnContact, RedisContactState, with_own_contacts
from features.online.response_stats import ResponseTable, response_segment
from features.online.stock import StockLevels
from features.profile_table import ProfileRowsError, profiles_from_frame
from nba.actions import ActionType
from nba.arbitration import Posterior
from nba.budgets import UsageCounts
from nba.catalog import Catalog
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import ChosenAction, Decision
from nba.explain import rejection_items
from nba.pipeline import Decider, DecisionPipeline, build_pipeline
from nba.profile import CustomerProfile
from serving.products import RECOMMENDED, PopularProducts, products_for, recommendations
from training.model_scorer import ModelScorer

log = logging.getLogger("nba.batch")
Progress = Callable[[int, int], None]
#: What a reader of the API's Redis returns.
ReadT = TypeVar("ReadT")
#: When each action was last sent, per customer: a mapping, or a reader that returns
#: it for the customer ids of one chunk (e.g. :class:`RedisHistories`, on each worker).
ActionHistory = (
    Mapping[str, Mapping[str, dt.datetime]]
    | Callable[[Sequence[str]], Mapping[str, Mapping[str, dt.datetime]]]
)

#: Columns of the decisions table, in order.
DECISION_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "decision_id",
    "policy",
    "arm",
    "decided_at",
    "rank",
    "action_id",
    "action_type",
    "channel",
    "send_at_utc",
    "send_at_local",
    "timezone",
    "offer_id",
    "offer_expires_at",
    "products",
    "template",
    "variant_id",
    "priority",
    "propensity",
    "explored",
    "eligible_actions",
    "reasons",
)
#: Columns holding UTC instants, all of :data:`TIME_DTYPE` whatever they hold (a column
#: without a value, e.g. no offer chosen, was seconds, which Parquet stores as milliseconds).
TIME_COLUMNS = ("decided_at", "send_at_utc", "offer_expires_at")
#: The one type of every :data:`TIME_COLUMNS` column: UTC microseconds (Spark's unit too).
TIME_DTYPE = pd.DatetimeTZDtype("us", "UTC")
#: Customers per chunk, on average (chunks are formed by hashing customer ids).
CHUNK_SIZE = 2_000
#: An audience of more than one chunk is split into a multiple of this many chunks, so
#: that 1, 2 or 4 workers get equal shares (3 chunks on 2 workers left one idle a third
#: of the time); the count depends on the audience's size only, never on the workers.
CHUNK_MULTIPLE = 4
MAX_PROBLEMS = 20


class AudienceError(ValueError):
    """An audience that cannot be decided for; ``problems`` name row, customer and field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems[:MAX_PROBLEMS])
        more = len(self.problems) - MAX_PROBLEMS
        extra = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"the audience is invalid:\n{lines}{extra}")


#: The contacts the API decided and no ``message_sent`` has reported yet, per customer
#: (:meth:`~features.online.contact_state.ContactState.own_contacts_of`): a reader of
#: them for the customer ids of one chunk at a moment (e.g. :meth:`RedisHistories.own_contacts`).
OwnContacts = Callable[[Sequence[str], dt.datetime], Mapping[str, Sequence[OwnContact]]]
#: The customers erased (``DELETE /v1/customers/{id}``, ``nba erase``) whose erasure the
#: API still keeps, with its moment: a reader of them for the customer ids of one chunk
#: (e.g. :meth:`RedisHistories.erased`).
Erasures = Callable[[Sequence[str]], Mapping[str, dt.datetime]]


@dataclass(frozen=True)
class BatchJob:
    """What every chunk of one batch run decides with (the same on every worker).

    ``policy`` is the pipeline (:func:`~nba.pipeline.build_pipeline`); ``stats`` the
    API's response statistics (each customer decides with their segment's) or fixed
    posteriors; ``action_history`` when each action was last sent, per customer
    (:data:`ActionHistory`); ``own_contacts`` the API's contacts not reported sent yet
    (:data:`OwnContacts`), counted in each profile's contact history as the API counts
    them (:func:`~features.online.contact_state.with_own_contacts`), so the caps and
    the message gap hold across the API and batch; ``stock`` the levels of the
    products (a :meth:`~features.online.stock.StockLevels.snapshot`): each customer
    decides with the cart and browsed products that can be bought, as in the API;
    ``recommender`` the champion recommender (``None``: popularity) and ``popular`` the
    popularity list, most popular first: each row's ``products`` are the API's
    (:func:`~serving.products.products_for`), the recommender asked once per chunk;
    ``erasures`` the customers the API erased (:data:`Erasures`): each whose profile was
    built at or before the erasure (it holds what they asked to forget) is decided as the
    API decides them, as an unknown visitor (no profile, no history).
    """

    policy: Decider
    now: dt.datetime
    seed: int | str = 0
    stats: ResponseTable | Mapping[str, Posterior] = dataclasses.field(default_factory=dict)
    action_history: ActionHistory = dataclasses.field(default_factory=dict)
    own_contacts: OwnContacts | None = None
    stock: StockLevels | None = None
    recommender: Any | None = None
    popular: Sequence[str] = ()
    #: the most rejected actions each row explains in a ``rejected`` column (0: none;
    #: :func:`rejected_reasons`)
    rejected: int = 0
    erasures: Erasures | None = None

    def __post_init__(self) -> None:
        if self.rejected < 0:
            raise ValueError("rejected counts the rejected actions explained: 0 or more")
        if self.now.tzinfo is None:
            raise ValueError("now must be a time-zone aware datetime (e.g. datetime.UTC)")

    @paused_gc()
    def decide(self, profiles: Sequence[CustomerProfile], usage: UsageCounts) -> pd.DataFrame:
        """Decide for ``profiles`` in order, sharing ``usage`` (copied, then counted up);
        the rows of :data:`DECISION_COLUMNS`, plus ``position`` (the index into
        ``profiles`` of each row's customer).

        The cycle collector is paused meanwhile: no decision leaves a reference cycle
        (``tests/test_batch_decisions.py``), so its objects are freed as they die, and the
        collections would only walk the chunk's profiles, contexts and rows again and
        again (a fifth of a worker's CPU, 108 µs a customer on one worker)."""
        offers, actions = dict(usage.offers_given), dict(usage.actions_sent)
        running = UsageCounts(offers, actions)
        if self.erasures is not None:
            profiles = self._without_erased(profiles)
        history = self.action_history
        if callable(history):
            history = history([p.customer_id for p in profiles])
        if self.own_contacts is not None:
            profiles = self._with_own_contacts(profiles)
        if self.stock is not None:
            profiles = [self.stock.sellable(p) for p in profiles]
        decider, contexts = _prepared(self.policy, profiles, self.now, history, self.stock)
        # each decision's rows are written as it comes and only its chosen actions kept
        # (for the products, asked once per chunk): the decisions' objects die young,
        # the collector does not scan a chunk's worth of them again and again
        rows = _Rows()
        decided: list[tuple[tuple[ChosenAction, ...], CustomerProfile]] = []
        scorer = self.policy.scorer if isinstance(self.policy, DecisionPipeline) else None
        with (
            scorer.chunk([c.profile for c in contexts])
            if isinstance(scorer, ModelScorer)
            else contextlib.nullcontext()
        ):
            for context in contexts:
                profile = context.profile
                stats = (
                    self.stats.posteriors(response_segment(profile))
                    if isinstance(self.stats, ResponseTable)
                    else self.stats
                )
                routed = decider.route(
                    context,
                    usage=running,
                    stats=stats,
                    seed=f"{self.seed}:{profile.customer_id}",
                )
                decision = routed.decision
                for key, n in decision.consumed.offers_given.items():
                    offers[key] = offers.get(key, 0) + n
                for key, n in decision.consumed.actions_sent.items():
                    actions[key] = actions.get(key, 0) + n
                rows.add(decision, profile.timezone, len(decided), routed.arm_name)
                if self.rejected:
                    rows.add_rejected(decision, self.rejected)
                decided.append((decision.actions, profile))
        return rows.frame(self._products(decided))

    def _products(
        self, decided: Sequence[tuple[Sequence[ChosenAction], CustomerProfile]]
    ) -> list[list[list[str]]]:
        """The products of each decision's actions (``decided``: its chosen actions and
        its customer), as the API attaches them: the recommender asked once, for every
        customer with an action that shows its picks."""
        stock = self.stock or StockLevels(None, "")
        popular = PopularProducts(self.popular)
        asking = [
            i
            for i, (chosen, _) in enumerate(decided)
            if any(a.action_type in RECOMMENDED for a in chosen)
        ]
        found: dict[int, list[str]] = {}
        if self.recommender is not None and asking:
            try:
                lists = recommendations(self.recommender, [decided[i][1] for i in asking])
                found = dict(zip(asking, lists, strict=True))
            except Exception as error:  # as in the API: popularity instead
                log.error("recommender failed, falling back to popularity: %s", error)
        return [
            [
                products_for(a.action_type, profile, stock, popular, found.get(i), shows=a.shows)
                for a in chosen
            ]
            for i, (chosen, profile) in enumerate(decided)
        ]

    def _without_erased(self, profiles: Sequence[CustomerProfile]) -> Sequence[CustomerProfile]:
        """``profiles`` with each erased customer's replaced by an unknown visitor's (the
        profile the API decides them with: ``serving.decisions``)."""
        assert self.erasures is not None
        gone = self.erasures([p.customer_id for p in profiles])
        if not gone:
            return profiles
        return [
            CustomerProfile(p.customer_id, as_of=self.now)
            if p.customer_id in gone and (p.as_of is None or p.as_of <= gone[p.customer_id])
            else p
            for p in profiles
        ]

    def _with_own_contacts(self, profiles: Sequence[CustomerProfile]) -> list[CustomerProfile]:
        assert self.own_contacts is not None
        found = self.own_contacts([p.customer_id for p in profiles], self.now)
        return [
            with_own_contacts(p, found[p.customer_id], self.now) if p.customer_id in found else p
            for p in profiles
        ]


def decide_audience(
    profiles: Iterable[CustomerProfile] | pd.DataFrame,
    catalog: Catalog,
    contact_policy: ContactPolicy | None = None,
    now: dt.datetime | None = None,
    *,
    policy: Decider | None = None,
    seed: int | str = 0,
    usage: UsageCounts | None = None,
    stats: ResponseTable | Mapping[str, Posterior] | None = None,
    action_history: ActionHistory | None = None,
    own_contacts: OwnContacts | None = None,
    stock: StockLevels | None = None,
    recommender: Any | None = None,
    popular: Sequence[str] = (),
    workers: int = 1,
    progress: Progress | None = None,
    rejected: int = 0,
    erasures: Erasures | None = None,
) -> pd.DataFrame:
    """Decide for every customer of ``profiles`` at ``now``; one row per chosen action.

    Parameters
    ----------
    profiles
        Profiles, or a frame of profile rows (``features.profile_table.profiles_frame``,
        i.e. the Parquet file of ``nba features build``).
    catalog, contact_policy
        The rules; ``policy`` (a :class:`~nba.pipeline.Decider`) defaults to the
        pipeline :func:`~nba.pipeline.build_pipeline` makes of them (the engine
        with rule-based scores).
    now
        The moment of the decisions (time-zone aware).
    seed
        Combined with each customer id to seed that customer's decision.
    usage
        Offer and action counts already used today.
    stats
        The response statistics the API keeps (each customer decides with their
        segment's, as in the API), or fixed posteriors for everyone.
    action_history
        When each action was last sent, per customer (for cool-downs and
        sequences; profiles do not carry it), or a reader of it per chunk.
    own_contacts
        A reader of the contacts the API decided and no ``message_sent`` has
        reported yet (they count toward caps and the message gap, as in the API).
    stock
        The products' stock levels: decisions see the cart and browsed products
        that can be bought, as in the API.
    recommender, popular
        The champion recommender (``None``: popularity) and the popularity list, most
        popular first: the ``products`` of each row, as the API attaches them.
    workers
        Processes deciding chunks side by side: this one and ``workers - 1`` forked
        ones (the policy and the audience are shared, not pickled); the result is the
        same for any number.
    progress
        ``progress(done, total)`` after each chunk of customers.
    rejected
        With ``N > 0``, a ``rejected`` column: why the decision's N best rejected
        actions were not chosen, as the API says it (:func:`rejected_reasons`).
    erasures
        A reader of the customers the API erased: they are decided as unknown
        visitors, as the API decides them (:class:`BatchJob`).

    >>> import datetime as dt
    >>> from nba.catalog import parse_catalog
    >>> catalog = parse_catalog('''
    ... actions:
    ...   - {id: hello, type: content, channels: [email], value: 5, timing: asap}
    ...   - {id: nothing, type: do_nothing}
    ... ''')
    >>> from nba.channels import Channel
    >>> people = [CustomerProfile("C1", consents={Channel.EMAIL: True}), CustomerProfile("C2")]
    >>> now = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)
    >>> table = decide_audience(people, catalog, now=now, seed=1)
    >>> table[["customer_id", "action_id"]].values.tolist()
    [['C1', 'hello'], ['C2', 'nothing']]
    >>> table["channel"].iloc[0], bool(table["channel"].isna().iloc[1])
    ('email', True)
    """
    if now is None or now.tzinfo is None:
        raise ValueError("now must be a time-zone aware datetime (e.g. datetime.UTC)")
    job = BatchJob(
        policy or build_pipeline(catalog, contact_policy),
        now,
        seed,
        stats or {},
        action_history or {},
        own_contacts,
        stock,
        recommender,
        tuple(popular),
        rejected,
        erasures,
    )
    audience: pd.DataFrame | list[CustomerProfile]
    if isinstance(profiles, pd.DataFrame):
        # checked here; each chunk's profiles are built by the worker that decides it
        check_audience(profiles)
        audience = profiles
        ids: Sequence[str] = profiles["customer_id"].tolist()
    else:
        audience = list(profiles)
        _check_profiles(audience)
        ids = [p.customer_id for p in audience]
    total = len(ids)
    chunks = chunk_numbers(ids, chunk_count(total))
    members = _members(chunks, ids)
    shares = chunk_shares(catalog, usage or UsageCounts(), {k: len(m) for k, m in members.items()})
    tasks = [(k, members[k], shares[k]) for k in sorted(members)]
    parts: list[pd.DataFrame] = []
    done = 0

    def collect(positions: np.ndarray, part: pd.DataFrame) -> None:
        nonlocal done
        # back to positions in the audience
        part["position"] = positions[part["position"].to_numpy()]
        parts.append(part)
        done += len(positions)
        if progress is not None:
            progress(done, total)

    global _SHARED
    _SHARED = (job, audience)
    unreadable = False
    try:
        for task, part in _decided(tasks, workers):
            if part is None:
                unreadable = True
                break
            collect(task[1], part)
    finally:
        _SHARED = None
    if unreadable:  # a chunk's rows are not profiles: every problem of the audience, as
        assert isinstance(audience, pd.DataFrame)  # read_audience names them
        read_audience(audience)
        raise AudienceError(["the audience's rows could not be read as profiles"])
    return _in_audience_order(parts)


def read_audience(frame: pd.DataFrame) -> list[CustomerProfile]:
    """The profiles of a frame of profile rows, or :class:`AudienceError` with every
    problem found (row numbers count from 1)."""
    problems = _frame_problems(frame)
    try:
        profiles = profiles_from_frame(frame)
    except ProfileRowsError as error:
        problems += error.problems
    if problems:
        raise AudienceError(problems)
    return profiles


def check_audience(frame: pd.DataFrame) -> None:
    """:func:`read_audience`'s checks of the ids and time zones (the whole frame at
    once, without building a profile); with a problem, :class:`AudienceError` with every
    problem :func:`read_audience` finds."""
    if _frame_problems(frame):
        read_audience(frame)


def _frame_problems(frame: pd.DataFrame) -> list[str]:
    """Blank or repeated customer ids and unknown time zones (row numbers from 1)."""
    problems: list[str] = []
    if "customer_id" not in frame.columns:
        raise AudienceError(
            ["column 'customer_id' is missing (profiles from 'nba features build')"]
        )
    ids = frame["customer_id"]
    blank = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    for position in np.flatnonzero(blank)[:MAX_PROBLEMS].tolist():
        problems.append(f"row {position + 1}, field 'customer_id': empty")
    duplicated = ids.duplicated(keep="first").to_numpy() & ~blank
    for position in np.flatnonzero(duplicated)[:MAX_PROBLEMS].tolist():
        problems.append(
            f"row {position + 1}, field 'customer_id': {ids.iloc[position]!r} appears twice"
        )
    if "timezone" in frame.columns:
        for zone in frame["timezone"].dropna().unique():
            if not _known_zone(str(zone)):
                first = int((frame["timezone"] == zone).to_numpy().argmax())
                problems.append(
                    f"row {first + 1} (customer {ids.iloc[first]!r}), field 'timezone': "
                    f"unknown time zone {zone!r}"
                )
    return problems


def chunk_count(total: int) -> int:
    """How many chunks an audience of ``total`` customers is decided in: one up to
    :data:`CHUNK_SIZE`, else about ``total / CHUNK_SIZE`` rounded up to a multiple of
    :data:`CHUNK_MULTIPLE`.

    >>> chunk_count(1_500), chunk_count(5_000), chunk_count(100_000)
    (1, 4, 52)
    """
    chunks = max(1, math.ceil(total / CHUNK_SIZE))
    return chunks if chunks == 1 else math.ceil(chunks / CHUNK_MULTIPLE) * CHUNK_MULTIPLE


def chunk_numbers(customer_ids: Sequence[str] | pd.Series, chunks: int) -> np.ndarray:
    """The chunk (``0 <= k < chunks``) of each customer: a hash of the id alone, the same
    in every process, on every machine and for any order of the audience.

    >>> chunk_numbers(["C1", "C2", "C3"], 2).tolist() == chunk_numbers(["C3", "C1", "C2"], 2)[
    ...     [1, 2, 0]
    ... ].tolist()
    True
    """
    return customer_parts(np.asarray(customer_ids, dtype=object).astype(str).astype(object), chunks)


def chunk_shares(
    catalog: Catalog, usage: UsageCounts, sizes: Mapping[int, int]
) -> dict[int, UsageCounts]:
    """Today's usage as each chunk sees it: what is left of each offer budget and action
    volume is split in proportion to the chunks' sizes (in chunk-number order, so
    that the shares add up to what is left); the rest counts as already used."""
    total = sum(sizes.values())
    shares: dict[int, UsageCounts] = {}
    lo = 0
    for k in sorted(sizes):
        hi = lo + sizes[k]
        shares[k] = _share(catalog, usage, lo, hi, total)
        lo = hi
    return shares


def _members(chunks: np.ndarray, ids: Sequence[str]) -> dict[int, np.ndarray]:
    """Positions of each chunk's customers, in customer-id order."""
    order = np.lexsort((np.asarray(ids, dtype=object).astype(str), chunks))
    bounds = np.flatnonzero(np.diff(chunks[order])) + 1
    return {int(chunks[part[0]]): part for part in np.split(order, bounds) if len(part)}


def _in_audience_order(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return _Rows().frame(()).drop(columns="position")
    table = pd.concat(parts, ignore_index=True)
    order = np.argsort(table["position"].to_numpy(), kind="stable")
    return table.take(order).drop(columns="position").reset_index(drop=True)


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_profiles(profiles: list[Any]) -> None:
    seen: set[str] = set()
    for position, profile in enumerate(profiles):
        if not isinstance(profile, CustomerProfile):
            raise AudienceError([f"item {position + 1}: not a CustomerProfile"])
        if profile.customer_id in seen:
            raise AudienceError(
                [f"item {position + 1}, field 'customer_id': {profile.customer_id!r} appears twice"]
            )
        seen.add(profile.customer_id)


def _share(catalog: Catalog, usage: UsageCounts, lo: int, hi: int, total: int) -> UsageCounts:
    """Today's usage as seen by the chunk ``[lo, hi)``: what is left of each budget is
    split in proportion to chunk sizes; the rest counts as already used."""
    if lo == 0 and hi == total:
        return usage
    offers = dict(usage.offers_given)
    actions = dict(usage.actions_sent)
    for action in catalog:
        if action.offer is not None and action.offer.daily_budget is not None:
            key, limit = action.offer.id, action.offer.daily_budget
            offers[key] = limit - _slice(
                max(0, limit - usage.offers_given.get(key, 0)), lo, hi, total
            )
        if action.daily_volume is not None:
            key, limit = action.id, action.daily_volume
            actions[key] = limit - _slice(
                max(0, limit - usage.actions_sent.get(key, 0)), lo, hi, total
            )
    return UsageCounts(offers, actions)


def _slice(left: int, lo: int, hi: int, total: int) -> int:
    return left * hi // total - left * lo // total


def _prepared(
    policy: Decider,
    profiles: Sequence[CustomerProfile],
    now: dt.datetime,
    history: Mapping[str, Mapping[str, dt.datetime]],
    stock: StockLevels | None = None,
) -> tuple[Decider, list[CustomerContext]]:
    """The decider and each customer's context as it decides (prepared by the pipeline's
    scorer: a whole chunk at once for the send-time model), with the new arrivals
    ``stock`` leaves a launch to show each customer, as the API counts them."""
    scorer = policy.scorer if isinstance(policy, DecisionPipeline) else None
    if isinstance(scorer, ModelScorer) and scorer.send_time is not None:
        # what ModelScorer.prepare does to each context, for the whole chunk at once
        profiles = scorer.send_time.personalise_many(profiles)
    contexts = [
        CustomerContext(
            p,
            now,
            action_history=history.get(p.customer_id, {}),
            has_new_arrivals=None if stock is None else stock.has_arrivals_to_show(p),
        )
        for p in profiles
    ]
    if not isinstance(policy, DecisionPipeline):
        return policy, contexts
    if isinstance(scorer, ModelScorer):
        return policy.decider, contexts
    return policy.decider, [policy.prepare(c) for c in contexts]


class _Rows:
    """The decisions table, built column by column."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {c: [] for c in (*DECISION_COLUMNS, "position")}
        #: the ``rejected`` column, when asked for (:meth:`add_rejected`)
        self.rejected: list[str] = []

    def add_rejected(self, decision: Decision, n: int) -> None:
        """The ``rejected`` column of the decision's rows (:meth:`add` them first): the
        same text on each."""
        text = rejected_reasons(decision, n)
        self.rejected += [text] * max(1, len(decision.actions))

    def add(self, decision: Decision, timezone: str, position: int, arm: str | None) -> None:
        """The rows of one decision (a single empty row when nothing was eligible), all
        but their products (:meth:`frame`); ``arm`` is the experiment arm that made it."""
        c = self.columns
        actions = decision.actions
        n = max(1, len(actions))
        for name, value in (
            ("customer_id", decision.customer_id),
            ("decision_id", decision.decision_id),
            ("policy", decision.policy),
            ("arm", arm),
            ("decided_at", decision.decided_at),
            ("timezone", timezone),
            ("eligible_actions", len(decision.eligible_action_ids)),
            ("position", position),
        ):
            if n == 1:
                c[name].append(value)
            else:
                c[name] += [value] * n
        if not actions:
            for name in _ACTION_COLUMNS:
                c[name].append(None)
            c["explored"].append(False)
            c["reasons"].append("nothing eligible: " + _first_rejections(decision))
            return
        chosen = decision.explanation.chosen
        for rank, action in enumerate(actions):
            why = chosen[rank] if rank < len(chosen) else None
            c["rank"].append(rank)
            c["action_id"].append(action.action_id)
            c["action_type"].append(action.action_type.value)
            c["channel"].append(None if action.channel is None else action.channel.value)
            c["send_at_utc"].append(action.send_at)
            c["send_at_local"].append(
                None if action.send_at_local is None else action.send_at_local.isoformat()
            )
            c["offer_id"].append(action.offer_id)
            c["offer_expires_at"].append(action.offer_expires_at)
            c["template"].append(action.template)
            c["variant_id"].append(action.variant_id)
            c["priority"].append(action.priority)
            c["propensity"].append(action.propensity)
            c["explored"].append(action.explored)
            c["reasons"].append(
                ""
                if why is None
                else "; ".join(
                    [why.summary, *(f.detail for f in why.factors if f.name != "priority")]
                )
            )

    def frame(self, products: Sequence[Sequence[list[str]]]) -> pd.DataFrame:
        """The table, with ``products``: those of each decision's actions, in the order
        the decisions were added (a decision without an action has one row, no product)."""
        c = self.columns
        c["products"] = [row for per in products for row in (per or [[]])]
        table = pd.DataFrame(
            {
                **c,
                **{
                    name: pd.to_datetime(c[name], utc=True).astype(TIME_DTYPE)
                    for name in TIME_COLUMNS
                },
                "rank": pd.array(c["rank"], dtype="Int64"),
                "priority": pd.array(c["priority"], dtype=float),
                "propensity": pd.array(c["propensity"], dtype=float),
                "position": np.asarray(c["position"], dtype=np.int64),
            }
        )
        if self.rejected:
            at = list(table.columns).index("reasons") + 1
            table.insert(at, "rejected", self.rejected)
        return table


@dataclass(frozen=True)
class RedisHistories:
    """Reads the action history of a chunk's customers from the API's Redis
    (:meth:`~features.online.contact_state.ContactState.histories`), in the worker
    that decides the chunk: nothing about the whole audience passes through one
    process, and it pickles as its URL (for forked workers and Spark executors)."""

    url: str
    prefix: str = "nba"

    def __call__(self, customer_ids: Sequence[str]) -> dict[str, dict[str, dt.datetime]]:
        return self._read(lambda state: state.histories(list(customer_ids)))

    def own_contacts(
        self, customer_ids: Sequence[str], now: dt.datetime
    ) -> dict[str, tuple[OwnContact, ...]]:
        """The contacts the API decided for them that count at ``now`` and that no
        ``message_sent`` has reported (:data:`OwnContacts`)."""
        return self._read(lambda state: state.own_contacts_of(list(customer_ids), now))

    def erased(self, customer_ids: Sequence[str]) -> dict[str, dt.datetime]:
        """The erasure moment of each of them whose erasure the API still keeps
        (:data:`Erasures`)."""
        from features.online.erasure import RedisErasure

        return self._read(lambda state: RedisErasure(state).erased(list(customer_ids)))

    def _read(self, read: Callable[[RedisContactState], ReadT]) -> ReadT:
        from features.online.connect import connect_redis
        from features.online.redis_store import RedisOnlineStore

        client = connect_redis(self.url)
        try:
            return read(RedisContactState(RedisOnlineStore(client, prefix=self.prefix)))
        finally:
            client.close()


#: The columns of a decision's rows that every action repeats.
_PER_DECISION = ("customer_id", "decision_id", "policy", "arm", "decided_at", "timezone")
#: The columns an empty decision (nothing eligible) leaves empty.
_ACTION_COLUMNS = tuple(
    c
    for c in DECISION_COLUMNS
    if c not in {*_PER_DECISION, "eligible_actions", "explored", "products", "reasons"}
)


def rejected_reasons(decision: Decision, n: int) -> str:
    """Why the decision's ``n`` best rejected actions were not chosen, as the API's answer
    says it (its ``rejected`` items: action, channel, code, message), a JSON array.

    The best first (:attr:`nba.explain.Explanation.rejected`: the losers of the
    arbitration by priority, then the filtered actions in catalog order)."""
    explanation = decision.explanation
    found = explanation.rejected  # a few, made once; all of them only when more are asked
    if len(found) < n:
        found = explanation.every_rejected
    return orjson.dumps(rejection_items(found[:n])).decode()


def _first_rejections(decision: Decision, n: int = 3) -> str:
    return (
        "; ".join(str(r) for r in decision.explanation.rejected[:n]) or "no action in the catalog"
    )


def contacts_only(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that reach a customer (no ``do_nothing``, no empty decisions)."""
    keep = table["channel"].notna() & (table["action_type"] != ActionType.DO_NOTHING.value)
    return table[keep].reset_index(drop=True)


@dataclass(frozen=True)
class RegisteredErasures:
    """The erasures of the register (:class:`features.erasures.ErasureRegister`: SHA-256
    of each erased id and its moment) as :data:`Erasures`, with those ``also`` reads
    (e.g. the API's Redis), the latest moment of each."""

    register: Mapping[str, dt.datetime]
    also: Erasures | None = None

    def __call__(self, customer_ids: Sequence[str]) -> dict[str, dt.datetime]:
        from features.erasures import customer_digest

        found = dict(self.also(customer_ids)) if self.also is not None else {}
        if self.register:
            for cid in customer_ids:
                at = self.register.get(customer_digest(cid))
                if at is not None and (cid not in found or at > found[cid]):
                    found[cid] = at
        return found


Task = tuple[int, np.ndarray, UsageCounts]


def _decided(tasks: Sequence[Task], workers: int) -> Iterator[tuple[Task, pd.DataFrame | None]]:
    """Each task with its rows (:func:`_decide_shared`), as they are decided: by this
    process and ``workers - 1`` forked ones side by side, each taking the next task when
    it is done with one. This process decides too: one fork fewer, and its caches warm and
    its pages its own (a forked worker copies each page it writes to, reference counts
    included). A task no worker could decide (a broken pool) is decided here. The rows
    do not depend on where a task is decided."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield task, _decide_shared(task)
        return
    waiting = collections.deque(range(len(tasks)))
    lock = threading.Lock()
    given: dict[int, concurrent.futures.Future[pd.DataFrame | None]] = {}

    def take() -> int | None:
        with lock:
            return waiting.popleft() if waiting else None

    def feed(_: object = None) -> None:  # a worker is free: the next task is its
        with lock:
            if not waiting:
                return
            i = waiting.popleft()
            try:
                future = given[i] = pool.submit(_decide_shared, tasks[i])
            except RuntimeError:  # broken or shut down: left to this process
                return
        future.add_done_callback(feed)

    def reaped() -> Iterator[tuple[Task, pd.DataFrame | None]]:
        with lock:
            done = [i for i, f in given.items() if f.done() and i not in out]
        for i in done:
            out.add(i)
            try:
                part = given[i].result()
            except concurrent.futures.process.BrokenProcessPool:
                part = _decide_shared(tasks[i])
            yield tasks[i], part

    out: set[int] = set()
    context = multiprocessing.get_context("fork")
    gc.freeze()  # the audience stays in this process's pages, untouched by the workers' gc
    try:
        with concurrent.futures.ProcessPoolExecutor(workers - 1, mp_context=context) as pool:
            for _ in range(workers - 1):
                feed()
            try:
                while (i := take()) is not None:
                    out.add(i)
                    yield tasks[i], _decide_shared(tasks[i])
                    yield from reaped()
                concurrent.futures.wait(list(given.values()))
                yield from reaped()
                for i in range(len(tasks)):  # taken by a worker that could not decide it
                    if i not in out:
                        out.add(i)
                        yield tasks[i], _decide_shared(tasks[i])
            finally:  # a consumer that stops early (rows that are not profiles)
                with lock:
                    waiting.clear()
                pool.shutdown(cancel_futures=True)
    finally:
        gc.unfreeze()


#: The job and audience (profiles, or a frame of profile rows) shared with forked workers
#: (set only while a run lasts).
_SHARED: tuple[BatchJob, list[CustomerProfile] | pd.DataFrame] | None = None


@paused_gc()
def _decide_shared(task: tuple[int, np.ndarray, UsageCounts]) -> pd.DataFrame | None:
    """The rows of one chunk (``None`` when its rows in a frame are not profiles: the
    caller names the problems)."""
    if _SHARED is None:
        raise RuntimeError("no audience was shared with this worker")
    job, audience = _SHARED
    _, positions, usage = task
    if isinstance(audience, pd.DataFrame):
        try:
            profiles = profiles_from_frame(audience.take(positions))
        except ProfileRowsError:
            return None
    else:
        profiles = [audience[i] for i in positions.tolist()]
    return job.decide(profiles, usage)
