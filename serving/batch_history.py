"""What earlier batch runs decided, read back from their decision files (``nba decide
--history``), so that a batch run without the API's Redis holds what the API would.

A platform that imports lists runs ``nba decide`` every day; yesterday's file is the
history today's run must respect. From it, exactly as the API keeps them in Redis
(:mod:`features.online.contact_state`):

* **when each action was last sent** per customer (its send time, else the decision's
  moment; content placed on a page or in the app is not a message:
  :func:`~features.online.contact_state.sends_of`): cool-downs and sequences hold;
* **the contacts decided and not yet in the profiles** (each on its channel at its send
  time, from the audience's ``as_of`` on: what the profiles' ``message_sent`` events
  cannot hold yet): the caps and the message gap hold
  (:func:`~features.online.contact_state.with_own_contacts`);
* **today's usage** (the retailer's day of the contact policy): each action decided
  today counts toward its daily volume and its offer toward its budget.

Rows decided after the run's moment are not known then and are left out, and a
decision's action read twice (the same file given twice) counts once. A file that
does not read as decisions is refused naming the file, the row (from 1) and the field:
an action the catalog does not have, a channel that does not exist, a time without its
zone.

>>> import datetime as dt
>>> frame = pd.DataFrame({"customer_id": ["C1"], "decision_id": ["d-1"],
...     "decided_at": [pd.Timestamp("2026-03-06 09:00", tz="UTC")], "action_id": ["hello"],
...     "action_type": ["content"], "channel": ["email"], "offer_id": [None],
...     "send_at_utc": [pd.Timestamp("2026-03-06 18:00", tz="UTC")]})
>>> now = dt.datetime(2026, 3, 7, 9, tzinfo=dt.UTC)
>>> history = DecidedHistory.of([("h.parquet", frame)], {"hello"}, now)
>>> history.sent["C1"]["hello"].isoformat()
'2026-03-06T18:00:00+00:00'
>>> [c.channel.value for c in history.contacts["C1"]]
['email']
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.online.contact_state import CONTACT_SECONDS, OwnContact
from nba.actions import ActionType
from nba.budgets import UsageCounts, budget_day
from nba.channels import PLACEMENT_CHANNELS, Channel, parse_channel

#: Problems named before giving up on a file.
MAX_PROBLEMS = 20


class HistoryError(ValueError):
    """A history file that does not read as decisions; ``problems`` name file, row, field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems[:MAX_PROBLEMS])
        more = len(self.problems) - MAX_PROBLEMS
        extra = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"the decision history is invalid:\n{lines}{extra}")


@dataclass(frozen=True)
class DecidedHistory:
    """What earlier decisions sent (:attr:`sent`), the contacts they decided
    (:attr:`contacts`, oldest first) and what each day used (:attr:`used`)."""

    sent: dict[str, dict[str, dt.datetime]] = field(default_factory=dict)
    contacts: dict[str, tuple[OwnContact, ...]] = field(default_factory=dict)
    #: (decided at, action id, offer id or None) of every action decided, do-nothing aside
    used: tuple[tuple[dt.datetime, str, str | None], ...] = ()

    @classmethod
    def of(
        cls, files: Iterable[tuple[str, pd.DataFrame]], actions: set[str], now: dt.datetime
    ) -> DecidedHistory:
        """The history of decision tables (``(name, frame)``: ``nba decide``'s columns;
        ``customer_id``, ``action_id`` and ``send_at_utc`` or ``decided_at`` needed) as
        known at ``now``; ``actions``: the catalog's action ids. Raises
        :class:`HistoryError` with every problem found."""
        sent: dict[str, dict[str, dt.datetime]] = {}
        contacts: dict[str, list[tuple[int, str, OwnContact]]] = {}
        used: list[tuple[dt.datetime, str, str | None]] = []
        problems: list[str] = []
        seen: set[tuple[str, str, str]] = set()
        for name, frame in files:
            rows = _rows(name, frame, actions, now, problems)
            for cid, decision, decided, action, kind, channel, send_at, offer in rows:
                if decided is not None and decided > now:
                    continue  # not decided yet at the run's moment
                if (cid, decision, action) in seen:
                    continue  # a file given twice, or a run's decisions in two files
                seen.add((cid, decision, action))
                if kind != ActionType.DO_NOTHING.value:
                    used.append((decided or send_at or now, action, offer))
                if channel is None:
                    continue
                at = send_at or decided or now
                if channel not in PLACEMENT_CHANNELS:
                    mine = sent.setdefault(cid, {})
                    if action not in mine or at > mine[action]:
                        mine[action] = at
                second = math.floor(at.timestamp())
                contact = OwnContact(decision, channel, dt.datetime.fromtimestamp(second, dt.UTC))
                member = f"{decision}|{channel.value}"  # the API's Redis orders them so
                contacts.setdefault(cid, []).append((second, member, contact))
        if problems:
            raise HistoryError(problems)
        return cls(
            sent,
            {cid: tuple(c for *_, c in sorted(found)) for cid, found in contacts.items()},
            tuple(used),
        )

    def own_contacts_since(self, since: dt.datetime) -> OwnContactsSince:
        """A reader of the contacts sent at or after ``since`` (the audience's ``as_of``:
        those its profiles cannot hold), as the API's Redis gives them at a moment."""
        return OwnContactsSince(self.contacts, since)

    def usage(self, day: dt.date, zone: dt.tzinfo) -> UsageCounts:
        """What the decisions of ``day`` (the retailer's, in ``zone``) used."""
        offers: dict[str, int] = {}
        actions: dict[str, int] = {}
        for decided, action, offer in self.used:
            if budget_day(decided, zone) != day:
                continue
            actions[action] = actions.get(action, 0) + 1
            if offer is not None:
                offers[offer] = offers.get(offer, 0) + 1
        return UsageCounts(offers, actions)


