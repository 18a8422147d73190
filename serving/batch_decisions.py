"""Batch decisions: the engine over offline profiles, one row per customer and action.

For platforms that import lists rather than call the API: every customer of an
audience (profiles from ``nba features build``) gets the decision the API
would give at ``now``: the same decision pipeline
(:func:`~nba.pipeline.build_pipeline`, with the registry's champions and their
preparation when ``nba decide`` finds them), the same seed for the same
``Idempotency-Key`` (``<seed>:<customer id>``; tested against the API).

* **Deterministic**: each customer's decision is seeded by ``(seed, customer_id)``
  and its id derived from them, so the same audience, catalog and ``now`` give
  the same file whatever the order of the rows or the number of workers.
* **Budgets**: the audience is decided in chunks of :data:`CHUNK_SIZE`
  customers, in row order; each chunk gets a share of what is left of each
  offer budget and action volume, in proportion to its size, and uses it
  first come, first served. Totals hold, and the result does not depend on the
  number of workers (a share a chunk does not use is not passed on).
* **Rows**: one per chosen action, ``do_nothing`` included; a customer for whom
  nothing is eligible gets one row with no action, so that every customer
  appears. Send times are in UTC (``send_at_utc``) and as local ISO text with
  the offset (``send_at_local``), since a column holds one time zone only.
* **Bad input** raises :class:`AudienceError` naming the row, the customer and
  the field.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import multiprocessing
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.online.response_stats import ResponseTable, response_segment
from features.profile_table import row_to_profile
from nba.actions import ActionType
from nba.arbitration import Posterior
from nba.budgets import UsageCounts
from nba.catalog import Catalog
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import Decision
from nba.pipeline import Decider, build_pipeline
from nba.profile import CustomerProfile, JourneyPhase, LifecycleState

Progress = Callable[[int, int], None]

#: Columns of the decisions table, in order.
DECISION_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "decision_id",
    "policy",
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
    "template",
    "variant_id",
    "priority",
    "propensity",
    "explored",
    "eligible_actions",
    "reasons",
)
_JSON_COLUMNS = ("engagement", "consents", "contacts", "category_affinity", "brand_affinity")
_ENUM_COLUMNS: dict[str, frozenset[str]] = {
    "lifecycle_state": frozenset(s.value for s in LifecycleState),
    "journey_phase": frozenset(p.value for p in JourneyPhase),
}
#: Customers per chunk handed to a worker.
CHUNK_SIZE = 2_000
MAX_PROBLEMS = 20


class AudienceError(ValueError):
    """An audience that cannot be decided for; ``problems`` name row, customer and field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems[:MAX_PROBLEMS])
        more = len(self.problems) - MAX_PROBLEMS
        extra = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"the audience is invalid:\n{lines}{extra}")


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
    action_history: Mapping[str, Mapping[str, dt.datetime]] | None = None,
    workers: int = 1,
    progress: Progress | None = None,
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
        sequences); profiles do not carry it.
    workers
        Processes deciding chunks side by side (forked: the policy and the
        audience are shared, not pickled); the result is the same for any number.
    progress
        ``progress(done, total)`` after each chunk of customers.

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
    policy = policy or build_pipeline(catalog, contact_policy)
    if isinstance(profiles, pd.DataFrame):
        items: list[Any] = check_audience(profiles)
    else:
        items = list(profiles)
        _check_profiles(items)
    total = len(items)
    bounds = [(lo, min(total, lo + CHUNK_SIZE)) for lo in range(0, total, CHUNK_SIZE)]
    job = _Job(policy, now, seed, stats or {}, action_history or {})
    tasks = [(lo, hi, _share(catalog, usage or UsageCounts(), lo, hi, total)) for lo, hi in bounds]
    parts: list[list[dict[str, Any]]] = []
    done = 0
    if workers > 1 and len(tasks) > 1:
        global _SHARED
        _SHARED = (job, items)
        context = multiprocessing.get_context("fork")
        try:
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                for (lo, hi, _), part in zip(tasks, pool.map(_decide_shared, tasks), strict=True):
                    parts.append(part)
                    done += hi - lo
                    if progress is not None:
                        progress(done, total)
        finally:
            _SHARED = None
    else:
        for lo, hi, share in tasks:
            parts.append(job.decide(items, lo, hi, share))
            done += hi - lo
            if progress is not None:
                progress(done, total)
    table = pd.DataFrame([row for part in parts for row in part], columns=list(DECISION_COLUMNS))
    for column in ("decided_at", "send_at_utc", "offer_expires_at"):
        table[column] = pd.to_datetime(table[column], utc=True)
    table["rank"] = table["rank"].astype("Int64")
    return table


