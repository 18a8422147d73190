"""Supersession through the API (:mod:`nba.supersession`, issue 12): a message decided
and scheduled gives way to a better one that comes up before it goes.

The weekly picks are decided at the morning's pass and scheduled by e-mail for later
in the day; the customer then browses; asked again, the API answers the browse
reminder, names the decision it replaces (``replaces``) and withdraws the picks in the
same request (their decided contact, history and budgets given back), so the caps
count the reminder alone. With ``supersede_lead_minutes`` unset (the default) nothing
is replaced: ``replaces`` is empty and the picks hold the channel. Built from raw
contract events through the real feature code, on a real app and a real Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.decision_log import read_log
from features.dataset import RetailDataset
from nba.decision import LoggedDecision
from serving.settings import EXAMPLES
from tests.api_support import redis_client
from tests.test_scenarios_api import (
    PARIS,
    Shop,
    codes,
    contacts,
    event,
    local,
    open_shop,
    send_utc,
)

DWELL = {"properties": {"dwell_seconds": 600}}


def _policy(root: Path, lead: float | None) -> Path:
    text = (EXAMPLES / "contact_policy.yaml").read_text()
    if lead is not None:
        text += f"\nsupersede_lead_minutes: {lead:g}\nsupersede_margin: 0.01\n"
    path = root / "contact_policy.yaml"
    path.write_text(text)
    return path


@contextlib.contextmanager
def _opened(
    base: RetailDataset, root: Path, lead: float | None, **overrides: Any
) -> Iterator[tuple[Shop, Path, str]]:
    prefix = f"sup{uuid.uuid4().hex[:8]}"
    with open_shop(
        base,
        root,
        redis_client(root),
        prefix,
        contact_policy_path=_policy(root, lead),
        **overrides,
    ) as opened:
        yield opened, root, prefix


@pytest.fixture(scope="module")
def shop_on(
    base: RetailDataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Shop, Path, str]]:
    """The API with ``supersede_lead_minutes: 15`` (margin 0.01)."""
    with _opened(base, tmp_path_factory.mktemp("supersession_on"), 15.0) as opened:
        yield opened


@pytest.fixture(scope="module")
def shop_learning(
    base: RetailDataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Shop, Path, str]]:
    """The API with ``supersede_lead_minutes: 15`` and its response statistics on."""
    root = tmp_path_factory.mktemp("supersession_stats")
    with _opened(base, root, 15.0, response_stats=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def shop_off(
    base: RetailDataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Shop, Path, str]]:
    """The API with the example contact policy as shipped (supersession off)."""
    with _opened(base, tmp_path_factory.mktemp("supersession_off"), None) as opened:
        yield opened


def _morning_picks(shop: Shop) -> tuple[str, dict[str, Any], dt.datetime]:
    """A customer who consents to e-mail only, seen three weeks ago; the morning's pass
    schedules the weekly picks for later in the day."""
    morning = local(PARIS, "2026-03-02 07:00")  # a Monday
    customer = shop.signup(morning - dt.timedelta(days=21), consents=("email",))
    shop.post(event(customer, morning - dt.timedelta(days=20), "product_view", "P2"))
    answer = shop.decide(customer, morning, actions=["recommendations_weekly"])
    [picks] = contacts(answer)
    assert picks["action_id"] == "recommendations_weekly" and picks["channel"] == "email"
    assert send_utc(picks) > morning + dt.timedelta(hours=1), picks
    assert answer["replaces"] == []
    return customer, answer, morning


def _browses(shop: Shop, customer: str, at: dt.datetime) -> None:
    """Twenty minutes on the trousers' page."""
    shop.post(
        event(customer, at, "product_view", "P1", **DWELL),
        event(customer, at + dt.timedelta(minutes=10), "product_view", "P1", **DWELL),
    )


def test_a_browse_reminder_replaces_the_scheduled_picks_and_the_caps_hold(
    shop_on: tuple[Shop, Path, str],
) -> None:
    """The picks are due tomorrow 07:00; the customer browses at 13:00; at 13:30 the
    browse reminder for this evening replaces them (the one e-mail a day is the
    reminder's now), names the picks' decision and says why. Asked again, no second
    e-mail within the day: the reminder alone holds the cap, and the picks' cool-down
    is given back (they never went)."""
    shop, root, prefix = shop_on
    customer, first, morning = _morning_picks(shop)
    browsed = morning + dt.timedelta(hours=6)
    _browses(shop, customer, browsed)
    later = shop.decide(customer, browsed + dt.timedelta(minutes=30))
    [reminder] = contacts(later)
    assert (reminder["action_id"], reminder["channel"]) == ("browse_reminder_evening", "email")
    assert send_utc(reminder) < send_utc(first["actions"][0])  # this evening
    assert later["replaces"] == [first["decision_id"]]
    [why] = [r for r in reminder["reasons"] if r.startswith("replaces ")]
    assert f"recommendations_weekly by email due 06:00 UTC (decision {first['decision_id']})" in why
    assert "browse_reminder_evening is worth" in why and "left to withdraw it" in why

    # the picks are withdrawn in Redis: their contact and what they scheduled are gone,
    # their history given back (never sent before)
    client = redis_client(root)
    pending = client.zrange(f"{prefix}:c:{{{customer}}}", 0, -1)
    assert [m.decode().split("|")[0] for m in pending] == [later["decision_id"]]
    kept = client.hkeys(f"{prefix}:cd:{{{customer}}}")
    assert [k.decode() for k in kept] == [later["decision_id"]]
    assert b"recommendations_weekly" not in client.hkeys(f"{prefix}:h:{{{customer}}}")

    # caps hold after the cancellation: one e-mail a day, the reminder's
    again = shop.decide(customer, browsed + dt.timedelta(minutes=45))
    for c in contacts(again):  # a later e-mail waits until the cap frees
        assert c["channel"] != "email" or send_utc(c) >= send_utc(reminder) + dt.timedelta(days=1)
    assert again["replaces"] == []
    assert "action_cooldown" in codes(again, "browse_reminder_evening")
    assert "action_cooldown" not in codes(again, "recommendations_weekly")  # never sent

    # the decision log names the withdrawn decision: its message did not go
    reading = read_log(root / "decision-log")
    assert first["decision_id"] in reading.withdrawn
    [logged] = [d for d in reading.decisions if d.decision_id == later["decision_id"]]
    assert logged.replaces == (first["decision_id"],)


