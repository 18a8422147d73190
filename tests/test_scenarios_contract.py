"""What the retailer's data and calendar say, the engine uses: scenarios built from raw
contract events (the real feature code) and the retailer's own files (offers table,
contact policy), decided by the real pipeline and, where it shows, the real API.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from features.dataset import RetailDataset
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.decision import Decision
from nba.offer_table import apply_offer_table
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from serving.startup import load_offer_table
from tests.api_support import redis_client
from tests.test_scenarios import customer, decide, events, profile_at, retailer
from tests.test_scenarios_api import PARIS, codes, event, local, open_shop, the_action

UTC = dt.UTC
HEADER = "offer_id,name,kind,value,cost,valid_from,valid_to,channels,daily_budget,eligibility\n"
#: Monday 10:00 in Paris, six days before the birthday below.
BIRTHDAY_NOW = dt.datetime(2026, 4, 6, 8, 0, tzinfo=UTC)


def _offers_table(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(row + "\n" for row in rows))
    return path


def _with_table(path: Path) -> Catalog:
    return apply_offer_table(retailer(), load_offer_table(path)).catalog


def _birthday_customer(base: RetailDataset) -> CustomerProfile:
    """A past buyer whose birthday is in six days (the example catalog's birthday wins)."""
    people = customer(base, birth_date="1990-04-12", consents=("email", "sms"))
    raw = events(
        ("2026-02-10T18:00:00Z", "web", "product_view", "P1"),
        ("2026-02-10T18:05:00Z", "web", "purchase", "P1"),
        ("2026-03-20T18:00:00Z", "web", "product_view", "P2"),
    )
    return profile_at(base, people, raw, BIRTHDAY_NOW)


# ------------------------------------------------------------- offers table


def test_an_offer_the_table_says_has_ended_or_not_started_is_not_given(
    base: RetailDataset, tmp_path: Path
) -> None:
    """The catalog's birthday points have no end; the retailer's table says they ended
    yesterday (or start tomorrow): the birthday message is not given, and the reason
    says the offer's validity."""
    profile = _birthday_customer(base)
    assert decide(profile, BIRTHDAY_NOW).actions[0].action_id == "birthday"  # catalog alone
    for valid_from, valid_to in (
        ("2026-01-01T00:00:00Z", "2026-04-05T08:00:00Z"),  # ended yesterday
        ("2026-04-07T00:00:00Z", "2026-12-31T00:00:00Z"),  # starts tomorrow
    ):
        path = _offers_table(
            tmp_path / "offers.csv",
            f"birthday_points,Birthday points,loyalty_points,500,2.5,{valid_from},{valid_to},"
            "email|sms|wallet,,",
        )
        decision = decide(profile, BIRTHDAY_NOW, catalog=_with_table(path))
        assert all(chosen.action_id != "birthday" for chosen in decision.actions)
        assert decision.reasons("birthday") == (ReasonCode.OUTSIDE_VALIDITY,)
        [rejection] = [r for r in decision.rejections if r.action_id == "birthday"]
        assert valid_from[:10] in rejection.message or valid_to[:10] in rejection.message


def test_the_tables_cost_and_channels_are_the_ones_decided_with(
    base: RetailDataset, tmp_path: Path
) -> None:
    """The table prices the points at 3.1 (the catalog says 2.5) and allows them by SMS
    and wallet only: the birthday goes by SMS, valued at the table's cost."""
    profile = _birthday_customer(base)
    path = _offers_table(
        tmp_path / "offers.csv",
        "birthday_points,,loyalty_points,500,3.1,2026-01-01T00:00:00Z,2026-12-31T00:00:00Z,"
        "sms|wallet,,",
    )
    decision = decide(profile, BIRTHDAY_NOW, catalog=_with_table(path))
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.offer_id, chosen.channel) == (
        "birthday",
        "birthday_points",
        Channel.SMS,
    )
    assert chosen.terms is not None and chosen.terms.offer_cost == pytest.approx(3.1)
    plain = decide(profile, BIRTHDAY_NOW).actions[0]
    assert plain.channel == Channel.EMAIL and plain.terms is not None
    assert plain.terms.offer_cost == pytest.approx(2.5)


