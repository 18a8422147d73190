"""The decision history read from earlier ``nba decide`` files (``--history``): what it
counts as sent, as a contact and as today's usage, as the API's Redis counts them."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pandas as pd

from nba.channels import Channel
from serving.batch_history import DecidedHistory

NOW = dt.datetime(2026, 3, 6, 23, 30, tzinfo=dt.UTC)  # 00:30 on the 7th in Paris
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def decisions(*rows: tuple[str, str, str, str | None, str | None, str]) -> pd.DataFrame:
    """(customer, decision, action, channel, offer, decided at) rows; sends at 18:00 UTC
    the day of the decision for outbound channels."""
    frame = pd.DataFrame(
        rows, columns=["customer_id", "decision_id", "action_id", "channel", "offer_id", "at"]
    )
    frame["decided_at"] = pd.to_datetime(frame.pop("at"), utc=True)
    frame["action_type"] = ["do_nothing" if a == "nothing" else "content" for a in frame.action_id]
    frame["send_at_utc"] = frame["decided_at"].dt.floor("D") + pd.Timedelta(hours=18)
    frame.loc[frame["channel"].isna(), "send_at_utc"] = pd.NaT
    return frame


ACTIONS = {"hello", "picks", "gift", "nothing"}


def test_what_is_sent_counted_and_used() -> None:
    frame = decisions(
        ("C1", "d1", "hello", "email", None, "2026-03-06T09:00:00Z"),
        ("C1", "d2", "picks", "app", None, "2026-03-06T10:00:00Z"),  # placed in the app
        ("C2", "d3", "gift", "sms", "o10", "2026-03-06T23:10:00Z"),  # the 7th in Paris
        ("C2", "d4", "nothing", None, None, "2026-03-06T09:00:00Z"),
        ("C3", "d5", "hello", "email", None, "2026-03-07T09:00:00Z"),  # after the run's moment
    )
    history = DecidedHistory.of([("a.parquet", frame), ("a.parquet", frame)], ACTIONS, NOW)
    # a placement is no message: no cool-down from it, but a contact on its channel
    assert history.sent == {
        "C1": {"hello": dt.datetime(2026, 3, 6, 18, tzinfo=dt.UTC)},
        "C2": {"gift": dt.datetime(2026, 3, 6, 18, tzinfo=dt.UTC)},
    }
    assert [c.channel for c in history.contacts["C1"]] == [Channel.EMAIL, Channel.APP]
    assert "C3" not in history.contacts
    # the same file twice counts once; the retailer's day, not UTC's
    assert history.usage(dt.date(2026, 3, 7), PARIS).offers_given == {"o10": 1}
    assert history.usage(dt.date(2026, 3, 6), PARIS).actions_sent == {"hello": 1, "picks": 1}
    # the contacts the profiles built at 12:00 cannot hold yet
    since = history.own_contacts_since(dt.datetime(2026, 3, 6, 12, tzinfo=dt.UTC))
    found = since(["C1", "C2", "C9"], NOW)
    assert {c: [x.decision_id for x in found[c]] for c in found} == {
        "C1": ["d1", "d2"],
        "C2": ["d3"],
    }
    # those sent before the profiles were built are in their message_sent counts already
    assert history.own_contacts_since(dt.datetime(2026, 3, 6, 19, tzinfo=dt.UTC))(["C1"], NOW) == {}