def _exposures(client: Any, prefix: str, action: str) -> float:
    """The statistics' exposures of ``action`` by e-mail, over every era and segment (not
    decayed: each era's raw weights)."""
    total = 0.0
    for key in client.scan_iter(f"{prefix}:rs:*"):
        for name, value in client.hgetall(key).items():
            kind, _, channel, action_id = name.decode().split("|", 3)
            if kind == "e" and channel == "email" and action_id == action:
                total += float(value)
    return total


def test_the_withdrawn_picks_leave_the_response_statistics(
    shop_learning: tuple[Shop, Path, str],
) -> None:
    """With the response statistics on, the picks' decision counted an exposure of the
    weekly picks by e-mail; the browse reminder that replaces them takes it back in its
    own write (the picks never went: no exposure without response) and counts its own;
    an outcome naming the picks' decision is joined to nothing."""
    shop, root, prefix = shop_learning
    client = redis_client(root)
    customer, first, morning = _morning_picks(shop)
    assert _exposures(client, prefix, "recommendations_weekly") > 0
    sends = f"{prefix}:d:{{{customer}}}"
    assert client.hexists(sends, first["decision_id"])
    browsed = morning + dt.timedelta(hours=6)
    _browses(shop, customer, browsed)
    later = shop.decide(customer, browsed + dt.timedelta(minutes=30))
    assert later["replaces"] == [first["decision_id"]]
    assert _exposures(client, prefix, "recommendations_weekly") == pytest.approx(0.0, abs=1e-9)
    assert _exposures(client, prefix, "browse_reminder_evening") > 0
    assert not client.hexists(sends, first["decision_id"])
    assert client.hexists(sends, later["decision_id"])
    # the picks' click, were the journey tool to send one anyway, is nobody's
    at = browsed + dt.timedelta(hours=1)
    shop.post(
        event(customer, at, "message_clicked", channel="email", decision_id=first["decision_id"])
    )
    assert _exposures(client, prefix, "recommendations_weekly") == pytest.approx(0.0, abs=1e-9)
    clicks = sum(
        float(v)
        for key in client.scan_iter(f"{prefix}:rs:*")
        for name, v in client.hgetall(key).items()
        if name.decode().startswith("c|") and name.decode().endswith("|recommendations_weekly")
    )
    assert clicks == 0.0


def test_off_by_default_nothing_is_replaced(shop_off: tuple[Shop, Path, str]) -> None:
    """Without ``supersede_lead_minutes``: the same day answers ``replaces: []``, the
    picks keep the e-mail and the browse reminder waits (the daily cap)."""
    shop, root, prefix = shop_off
    customer, first, morning = _morning_picks(shop)
    browsed = morning + dt.timedelta(hours=6)
    _browses(shop, customer, browsed)
    later = shop.decide(customer, browsed + dt.timedelta(minutes=30))
    assert later["replaces"] == []
    assert [c for c in contacts(later) if c["channel"] == "email"] == []
    assert "channel_daily_cap" in codes(later, "browse_reminder_evening")
    client = redis_client(root)
    pending = client.zrange(f"{prefix}:c:{{{customer}}}", 0, -1)
    assert first["decision_id"] in {m.decode().split("|")[0] for m in pending}
    assert not client.exists(f"{prefix}:cd:{{{customer}}}")  # nothing more is written


def test_a_logged_replacement_reads_back_and_older_records_read_as_before() -> None:
    """The log writes ``replaces`` only on a record that withdrew something: the others
    are byte for byte what they were, and read back with none."""
    at = dt.datetime(2026, 3, 2, 12, 30, tzinfo=dt.UTC)
    plain = LoggedDecision("d-2", "C1", at, "nba", None, "rules", 1.0, ("a",), ())
    assert "replaces" not in plain.to_dict()
    assert LoggedDecision.from_dict(plain.to_dict()).replaces == ()
    replacing = dataclasses.replace(plain, replaces=("d-1",))
    assert replacing.to_dict()["replaces"] == ["d-1"]
    assert LoggedDecision.from_dict(replacing.to_dict()) == replacing