def test_the_api_does_not_give_an_offer_its_table_says_has_ended(
    base: RetailDataset, tmp_path: Path
) -> None:
    """NBA_OFFERS_PATH names the retailer's table: through the real API on real Redis, a
    birthday customer signed up and buying through ``POST /v1/events`` gets no birthday
    points the table says ended last week; the answer says why."""
    path = _offers_table(
        tmp_path / "offers.csv",
        "birthday_points,,loyalty_points,500,2.5,2026-01-01T00:00:00Z,2026-03-31T00:00:00Z,"
        "email|sms|wallet,,",
    )
    prefix = f"offers{uuid.uuid4().hex[:8]}"
    with open_shop(base, tmp_path, redis_client(tmp_path), prefix, offers_path=path) as shop:
        now = local(PARIS, "2026-04-06 10:00")
        person = shop.signup(
            local(PARIS, "2026-01-10 10:00"),
            consents=("email", "sms"),
            birthday=dt.date(1990, 4, 12),
        )
        shop.post(
            event(person, local(PARIS, "2026-02-10 19:00"), "product_view", "P1"),
            event(person, local(PARIS, "2026-02-10 19:05"), "purchase", "P1"),
        )
        answer = shop.decide(person, now, actions=["birthday"])
        assert [a["action_id"] for a in answer["actions"] if a["channel"]] == []
        assert codes(answer, "birthday") == ["outside_validity"]
        assert the_action(answer)["offer_id"] is None


