"""Training examples of the decision models: past sends with point-in-time profiles.

The channel propensity and offer uplift models learn from the history's
``message_sent`` events. :func:`message_sends` lists them with whether each was
engaged (opened or clicked within :data:`ENGAGEMENT_WINDOW`);
:func:`sample_rows` caps how many get profiles; :func:`contact_examples` gives
each the customer's profile values as known just before the send, as columns
(:func:`features.point_in_time.point_in_time_columns`, so no later event leaks
in), and its local hour of week, as :class:`ContactExamples`.

>>> reference_moment(24 + 18).strftime("%A %H:%M")
'Tuesday 18:00'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.dataset import RetailDataset
from features.definitions import epoch_seconds, local_parts
from features.finalise import FeaturePriors
from features.point_in_time import ProfileColumns, point_in_time_columns
from nba.events import EventType
from nba.profile import CustomerProfile

Report = Callable[[str], None]

#: An open or click this long after a send (and before the next send on the channel) engages it.
ENGAGEMENT_WINDOW = pd.Timedelta(days=3)
#: Events that count as engagement with a message.
ENGAGEMENT_EVENTS = (EventType.MESSAGE_OPENED.value, EventType.MESSAGE_CLICKED.value)
#: At most this many sends get point-in-time profiles (a random sample beyond it).
DEFAULT_MAX_EXAMPLES = 60_000


def message_sends(events: pd.DataFrame) -> pd.DataFrame:
    """Every ``message_sent`` with whether it was engaged (opened or clicked in the window).

    Returns columns ``customer_id, timestamp, channel, offer_id, engaged``, in time order.
    """
    kinds = events["event_type"]
    sends = events.loc[
        kinds == EventType.MESSAGE_SENT.value, ["customer_id", "timestamp", "channel", "offer_id"]
    ]
    sends = sends.sort_values("timestamp", kind="stable").reset_index(drop=True)
    sends["customer_id"] = sends["customer_id"].astype(str)
    sends["channel"] = sends["channel"].astype(str)
    responses = events.loc[kinds.isin(ENGAGEMENT_EVENTS), ["customer_id", "timestamp", "channel"]]
    responses = responses.sort_values("timestamp", kind="stable").reset_index(drop=True)
    responses["customer_id"] = responses["customer_id"].astype(str)
    responses["channel"] = responses["channel"].astype(str)
    engaged = np.zeros(len(sends), dtype=bool)
    if len(sends) and len(responses):
        left = sends.assign(send_row=np.arange(len(sends)), sent_at=sends["timestamp"])
        matched = pd.merge_asof(
            responses,
            left[["customer_id", "channel", "timestamp", "send_row", "sent_at"]],
            on="timestamp",
            by=["customer_id", "channel"],
            direction="backward",
        ).dropna(subset=["send_row"])
        within = matched["timestamp"] - matched["sent_at"] <= ENGAGEMENT_WINDOW
        engaged[matched.loc[within, "send_row"].astype(int).to_numpy()] = True
    return sends.assign(engaged=engaged)


def local_hours_of_week(data: RetailDataset, rows: pd.DataFrame) -> np.ndarray:
    """Local hour of week (Monday 00:00 = 0) of each row's ``timestamp`` in its customer's zone."""
    zones = data.customers.set_index("customer_id")["timezone"].astype(str)
    tz = rows["customer_id"].map(zones).fillna("UTC").to_numpy(dtype=object)
    how, _ = local_parts(epoch_seconds(rows["timestamp"]), tz)
    return how


def sample_rows(rows: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows (a seeded random sample, kept in time order)."""
    if max_rows is None or len(rows) <= max_rows:
        return rows.reset_index(drop=True)
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False))
    return rows.iloc[keep].reset_index(drop=True)


@dataclass(frozen=True)
class ContactExamples:
    """Sends with their point-in-time profile columns and local send hours (one per row)."""

    rows: pd.DataFrame  # customer_id, timestamp, channel, offer_id, engaged, ...
    columns: ProfileColumns
    hour_of_week: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.rows) == len(self.columns) == len(self.hour_of_week)):
            raise ValueError("rows, columns and hour_of_week must have one entry per send")

    @classmethod
    def of_profiles(
        cls, rows: pd.DataFrame, profiles: list[CustomerProfile], hour_of_week: np.ndarray
    ) -> ContactExamples:
        """Examples whose profiles are already built (one per row)."""
        return cls(rows, ProfileColumns.of_profiles(profiles), hour_of_week)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, mask: np.ndarray) -> ContactExamples:
        idx = np.flatnonzero(mask)
        return ContactExamples(
            self.rows.iloc[idx].reset_index(drop=True),
            self.columns.take(idx),
            self.hour_of_week[idx],
        )

    def with_rows(self, rows: pd.DataFrame) -> ContactExamples:
        """The same examples with ``rows`` (one per example, e.g. with a column added)."""
        return ContactExamples(rows, self.columns, self.hour_of_week)


_REFERENCE_MONDAY = dt.datetime(2026, 1, 5)


def reference_moment(hour_of_week: int) -> dt.datetime:
    """A local moment at ``hour_of_week`` (Monday 00:00 = 0) of a fixed reference week."""
    return _REFERENCE_MONDAY + dt.timedelta(hours=hour_of_week)


def contact_examples(
    data: RetailDataset,
    rows: pd.DataFrame,
    priors: FeaturePriors | None = None,
    report: Report | None = None,
    workers: int | None = None,
) -> ContactExamples:
    """Point-in-time profile columns of ``rows`` (``customer_id``, ``timestamp``, ...),
    cut in ``workers`` processes (``None``: one per core) when there are many."""
    return shared_examples(data, [rows], priors, report, workers)[0]


def shared_examples(
    data: RetailDataset,
    row_sets: Sequence[pd.DataFrame],
    priors: FeaturePriors | None = None,
    report: Report | None = None,
    workers: int | None = None,
) -> list[ContactExamples]:
    """:func:`contact_examples` of each set of rows, from one point-in-time cut of them all
    (the ops of the customers' events are made and sorted once, not once per set): the
    examples of each set are those it gets on its own, value for value."""
    stacked = pd.concat(
        [r[["customer_id", "timestamp"]] for r in row_sets], ignore_index=True
    ).reset_index(drop=True)
    if report:
        report(f"point-in-time profiles of {len(stacked):,} sends")
    columns = point_in_time_columns(data, stacked, priors=priors, workers=workers)
    hours = local_hours_of_week(data, stacked)
    out, start = [], 0
    for rows in row_sets:
        index = np.arange(start, start + len(rows))
        out.append(ContactExamples(rows.reset_index(drop=True), columns.take(index), hours[index]))
        start += len(rows)
    return out
