"""benchmarks/trigger_holds.py's organic triggers (trig12): the world's own sessions that
make a browse reminder's rule hold, read from contract events, whatever a policy does."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from benchmarks.trigger_holds import organic_came, organic_triggers
from cli.decide import load_catalog
from nba.reserve import trigger_hours
from tests.helpers import START, events_frame

HOUR = 3_600
EVENING = tuple(12 <= h < 22 for h in range(24))  # the seed catalog's evening reminder's


def test_two_minutes_of_views_and_no_cart_make_a_trigger_at_the_last_view() -> None:
    events = events_frame(
        [
            # C1: two views at 14:00 local (Paris: 13:00 UTC): a trigger at the second
            ("C1", 13 * HOUR, ("web", "product_view"), "P1", None),
            ("C1", 13 * HOUR + 60, ("web", "product_view"), "P2", None),
            # C2: the same, but an add-to-cart in the same 24 hours: none
            ("C2", 13 * HOUR, ("web", "product_view"), "P1", None),
            ("C2", 13 * HOUR + 60, ("web", "product_view"), "P2", None),
            ("C2", 13 * HOUR + 90, ("web", "add_to_cart"), "P2", None),
            # C3: one view (a minute): none; a second view 25 hours later: still one minute
            ("C3", 13 * HOUR, ("web", "product_view"), "P1", None),
            ("C3", 38 * HOUR, ("web", "product_view"), "P1", None),
        ]
    )
    found = organic_triggers(events, {"C1": "Europe/Paris", "C2": "UTC", "C3": "UTC"})
    assert set(found) == {"C1"}
    times, hours = found["C1"]
    second = (START + pd.Timedelta(seconds=13 * HOUR + 60)).timestamp()
    assert times.tolist() == [second] and hours.tolist() == [14]
    start = START.to_pydatetime()
    assert organic_came(found, "C1", start, start + dt.timedelta(hours=14), EVENING)
    # the window is (start, end]: a trigger at its start is not in it
    at = dt.datetime.fromtimestamp(second, dt.UTC)
    assert not organic_came(found, "C1", at, at + dt.timedelta(hours=1), EVENING)
    # only at the hours at which the reminder's rule can hold
    mornings = tuple(h < 12 for h in range(24))
    assert not organic_came(found, "C1", start, start + dt.timedelta(hours=14), mornings)
    assert not organic_came(found, "C2", start, start + dt.timedelta(days=3), EVENING)


def test_the_hours_are_the_reminders_own() -> None:
    catalog = load_catalog(None)  # the seed catalog
    assert trigger_hours(catalog["browse_reminder_evening"]) == EVENING
