"""The closed loop's online store: the memory store with each customer's state kept split.

A decision builds the customer's profile from their state
(:func:`features.finalise.build_profile`), which reads it as scalars and keyed families
(:func:`features.finalise.split_state`). :class:`~features.online.store.MemoryOnlineStore`
keeps a flat ``{"np": 3.0, "pd:20512": 1.0}`` dict per customer, so every read copied it and
every profile build split it again, name by name: at every daily tick, for every customer
of every policy (~15 % of a profile build, ~3 % of a policy's CPU). Here the state is held
split as events are applied (the ops of an event are a few fields; a state is a few
hundred), and a read hands out a copy of the parts, as the Redis store's decoder hands out
a :class:`~features.finalise.SplitState`: the same profile, field for field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from sys import intern

from features.finalise import CustomerStatic, SplitState, split_state
from features.online.store import MemoryOnlineStore, StoredCustomer
from features.state import fold_shopping_days, trim_state

_ZONE_UNKNOWN = CustomerStatic(zone_known=False)


class SplitStateStore(MemoryOnlineStore):
    """:class:`~features.online.store.MemoryOnlineStore` whose states are held split
    (:class:`MutableSplitState`) and read as :class:`~features.finalise.SplitState` copies.

    Everything else (replays, stale and late events, statics, verdicts) is the memory
    store's. Reads agree with the memory store's after the same calls: the same scalars
    and families, in the same order (tested), so the same profiles.
    """

    def materialise(
        self,
        states: Mapping[str, Mapping[str, float]],
        statics: Mapping[str, CustomerStatic],
        watermark: dt.datetime,
    ) -> int:
        """As the memory store's, each state split as it is stored (not all of them flat
        first: the parent the policies fork from would keep both at its peak)."""
        cut = watermark.timestamp()
        ids = set(states) | set(statics)
        for cid in ids:
            flat = fold_shopping_days(trim_state(dict(states.get(cid, {})), cut), cut)
            # held where the memory store holds a flat dict: read and written only as
            # features.state.apply_op does (get, item assignment) and by this class
            self._states[cid] = MutableSplitState.of(flat)  # type: ignore[assignment]
            if cid in statics:
                self._statics[cid] = statics[cid]
            self._seen[cid] = {}
            self._watermark[cid] = cut
            self._newest[cid] = cut
        return len(ids)

    def upsert_static(self, customer_id: str, static: CustomerStatic) -> None:
        self._statics[customer_id] = static
        if customer_id not in self._states:
            self._states[customer_id] = MutableSplitState({}, {})  # type: ignore[assignment]

    def read(self, customer_ids: Sequence[str]) -> list[StoredCustomer | None]:
        out: list[StoredCustomer | None] = []
        states, statics, verdicts = self._states, self._statics, self._verdicts
        for cid in customer_ids:
            state = states.get(cid)
            if state is None and cid not in statics:
                out.append(None)
                continue
            out.append(
                StoredCustomer(
                    cid, _copy(state), statics.get(cid, _ZONE_UNKNOWN), verdicts.get(cid)
                )
            )
        return out


class MutableSplitState(SplitState):
    """A split state that events are applied to in place (``get`` and item assignment, as
    :func:`features.state.apply_op` uses a flat state). A new field goes last in its
    family, a new family last among the families, a new scalar last among the scalars:
    where :func:`~features.finalise.split_state` of the flat state, which gains the field
    last, puts it. Names are interned: the same few hundred keys (days, hours of the week,
    categories) and families in every customer's state are one string each, not one per
    customer (a split state of ~90 fields ~5 KB, against ~7 KB flat with its names).

    >>> state = MutableSplitState.of({"np": 1.0, "pd:1": 1.0})
    >>> state["pd:2"] = 2.0; state["rv"] = 5.0; state["c:shoes"] = 0.5
    >>> state.get("pd:2"), state.get("pd:3"), state.get("np")
    (2.0, None, 1.0)
    >>> split_state(dict(state)) == (state.scalars, state.keyed)
    True
    """

    __slots__ = ()

    @classmethod
    def of(cls, flat: Mapping[str, float]) -> MutableSplitState:
        """``flat`` split (:func:`~features.finalise.split_state`), names interned."""
        state = cls({}, {})
        for name, value in flat.items():
            state[name] = value
        return state

    def get(self, name: str, default: float | None = None) -> float | None:  # type: ignore[override]
        family, sep, key = name.partition(":")
        if not sep:
            return self.scalars.get(name, default)
        entries = self.keyed.get(family)
        return default if entries is None else entries.get(key, default)

    def __setitem__(self, name: str, value: float) -> None:
        family, sep, key = name.partition(":")
        if sep:
            entries = self.keyed.get(family)
            if entries is None:
                entries = self.keyed[intern(family)] = {}
            entries[intern(key)] = value
        else:
            self.scalars[intern(name)] = value


def _copy(state: Mapping[str, float] | None) -> SplitState:
    """What a read hands out: the state's parts copied (a profile may keep a family's
    dict; the loop applies later events to the held one)."""
    if state is None:
        return SplitState({}, {})
    if isinstance(state, SplitState):
        return SplitState(
            dict(state.scalars), {family: dict(e) for family, e in state.keyed.items()}
        )
    return SplitState(*split_state(state))  # a flat state: a customer the store met by event
