"""The online store interface and the in-memory implementation.

A store keeps, per customer, the profile *state* (see :mod:`features.state`),
the customer's static attributes, and the ids of recent events for
de-duplication. Applying events is idempotent by event id and independent of
arrival order, within a replay window:

* an event older than the customer's *watermark* (the moment their state was
  materialised from batch) is already included and is skipped as ``stale``;
* an event more than ``replay_window`` older than the customer's newest event
  is refused as ``late``: its id may have been forgotten, so applying it could
  count it twice;
* otherwise an event id seen before is a ``duplicate`` and changes nothing.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from features.definitions import FAMILIES, SECONDS_PER_DAY, Op
from features.finalise import ChannelPrior, CustomerStatic, FeaturePriors
from features.state import State, apply_op, stored_state

DEFAULT_REPLAY_WINDOW_SECONDS = 7 * SECONDS_PER_DAY


@dataclass(frozen=True)
class EventOps:
    """The ops of one event for one customer: ``ops`` are ``(field, value)`` pairs."""

    customer_id: str
    event_id: str
    ts: int
    ops: tuple[tuple[str, float], ...]


@dataclass
class ApplyResult:
    """What happened to a batch of events."""

    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    late: int = 0
    late_event_ids: list[str] = field(default_factory=list)
    #: Events with a value the store cannot hold (not finite): refused whole, nothing written.
    invalid: int = 0
    invalid_event_ids: list[str] = field(default_factory=list)
    #: Replies of the scripts run with the events (``RedisOnlineStore.apply(scripts=...)``).
    script_replies: list[Any] = field(default_factory=list)

    def add(self, other: ApplyResult) -> None:
        self.applied += other.applied
        self.duplicate += other.duplicate
        self.stale += other.stale
        self.late += other.late
        self.late_event_ids.extend(other.late_event_ids)
        self.invalid += other.invalid
        self.invalid_event_ids.extend(other.invalid_event_ids)


#: A Lua script to run beside a batch of events: its text, keys and arguments.
ScriptCall = tuple[str, Sequence[Any], Sequence[Any]]


def storable(event: EventOps) -> bool:
    """Whether every value of ``event`` is finite (a store refuses the event otherwise)."""
    return math.isfinite(event.ts) and all(math.isfinite(v) for _, v in event.ops)


@dataclass(frozen=True)
class StoredCustomer:
    """A customer as the store holds them."""

    customer_id: str
    state: Mapping[str, float]  # the online store's is a SplitState (features.finalise)
    static: CustomerStatic
    #: the seasonal verdict stored for a day (:func:`features.seasonality.stored_verdict`),
    #: when the reader fetched it; used only if computed from this state and day
    season: str | None = None


def priors_to_json(priors: FeaturePriors) -> str:
    return json.dumps(
        {
            "channels": {
                seg: {ch: vars(p) for ch, p in chans.items()}
                for seg, chans in priors.channels.items()
            },
            "promo_share": priors.promo_share,
            "new_product_share": priors.new_product_share,
            "month_activity": list(priors.month_activity),
            "season_prior": list(priors.season_prior),
            **{name: getattr(priors, name) for name in _TRIGGER_PRIORS},
        },
        sort_keys=True,
    )


def priors_from_json(text: str) -> FeaturePriors:
    raw = json.loads(text)
    return FeaturePriors(
        channels={
            seg: {ch: ChannelPrior(**p) for ch, p in chans.items()}
            for seg, chans in raw["channels"].items()
        },
        promo_share=raw["promo_share"],
        new_product_share=raw["new_product_share"],
        # priors written before the store's seasonality was estimated: a flat year
        month_activity=tuple(raw.get("month_activity", FeaturePriors().month_activity)),
        season_prior=tuple(raw.get("season_prior", FeaturePriors().season_prior)),
        # priors written before the trigger rates were estimated: none known
        **{name: float(raw.get(name, 0.0)) for name in _TRIGGER_PRIORS},
    )


#: The store's rates of trigger days and their weights (features.finalise.trigger_prior).
_TRIGGER_PRIORS = ("browse_left_rate", "browse_left_weight", "cart_left_rate", "cart_left_weight")


def op_code(field_name: str) -> Op:
    return FAMILIES[field_name.partition(":")[0]].op


class OnlineStore(abc.ABC):
    """Where online profiles live. Implementations must pass ``tests/test_online_store.py``."""

    replay_window_seconds: int = DEFAULT_REPLAY_WINDOW_SECONDS

    @abc.abstractmethod
    def materialise(
        self,
        states: Mapping[str, State],
        statics: Mapping[str, CustomerStatic],
        watermark: dt.datetime,
    ) -> int:
        """Replace the state of these customers with batch state known before ``watermark``."""

    @abc.abstractmethod
    def apply(self, events: Sequence[EventOps]) -> ApplyResult:
        """Apply events' ops, each at most once."""

    @abc.abstractmethod
    def read(self, customer_ids: Sequence[str]) -> list[StoredCustomer | None]:
        """The stored customers, ``None`` for unknown ones, in order."""

    @abc.abstractmethod
    def upsert_static(self, customer_id: str, static: CustomerStatic) -> None:
        """Set a customer's static attributes (identify, sign-up)."""

    @abc.abstractmethod
    def customer_ids(self) -> Iterator[str]:
        """Every customer the store holds (in no particular order)."""

    @abc.abstractmethod
    def write_verdicts(self, verdicts: Mapping[str, str]) -> None:
        """Keep each customer's seasonal verdict of a day (the text of
        :func:`features.seasonality.stored_verdict`); :meth:`read` returns it as
        :attr:`StoredCustomer.season`."""

    @abc.abstractmethod
    def statics(self, customer_ids: Iterable[str]) -> dict[str, CustomerStatic]:
        """The static attributes of these customers, for those the store knows (one read
        each, without building their state)."""

    def timezones(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """Known time zones of these customers (of their :meth:`statics`)."""
        return {c: s.timezone for c, s in self.statics(customer_ids).items() if s.zone_known}

    @abc.abstractmethod
    def write_priors(self, priors: FeaturePriors) -> None: ...

    @abc.abstractmethod
    def read_priors(self) -> FeaturePriors: ...

    @abc.abstractmethod
    def delete(self, customer_id: str) -> bool:
        """Forget a customer entirely (right to erasure). True if they existed."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the store answers."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryOnlineStore(OnlineStore):
    """An in-process store with the same semantics as Redis, for simulations and
    single-process batch runs. Not shared between processes."""

    def __init__(self, replay_window_seconds: int = DEFAULT_REPLAY_WINDOW_SECONDS):
        self.replay_window_seconds = replay_window_seconds
        self._states: dict[str, State] = {}
        self._statics: dict[str, CustomerStatic] = {}
        self._seen: dict[str, dict[str, int]] = {}
        self._watermark: dict[str, float] = {}
        self._newest: dict[str, float] = {}
        self._priors = FeaturePriors()
        self._verdicts: dict[str, str] = {}

    def materialise(self, states, statics, watermark):
        cut = watermark.timestamp()
        ids = set(states) | set(statics)
        for cid in ids:
            self._states[cid] = stored_state(dict(states.get(cid, {})), cut)
            if cid in statics:
                self._statics[cid] = statics[cid]
            self._seen[cid] = {}
            self._watermark[cid] = cut
            self._newest[cid] = cut
        return len(ids)

    def apply(self, events: Sequence[EventOps]) -> ApplyResult:
        result = ApplyResult()
        advanced: set[str] = set()
        for ev in events:
            cid = ev.customer_id
            newest = self._newest.get(cid, -float("inf"))
            if not storable(ev):
                result.invalid += 1
                result.invalid_event_ids.append(ev.event_id)
                continue
            if ev.ts < self._watermark.get(cid, -float("inf")):
                result.stale += 1
                continue
            if ev.ts < newest - self.replay_window_seconds:
                result.late += 1
                result.late_event_ids.append(ev.event_id)
                continue
            seen = self._seen.setdefault(cid, {})
            if ev.event_id in seen:
                result.duplicate += 1
                continue
            seen[ev.event_id] = ev.ts
            state = self._states.setdefault(cid, {})
            for f, v in ev.ops:
                apply_op(state, f, v)
            result.applied += 1
            if ev.ts > newest:
                self._newest[cid] = ev.ts
                advanced.add(cid)
        # forget ids older than the replay window once per batch, as the Redis script does
        for cid in advanced:
            horizon = self._newest[cid] - self.replay_window_seconds
            self._seen[cid] = {k: t for k, t in self._seen[cid].items() if t >= horizon}
        return result

    def read(self, customer_ids):
        out: list[StoredCustomer | None] = []
        for cid in customer_ids:
            if cid not in self._states and cid not in self._statics:
                out.append(None)
                continue
            out.append(
                StoredCustomer(
                    cid,
                    dict(self._states.get(cid, {})),
                    self._statics.get(cid, CustomerStatic(zone_known=False)),
                    self._verdicts.get(cid),
                )
            )
        return out

    def customer_ids(self) -> Iterator[str]:
        yield from dict.fromkeys([*self._states, *self._statics])

    def write_verdicts(self, verdicts: Mapping[str, str]) -> None:
        self._verdicts.update(verdicts)

    def upsert_static(self, customer_id: str, static: CustomerStatic) -> None:
        self._statics[customer_id] = static
        self._states.setdefault(customer_id, {})

    def statics(self, customer_ids):
        out = {}
        for c in customer_ids:
            static = self._statics.get(c)
            if static is not None:
                out[c] = static
            elif c in self._states:
                out[c] = CustomerStatic(zone_known=False)
        return out

    def write_priors(self, priors: FeaturePriors) -> None:
        self._priors = priors_from_json(priors_to_json(priors))

    def read_priors(self) -> FeaturePriors:
        return self._priors

    def delete(self, customer_id: str) -> bool:
        existed = customer_id in self._states or customer_id in self._statics
        tables = (self._states, self._statics, self._seen, self._watermark, self._newest)
        for table in (*tables, self._verdicts):
            table.pop(customer_id, None)
        return existed

    def ping(self) -> bool:
        return True