def test_nba_decide_reads_the_offers_table(base: RetailDataset, tmp_path: Path) -> None:
    """``nba decide --offers``: the batch file gives no birthday points the table says
    have ended; without the table the same customer gets them."""
    from typer.testing import CliRunner

    from cli.main import app
    from features.profile_table import profiles_frame

    audience = tmp_path / "profiles.parquet"
    profiles_frame([_birthday_customer(base)]).to_parquet(audience, index=False)
    ended = _offers_table(
        tmp_path / "offers.csv",
        "birthday_points,,loyalty_points,500,2.5,2026-01-01T00:00:00Z,2026-03-31T00:00:00Z,"
        "email|sms|wallet,,",
    )
    chosen = {}
    for name, extra in (("plain", []), ("table", ["--offers", str(ended)])):
        out = tmp_path / f"{name}.csv"
        args = ["decide", "--audience", str(audience), "--out", str(out), "--workers", "1"]
        result = CliRunner().invoke(app, [*args, "--now", BIRTHDAY_NOW.isoformat(), *extra])
        assert result.exit_code == 0, result.output
        chosen[name] = pd.read_csv(out)["action_id"].tolist()
    assert chosen["plain"][0] == "birthday" and "birthday" not in chosen["table"]
    bad = _offers_table(
        tmp_path / "bad.csv",
        "birthday_points,,points,500,2.5,2026-01-01T00:00:00Z,2026-03-31T00:00:00Z,email,,",
    )
    args = ["decide", "--audience", str(audience), "--out", str(tmp_path / "x.csv")]
    result = CliRunner().invoke(app, [*args, "--offers", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: " in result.output and "row 1, field 'kind'" in result.output


# ------------------------------------------------------- budgets by the retailer's day

BUDGET_CATALOG = """
version: 1
actions:
  - id: style_offer
    type: offer
    description: A style guide, at most one a day.
    channels: [email]
    value: 20
    timing: asap
    ttl_hours: 48
    offer: {id: style_guide, kind: content, value: 0, daily_budget: 1}
  - {id: nothing, type: do_nothing}
"""


def test_a_daily_budget_resets_at_the_retailers_midnight_not_at_utcs(
    base: RetailDataset, tmp_path: Path
) -> None:
    """The retailer is in Paris (the example contact policy's time zone) and gives one
    style guide a day. Through the API: at 23:30 Paris (22:30 UTC, 6 March) the first
    customer gets it; at 00:30 Paris (23:30 UTC, still 6 March in UTC) it is a new day
    for the retailer and the second gets it; at 01:15 Paris (00:15 UTC on the 7th, a new
    UTC day) the third does not: the 7th's guide is given. Counted by UTC days, the
    second would have been refused and the third given."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(BUDGET_CATALOG)
    prefix = f"budget{uuid.uuid4().hex[:8]}"
    with open_shop(base, tmp_path, redis_client(tmp_path), prefix, catalog_path=catalog) as shop:
        signed = local(PARIS, "2026-02-01 10:00")
        first, second, third = (shop.signup(signed) for _ in range(3))
        moments = [
            local(PARIS, "2026-03-06 23:30"),
            local(PARIS, "2026-03-07 00:30"),
            local(PARIS, "2026-03-07 01:15"),
        ]
        assert [m.astimezone(UTC).day for m in moments] == [6, 6, 7]
        answers = [
            shop.decide(person, at, actions=["style_offer"])
            for person, at in zip((first, second, third), moments, strict=True)
        ]
        given = [the_action(a)["action_id"] == "style_offer" for a in answers]
        assert given == [True, True, False]
        assert codes(answers[2], "style_offer") == ["budget_exhausted"]
        assert "1 given today, the daily budget is 1" in " ".join(
            r["message"] for r in answers[2]["rejected"]
        )


# ------------------------------------------------------------- postal lead time

POSTAL_CATALOG = """
version: 1
actions:
  - id: birthday_card
    type: milestone
    description: A birthday card by post, on or before the day.
    channels: [postal]
    eligibility: days_to_birthday >= 0 and days_to_birthday <= 10
    value: 40
    ttl_hours: 240
    send_by: days_to_birthday
  - id: spring_catalogue
    type: content
    description: The spring catalogue, with a voucher valid until the 12th.
    channels: [postal, email]
    eligibility: not known(days_to_birthday) or days_to_birthday > 10
    value: 40
    ttl_hours: 240
    offer: {id: spring_voucher, kind: content, value: 0,
            valid_to: "2026-03-12T22:59:59Z"}
  - {id: nothing, type: do_nothing}
"""
#: Wednesday 10:00 in Paris.
POST_NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def _postal_profile(base: RetailDataset, birth_date: str | None) -> CustomerProfile:
    people = customer(base, birth_date=birth_date, consents=("email", "postal"))
    raw = events(
        ("2026-02-10T18:00:00Z", "web", "product_view", "P1"),
        ("2026-02-10T18:05:00Z", "web", "purchase", "P1"),
    )
    return profile_at(base, people, raw, POST_NOW)


def _postal_decide(profile: CustomerProfile, now: dt.datetime = POST_NOW) -> Decision:
    return decide(profile, now, catalog=parse_catalog(POSTAL_CATALOG))


def test_a_birthday_card_is_posted_early_enough_to_arrive_by_the_birthday(
    base: RetailDataset,
) -> None:
    """Birthday on Friday 13 March (nine days ahead): the card is posted at the latest
    three days (the postal lead time) before the end of the birthday, and says when it
    lands. With the birthday two days ahead a letter cannot arrive in time: not by post,
    and the reason says why."""
    profile = _postal_profile(base, "1990-03-13")
    assert profile.days_to_birthday == 9
    [chosen] = _postal_decide(profile).actions
    assert (chosen.action_id, chosen.channel) == ("birthday_card", Channel.POSTAL)
    assert chosen.send_at is not None
    birthday_ends = dt.datetime(2026, 3, 14, tzinfo=ZoneInfo(PARIS))
    assert chosen.send_at + dt.timedelta(days=3) <= birthday_ends
    assert "(3 delivery days later)" in chosen.timing_basis
    soon = _postal_profile(base, "1990-03-06")
    assert soon.days_to_birthday == 2
    decision = _postal_decide(soon)
    assert all(c.action_id != "birthday_card" for c in decision.actions)
    [rejection] = [r for r in decision.rejections if r.action_id == "birthday_card"]
    assert (rejection.channel, rejection.code) == (Channel.POSTAL, ReasonCode.NO_SEND_SLOT)
    assert "takes 3 delivery days to arrive" in rejection.message
    assert "would arrive too late" in rejection.message


def test_a_letter_whose_offer_ends_before_it_lands_goes_by_email_instead(
    base: RetailDataset,
) -> None:
    """The spring voucher ends on the 12th. On the 4th the catalogue may go by post
    (posted by the 9th); on the 10th a letter would land after the voucher ended: it goes
    by e-mail, the postal channel refused with its lead time in the reason."""
    from nba.budgets import UsageCounts
    from nba.context import CustomerContext
    from nba.screening import screen
    from tests.test_scenarios import retailer_policy

    early = screen(
        parse_catalog(POSTAL_CATALOG),
        retailer_policy(),
        CustomerContext(_postal_profile(base, None), POST_NOW),
        UsageCounts(),
    )
    [candidate] = [c for c in early.candidates if c.action.id == "spring_catalogue"]
    [posted] = [slot.send for slot in candidate.slots if slot.channel == Channel.POSTAL]
    assert posted.at + dt.timedelta(days=3) <= dt.datetime(2026, 3, 12, 22, 59, 59, tzinfo=UTC)
    late_now = dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    late = _postal_decide(_postal_profile(base, None), late_now)
    [chosen] = late.actions
    assert (chosen.action_id, chosen.channel) == ("spring_catalogue", Channel.EMAIL)
    [rejection] = [
        r
        for r in late.rejections
        if r.action_id == "spring_catalogue" and r.channel == Channel.POSTAL
    ]
    assert rejection.code is ReasonCode.NO_SEND_SLOT
    assert "takes 3 delivery days to arrive" in rejection.message


def test_the_api_posts_a_birthday_card_only_when_it_can_arrive_in_time(
    base: RetailDataset, tmp_path: Path
) -> None:
    """Through the API on real Redis: a customer reachable only by post, birthday in nine
    days, gets the card posted at least three days before the day ends; another, whose
    birthday is in two days, gets no letter, and the answer says it would arrive late."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(POSTAL_CATALOG)
    prefix = f"post{uuid.uuid4().hex[:8]}"
    with open_shop(base, tmp_path, redis_client(tmp_path), prefix, catalog_path=catalog) as shop:
        now = local(PARIS, "2026-03-04 10:00")
        answers = {}
        for name, birthday in (("far", dt.date(1990, 3, 13)), ("near", dt.date(1990, 3, 6))):
            person = shop.signup(
                local(PARIS, "2026-01-10 10:00"), consents=("postal",), birthday=birthday
            )
            answers[name] = shop.decide(person, now, actions=["birthday_card"])
        chosen = the_action(answers["far"])
        assert (chosen["action_id"], chosen["channel"]) == ("birthday_card", "postal")
        posted = dt.datetime.fromisoformat(chosen["send_at_local"])
        assert posted + dt.timedelta(days=3) <= dt.datetime(2026, 3, 14, tzinfo=ZoneInfo(PARIS))
        assert [a for a in answers["near"]["actions"] if a["channel"]] == []
        assert codes(answers["near"], "birthday_card") == ["no_send_slot"]
        assert "takes 3 delivery days to arrive" in " ".join(
            r["message"] for r in answers["near"]["rejected"]
        )


# ------------------------------------------------------- call-centre holidays, any year


#: A call worth making as soon as the call centre may: the first allowed moment.
CALL_CATALOG = """
version: 1
actions:
  - {id: winback_call, type: reactivation, channels: [call_centre], value: 400,
     timing: asap, ttl_hours: 120}
  - {id: nothing, type: do_nothing}
"""


def _lapsed_big_spender(base: RetailDataset, now: dt.datetime) -> CustomerProfile:
    """Four orders of 300 in early 2026, nothing since: the winback call's customer."""
    people = customer(base, consents=("call_centre",), created_at="2025-12-01T09:00:00Z")
    raw = events(
        *(
            (f"2026-{month:02d}-10T17:00:00Z", "web", "purchase", "P1", {"revenue": 300.0})
            for month in (1, 2, 3, 4)
        )
    )
    profile = profile_at(base, people, raw, now)
    assert profile.lifecycle_state.value in ("at_risk", "lapsed")
    return profile


@pytest.mark.parametrize(
    ("eve", "holiday", "next_open"),
    [
        ("2027-05-05 20:30", "2027-05-06", "2027-05-07"),  # Ascension 2027 (Easter + 39)
        ("2028-04-16 20:30", "2028-04-17", "2028-04-18"),  # Easter Monday 2028
        ("2031-07-11 20:30", "2031-07-14", "2031-07-15"),  # Bastille Day 2031, a Monday
    ],
)
def test_a_call_is_never_scheduled_on_a_public_holiday_of_any_year(
    base: RetailDataset, eve: str, holiday: str, next_open: str
) -> None:
    """The example policy's call-centre holidays are rules (``"07-14"``, ``easter+39``),
    not 2026's dates: asked on a holiday's eve after call hours, a call due as soon as
    possible is set for the next working day, in 2027, 2028 or 2031 alike."""
    now = local(PARIS, eve)
    profile = _lapsed_big_spender(base, now)
    decision = decide(profile, now, catalog=parse_catalog(CALL_CATALOG))
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("winback_call", Channel.CALL_CENTRE)
    assert chosen.send_at_local is not None
    assert chosen.send_at_local.date().isoformat() != holiday
    assert chosen.send_at_local.date().isoformat() >= next_open


# ------------------------------------------------- rejected actions in the batch file


def test_nba_decide_writes_why_the_best_rejected_actions_were_not_chosen(
    base: RetailDataset, tmp_path: Path
) -> None:
    """``nba decide --rejected N``: each row carries the API's ``rejected`` items of its
    decision (action, channel, code, message), the best N; the birthday points the table
    says have ended are among them with their reason. Without the option, no column."""
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from features.profile_table import profiles_frame

    audience = tmp_path / "profiles.parquet"
    profiles_frame([_birthday_customer(base)]).to_parquet(audience, index=False)
    ended = _offers_table(
        tmp_path / "offers.csv",
        "birthday_points,,loyalty_points,500,2.5,2026-01-01T00:00:00Z,2026-03-31T00:00:00Z,"
        "email|sms|wallet,,",
    )
    args = ["decide", "--audience", str(audience), "--workers", "1", "--offers", str(ended)]
    args += ["--now", BIRTHDAY_NOW.isoformat()]
    tables = {}
    for name, extra in (("none", []), ("two", ["--rejected", "2"]), ("all", ["--rejected", "99"])):
        out = tmp_path / f"{name}.parquet"
        result = CliRunner().invoke(app, [*args, "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        tables[name] = pd.read_parquet(out)
    assert "rejected" not in tables["none"].columns
    every = [json.loads(text) for text in tables["all"]["rejected"]]
    two = [json.loads(text) for text in tables["two"]["rejected"]]
    assert all(len(items) == 2 and items == e[:2] for items, e in zip(two, every, strict=True))
    [birthday] = [item for item in every[0] if item["action_id"] == "birthday"]
    assert birthday["code"] == "outside_validity" and "2026-03-31" in birthday["message"]
    assert set(every[0][0]) == {"action_id", "channel", "code", "message"}
    assert tables["two"].drop(columns="rejected").equals(tables["none"])  # nothing else
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "s"), "--rejected", "1", "--spark"]
    )
    assert result.exit_code == 2 and "--rejected" in result.output