@dataclass(frozen=True)
class OwnContactsSince:
    """The contacts of a :class:`DecidedHistory` sent at or after ``since`` that count at
    a moment (within :data:`~features.online.contact_state.CONTACT_SECONDS` of it, as the
    API keeps them): :data:`serving.batch_decisions.OwnContacts`."""

    contacts: Mapping[str, tuple[OwnContact, ...]]
    since: dt.datetime

    def __call__(
        self, customer_ids: Sequence[str], now: dt.datetime
    ) -> dict[str, tuple[OwnContact, ...]]:
        oldest = max(self.since.timestamp(), float(int(now.timestamp()) - CONTACT_SECONDS))
        out: dict[str, tuple[OwnContact, ...]] = {}
        for cid in customer_ids:
            kept = tuple(c for c in self.contacts.get(cid, ()) if c.at.timestamp() >= oldest)
            if kept:
                out[cid] = kept
        return out


def read_history(path: Path) -> pd.DataFrame:
    """A decision file (Parquet, or CSV as ``nba decide`` writes it, or the Parquet folder
    ``nba decide --spark`` writes), or :class:`HistoryError` naming the file."""
    if not path.exists():
        raise HistoryError([f"{path}: no such file (a decisions file of 'nba decide')"])
    try:
        if path.suffix == ".parquet" or path.is_dir():
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as error:  # pyarrow and the CSV parser raise many kinds
        raise HistoryError([f"{path}: cannot be read ({error})"]) from None
    raise HistoryError([f"{path}: not a .parquet or .csv file of decisions"])


_Row = tuple[str, str, dt.datetime | None, str, str, Channel | None, dt.datetime | None, str | None]


def _rows(
    name: str, frame: pd.DataFrame, actions: set[str], now: dt.datetime, problems: list[str]
) -> list[_Row]:
    """``(customer, decision id, decided at, action, action type, channel, send time,
    offer)`` of the rows that chose an action; problems appended, naming row and field."""
    missing = [c for c in ("customer_id", "action_id") if c not in frame.columns]
    if "send_at_utc" not in frame.columns and "decided_at" not in frame.columns:
        missing.append("send_at_utc or decided_at")
    if missing:
        problems.append(
            f"{name}: column(s) missing: {', '.join(missing)} (a decisions file of 'nba decide')"
        )
        return []

    def column(key: str) -> list[object]:
        return frame[key].tolist() if key in frame.columns else [None] * len(frame)

    out: list[_Row] = []
    columns = zip(
        column("customer_id"),
        column("decision_id"),
        column("decided_at"),
        column("action_id"),
        column("action_type"),
        column("channel"),
        column("send_at_utc"),
        column("offer_id"),
        strict=True,
    )
    for number, values in enumerate(columns, start=1):
        cid, decision, decided, action, kind, channel, send_at, offer = values
        if _blank(action):
            continue  # nothing was eligible: no action, nothing sent
        where = f"{name}: row {number}"
        found = len(problems)
        if _blank(cid):
            problems.append(f"{where}, field 'customer_id': empty")
        if str(action) not in actions:
            problems.append(
                f"{where}, field 'action_id': unknown action {action!r} (not in the catalog: "
                "decide with the catalog that wrote the file)"
            )
        moments: list[dt.datetime | None] = []
        for key, value in (("decided_at", decided), ("send_at_utc", send_at)):
            moment, readable = _moment(value)
            if not readable:
                problems.append(
                    f"{where}, field {key!r}: {value!r} is not a time with its zone "
                    "(e.g. 2026-03-06T18:00:00+00:00)"
                )
            moments.append(moment)
        sent_on = None
        if not _blank(channel):
            try:
                sent_on = parse_channel(str(channel))
            except ValueError:
                problems.append(f"{where}, field 'channel': unknown channel {channel!r}")
        if len(problems) > found:
            continue
        if moments[0] is None and moments[1] is None:
            problems.append(f"{where}: neither 'decided_at' nor 'send_at_utc' says when")
            continue
        out.append(
            (
                str(cid),
                str(decision) if not _blank(decision) else f"{name}:{number}",
                moments[0],
                str(action),
                "" if _blank(kind) else str(kind),
                sent_on,
                moments[1],
                None if _blank(offer) else str(offer),
            )
        )
    return out


def _blank(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or value is pd.NaT
        or (isinstance(value, str) and not value.strip())
    )


def _moment(value: object) -> tuple[dt.datetime | None, bool]:
    """``(moment, readable)``: an aware UTC moment (None when blank), and False when the
    value is not a time with its zone."""
    if _blank(value):
        return None, True
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, False
    if stamp is pd.NaT or stamp.tzinfo is None:
        return None, False
    return stamp.tz_convert("UTC").to_pydatetime(), True


__all__ = ["DecidedHistory", "HistoryError", "OwnContactsSince", "read_history"]
