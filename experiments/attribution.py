"""Attribution: which decisions earn the credit for an outcome.

An *exposure* is a chosen action that reached the customer: a row of the
decision log (:func:`experiments.decision_log.read_decision_log`) with a
channel and a send time (``do_nothing`` is not an exposure), unless a later
decision withdrew its message before it went (``withdrawn``, the later record's
``replaces``: :mod:`nba.supersession`): a message never sent earns no credit. An *outcome* is a
contract event (:data:`features.contract.EVENTS`) of one of
:data:`OUTCOME_EVENTS` (purchases carry ``revenue``).

Two rules link them, in this order:

* **direct**: the event carries the ``decision_id`` of an exposure (a click
  through the message, a coupon code) and happened at or after its send time:
  that decision gets all the credit (split evenly between its actions when it
  chose several);
* **window**: otherwise, every exposure of the same customer sent in the
  ``window`` before the event (``send_at <= timestamp < send_at + window``)
  shares the credit by the chosen model:

  - ``last_touch``: all to the latest exposure;
  - ``position_based`` (40/20/40): 40 % to the first, 40 % to the last, 20 %
    spread over those in between (one exposure: 100 %; two: 50/50).

Events with no exposure in their window stay unattributed (organic).

>>> import datetime as dt
>>> t = pd.Timestamp("2026-03-06T09:00:00Z")
>>> exposures = pd.DataFrame({"decision_id": ["d1", "d2", "d3"], "customer_id": ["C1"] * 3,
...     "arm": "engine", "action_id": ["a", "b", "c"], "channel": ["email", "sms", "push"],
...     "send_at": [t, t + pd.Timedelta(hours=1), t + pd.Timedelta(hours=2)]})
>>> events = pd.DataFrame({"event_id": ["e1"], "customer_id": ["C1"],
...     "timestamp": [t + pd.Timedelta(hours=5)], "channel": ["web"], "event_type": ["purchase"],
...     "decision_id": [None], "revenue": [100.0]})
>>> credit = attribute(exposures, events, window=dt.timedelta(days=7), model="position_based")
>>> credit[["channel", "credit", "revenue"]].values.tolist()
[['email', 0.4, 40.0], ['sms', 0.2, 20.0], ['push', 0.4, 40.0]]
>>> attribute(exposures, events, window=dt.timedelta(days=7))["channel"].tolist()
['push']
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from nba.events import EventType

AttributionModel = Literal["last_touch", "position_based"]
MODELS: tuple[AttributionModel, ...] = ("last_touch", "position_based")

#: Event types that are outcomes of a message.
OUTCOME_EVENTS: tuple[str, ...] = tuple(
    e.value
    for e in (
        EventType.PURCHASE,
        EventType.MESSAGE_OPENED,
        EventType.MESSAGE_CLICKED,
        EventType.UNSUBSCRIBE,
        EventType.COMPLAINT,
        EventType.SMS_STOP,
    )
)

#: Columns of :func:`attribute`, one row per (outcome event, credited exposure).
CREDIT_COLUMNS = (
    "event_id",
    "event_type",
    "customer_id",
    "timestamp",
    "decision_id",
    "arm",
    "action_id",
    "channel",
    "send_at",
    "rule",
    "credit",
    "revenue",
)


def exposures_of(decisions: pd.DataFrame) -> pd.DataFrame:
    """The exposures in a decision-log frame: rows with a channel and a send time, whose
    message was not withdrawn (a ``withdrawn`` column, when the frame has one)."""
    sent = decisions["channel"].notna() & decisions["send_at"].notna()
    if "withdrawn" in decisions:
        sent &= ~decisions["withdrawn"].fillna(False).astype(bool)
    return decisions[sent].reset_index(drop=True)


def attribute(
    exposures: pd.DataFrame,
    events: pd.DataFrame,
    *,
    window: dt.timedelta,
    model: AttributionModel = "last_touch",
) -> pd.DataFrame:
    """Credit each outcome event to exposures (see the module doc).

    Parameters
    ----------
    exposures
        ``decision_id``, ``customer_id``, ``arm``, ``action_id``, ``channel``,
        ``send_at`` (UTC), e.g. :func:`exposures_of` a decision log.
    events
        Contract events; those of :data:`OUTCOME_EVENTS` are attributed. A
        missing ``decision_id`` column means window attribution only.
    window
        How long after its send an exposure can earn credit.
    model
        ``"last_touch"`` or ``"position_based"`` (40/20/40), for window credit.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CREDIT_COLUMNS`; ``credit`` sums to 1 per attributed
        event and ``revenue`` is the event's revenue times the credit.
    """
    if model not in MODELS:
        raise ValueError(f"unknown attribution model {model!r} (expected one of: {MODELS})")
    if window <= dt.timedelta(0):
        raise ValueError(f"the attribution window must be positive, got {window}")
    outcomes = events[events["event_type"].astype(str).isin(OUTCOME_EVENTS)].copy()
    if outcomes.empty or exposures.empty:
        return pd.DataFrame(columns=list(CREDIT_COLUMNS))
    outcomes["timestamp"] = pd.to_datetime(outcomes["timestamp"], utc=True)
    outcomes["revenue"] = (
        outcomes["revenue"].astype(float).fillna(0.0) if "revenue" in outcomes else 0.0
    )
    if "decision_id" not in outcomes:
        outcomes["decision_id"] = None
    outcomes = outcomes[
        ["event_id", "event_type", "customer_id", "timestamp", "decision_id", "revenue"]
    ].rename(columns={"decision_id": "event_decision_id"})
    exposed = exposures[["decision_id", "customer_id", "arm", "action_id", "channel", "send_at"]]
    exposed = exposed.assign(send_at=pd.to_datetime(exposed["send_at"], utc=True))

    direct = outcomes.merge(
        exposed.drop(columns="customer_id"),
        left_on="event_decision_id",
        right_on="decision_id",
        how="inner",
    )
    direct = direct[direct["timestamp"] >= direct["send_at"]]
    direct = direct.assign(
        rule="direct", credit=1.0 / direct.groupby("event_id")["decision_id"].transform("size")
    )

    rest = outcomes[~outcomes["event_id"].isin(direct["event_id"])]
    pairs = rest.merge(exposed, on="customer_id", how="inner")
    lag = pairs["timestamp"] - pairs["send_at"]
    pairs = pairs[(lag >= pd.Timedelta(0)) & (lag < pd.Timedelta(window))]
    pairs = pairs.sort_values(["event_id", "send_at", "decision_id"], kind="stable")
    pairs = pairs.assign(rule="window", credit=_credits(pairs["event_id"], model))
    pairs = pairs[pairs["credit"] > 0]

    credited = pd.concat([direct, pairs], ignore_index=True)
    credited["revenue"] = credited["revenue"] * credited["credit"]
    return credited[list(CREDIT_COLUMNS)].reset_index(drop=True)


def _credits(event_ids: pd.Series, model: AttributionModel) -> np.ndarray:
    """Each touch's share of its event, touches sorted by send time within an event."""
    groups = event_ids.groupby(event_ids, sort=False)
    position = groups.cumcount().to_numpy()
    count = groups.transform("size").to_numpy()
    last = position == count - 1
    if model == "last_touch":
        return last.astype(float)
    credit = np.where(count == 1, 1.0, np.where(count == 2, 0.5, 0.0))
    many = count >= 3
    ends = many & ((position == 0) | last)
    middle = many & ~ends
    credit = np.where(ends, 0.4, credit)
    credit = np.where(middle, 0.2 / np.maximum(count - 2, 1), credit)
    return credit


def credit_by_channel(credited: pd.DataFrame) -> pd.DataFrame:
    """Credited outcomes per arm and channel: ``conversions`` (credited purchases),
    ``revenue``, ``clicks``, ``unsubscribes`` and ``complaints`` (credit-weighted)."""
    frame = credited.assign(
        conversions=np.where(
            credited["event_type"] == EventType.PURCHASE.value, credited["credit"], 0.0
        ),
        clicks=np.where(
            credited["event_type"] == EventType.MESSAGE_CLICKED.value, credited["credit"], 0.0
        ),
        unsubscribes=np.where(
            credited["event_type"].isin([EventType.UNSUBSCRIBE.value, EventType.SMS_STOP.value]),
            credited["credit"],
            0.0,
        ),
        complaints=np.where(
            credited["event_type"] == EventType.COMPLAINT.value, credited["credit"], 0.0
        ),
    )
    frame["arm"] = frame["arm"].fillna("(none)")
    columns = ["conversions", "revenue", "clicks", "unsubscribes", "complaints"]
    if frame.empty:
        return pd.DataFrame(columns=["arm", "channel", *columns])
    return frame.groupby(["arm", "channel"], as_index=False)[columns].sum()