def check_audience(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a profiles frame as records, or :class:`AudienceError` with every
    problem found (row numbers count from 1)."""
    problems: list[str] = []
    if "customer_id" not in frame.columns:
        raise AudienceError(
            ["column 'customer_id' is missing (profiles from 'nba features build')"]
        )
    ids = frame["customer_id"]
    for position in range(len(frame)):
        cid = ids.iloc[position]
        if cid is None or (isinstance(cid, float) and pd.isna(cid)) or str(cid).strip() == "":
            problems.append(f"row {position + 1}, field 'customer_id': empty")
    duplicated = ids[ids.duplicated(keep="first")]
    for position, cid in zip(duplicated.index, duplicated, strict=True):
        problems.append(f"row {int(position) + 1}, field 'customer_id': {cid!r} appears twice")
    if "timezone" in frame.columns:
        for zone in frame["timezone"].dropna().unique():
            if not _known_zone(str(zone)):
                first = int((frame["timezone"] == zone).to_numpy().argmax())
                problems.append(
                    f"row {first + 1} (customer {ids.iloc[first]!r}), field 'timezone': "
                    f"unknown time zone {zone!r}"
                )
    for column, allowed in _ENUM_COLUMNS.items():
        if column not in frame.columns:
            continue
        bad = ~frame[column].isin(allowed)
        for position in [int(i) for i in bad.to_numpy().nonzero()[0][:MAX_PROBLEMS]]:
            problems.append(
                f"row {position + 1} (customer {ids.iloc[position]!r}), field {column!r}: "
                f"{frame[column].iloc[position]!r} is not one of {sorted(allowed)}"
            )
    for column in _JSON_COLUMNS:
        if column not in frame.columns:
            continue
        for position, text in enumerate(frame[column]):
            try:
                value = json.loads(text)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
            except (TypeError, ValueError) as error:
                problems.append(
                    f"row {position + 1} (customer {ids.iloc[position]!r}), field {column!r}: "
                    f"not a JSON object ({error})"
                )
    if problems:
        raise AudienceError(problems)
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


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


@dataclass(frozen=True)
class _Job:
    policy: Decider
    now: dt.datetime
    seed: int | str
    stats: ResponseTable | Mapping[str, Posterior]
    action_history: Mapping[str, Mapping[str, dt.datetime]]

    def decide(
        self, items: Sequence[Any], lo: int, hi: int, usage: UsageCounts
    ) -> list[dict[str, Any]]:
        """Decide for ``items[lo:hi]`` in order, sharing ``usage`` (copied, then counted up)."""
        offers, actions = dict(usage.offers_given), dict(usage.actions_sent)
        running = UsageCounts(offers, actions)
        rows: list[dict[str, Any]] = []
        for position in range(lo, hi):
            item = items[position]
            profile = item if isinstance(item, CustomerProfile) else _profile(item, position)
            context = CustomerContext(
                profile, self.now, action_history=self.action_history.get(profile.customer_id, {})
            )
            stats = (
                self.stats.posteriors(response_segment(profile))
                if isinstance(self.stats, ResponseTable)
                else self.stats
            )
            decision = self.policy.route(
                context,
                usage=running,
                stats=stats,
                seed=f"{self.seed}:{profile.customer_id}",
            ).decision
            for key, n in decision.consumed.offers_given.items():
                offers[key] = offers.get(key, 0) + n
            for key, n in decision.consumed.actions_sent.items():
                actions[key] = actions.get(key, 0) + n
            rows += decision_rows(decision, profile.timezone)
        return rows


def _profile(record: dict[str, Any], position: int) -> CustomerProfile:
    try:
        return row_to_profile(record)
    except (KeyError, TypeError, ValueError) as error:
        customer = record.get("customer_id")
        raise AudienceError([f"row {position + 1} (customer {customer!r}): {error}"]) from None


def decision_rows(decision: Decision, timezone: str) -> list[dict[str, Any]]:
    """The rows of one decision (a single empty row when nothing was eligible)."""
    base = {
        "customer_id": decision.customer_id,
        "decision_id": decision.decision_id,
        "policy": decision.policy,
        "decided_at": decision.decided_at,
        "timezone": timezone,
        "eligible_actions": len(decision.eligible_action_ids),
    }
    if not decision.actions:
        return [
            {
                **dict.fromkeys(DECISION_COLUMNS),
                **base,
                "explored": False,
                "reasons": "nothing eligible: " + _first_rejections(decision),
            }
        ]
    rows = []
    for rank, action in enumerate(decision.actions):
        chosen = (
            decision.explanation.chosen[rank] if rank < len(decision.explanation.chosen) else None
        )
        reasons = (
            ""
            if chosen is None
            else "; ".join(
                [chosen.summary, *(f.detail for f in chosen.factors if f.name != "priority")]
            )
        )
        rows.append(
            {
                **base,
                "rank": rank,
                "action_id": action.action_id,
                "action_type": action.action_type.value,
                "channel": None if action.channel is None else action.channel.value,
                "send_at_utc": action.send_at,
                "send_at_local": None
                if action.send_at_local is None
                else action.send_at_local.isoformat(),
                "offer_id": action.offer_id,
                "offer_expires_at": action.offer_expires_at,
                "template": action.template,
                "variant_id": action.variant_id,
                "priority": action.priority,
                "propensity": action.propensity,
                "explored": action.explored,
                "reasons": reasons,
            }
        )
    return rows


def _first_rejections(decision: Decision, n: int = 3) -> str:
    return (
        "; ".join(str(r) for r in decision.explanation.rejected[:n]) or "no action in the catalog"
    )


def contacts_only(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that reach a customer (no ``do_nothing``, no empty decisions)."""
    keep = table["channel"].notna() & (table["action_type"] != ActionType.DO_NOTHING.value)
    return table[keep].reset_index(drop=True)


#: The job and audience shared with forked workers (set only while a pool runs).
_SHARED: tuple[_Job, list[Any]] | None = None


def _decide_shared(task: tuple[int, int, UsageCounts]) -> list[dict[str, Any]]:
    if _SHARED is None:
        raise RuntimeError("no audience was shared with this worker")
    job, items = _SHARED
    lo, hi, usage = task
    return job.decide(items, lo, hi, usage)
