"""Issue 12: where the oracle sends an action the engine does not, what stopped the engine?

Runs policies of the closed loop's playbook world once, then for each ``--compare A,B`` (by
default the volume-matched lookahead oracle ``oracle~nba`` against the engine ``nba``) and
each ``--actions`` send of ``A`` that ``B`` did not make to the same customer within 12
hours, reads ``B``'s own contacts and decisions to say why, in the first matching class:

* **cool-down**: ``B`` sent the same action to the customer within its cool-down before;
* **channel spent earlier**: ``B`` sent something on the same channel in the 24 hours
  before (the daily cap): the action it sent, and whether that send was *decided before the
  trigger* (for a session-triggered reminder: the browsing or the cart came after the
  decision that spent the channel, so only foresight of the session could have kept the
  channel free; the lookahead oracle reads the sessions ahead, :class:`~simulator.closed_loop.
  oracle.FutureTriggers`);
* **chose another action** (or nothing) at the same decision, which it names;
* **no decision then** (``B`` did not decide for the customer at that moment).

With ``--blind-oracle`` the lookahead oracle also runs *without* reading the customers'
future sessions (its :class:`~simulator.closed_loop.oracle.FutureTriggers` empty: it still
knows the truth of every message it can send now and values fatigue and caps ahead), held
to the engine's volume (``oracle-blind~nba``), and the report gives the three policies'
true incremental margin per customer: how much of the oracle's lead is foresight of
sessions that no policy deciding from the customer's past can have.

Each class carries ``A``'s true incremental margin on those sends (per 1,000 customers) and
their channels, so the gap between two policies is split by cause; ``--compare nba,rules``
and ``--compare rules,nba`` give both directions. A read-only diagnostic: it changes no
decision.

Run: ``PYTHONPATH=. python benchmarks/oracle_lead.py --seeds 0 --compare oracle~nba,nba
--compare rules,nba --actions browse_reminder_evening,birthday``
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import pandas as pd

from nba.pipeline import build_pipeline
from nba.reserve import SESSION_TRIGGERED
from simulator.closed_loop import ClosedLoopConfig, build_world, compare_policies
from simulator.closed_loop.comparison import contacts_per_tick
from simulator.closed_loop.oracle import FutureTriggers, LookaheadOraclePolicy
from simulator.closed_loop.playbook import contact_scenarios
from simulator.closed_loop.policies import split_matched
from simulator.closed_loop.runner import PolicyRun, run_policy
from simulator.closed_loop.world import ClosedLoopWorld

#: Two sends within this many hours are the same reminder sent by both policies.
SAME_SEND = pd.Timedelta(hours=12)
#: A send spends its channel's daily cap for this long.
CAP_WINDOW = pd.Timedelta(hours=24)


def _sessions_between(
    background: pd.DataFrame, customer: str, start: pd.Timestamp, end: pd.Timestamp
) -> bool:
    """Whether the customer viewed a product or filled a cart in ``(start, end]``."""
    rows = background[
        (background["customer_id"] == customer)
        & (background["timestamp"] > start)
        & (background["timestamp"] <= end)
    ]
    return bool(rows["event_type"].isin(["product_view", "add_to_cart"]).any())


def lead_table(
    contacts: pd.DataFrame,
    decisions: pd.DataFrame,
    background: pd.DataFrame,
    cooldowns: dict[str, float],
    session_triggered: frozenset[str],
    actions: Sequence[str],
    first: str,
    second: str,
    audience: int,
) -> list[str]:
    """Markdown rows: per action and cause, the first policy's sends the second did not make."""
    per = 1000.0 / max(1, audience)
    sent = contacts.assign(
        sent=pd.to_datetime(contacts["sent_at"], utc=True),
        decided=pd.to_datetime(contacts["decided_at"], utc=True),
    )
    decided = decisions.assign(decided=pd.to_datetime(decisions["decided_at"], utc=True))
    lines = []
    for action in actions:
        mine = sent[(sent["policy"] == first) & (sent["action_id"] == action)]
        theirs = sent[sent["policy"] == second]
        same = theirs[theirs["action_id"] == action]
        causes: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for row in mine.itertuples():
            customer = row.customer_id
            near = same[
                (same["customer_id"] == customer) & ((same["sent"] - row.sent).abs() < SAME_SEND)
            ]
            if len(near):
                continue
            cooldown = pd.Timedelta(hours=cooldowns.get(action, 0.0))
            earlier = same[
                (same["customer_id"] == customer)
                & (same["sent"] < row.sent)
                & (same["sent"] >= row.sent - cooldown)
            ]
            spent = theirs[
                (theirs["customer_id"] == customer)
                & (theirs["channel"] == row.channel)
                & (theirs["sent"] <= row.sent)
                & (theirs["sent"] > row.sent - CAP_WINDOW)
            ]
            at = decided[
                (decided["policy"] == second)
                & (decided["customer_id"] == customer)
                & (decided["decided"] == row.decided)
            ]
            if len(earlier):
                cause = "cool-down (its own earlier send)"
            elif len(spent):
                first_spent = spent.sort_values("sent").iloc[0]
                cause = f"channel spent earlier by {first_spent['action_id']}"
                if action in session_triggered:
                    foresight = _sessions_between(
                        background, customer, first_spent["decided"], row.decided
                    )
                    cause += (
                        " (the session came after that decision)"
                        if foresight
                        else " (the session came before it)"
                    )
            elif len(at):
                cause = f"chose {at['action_id'].iloc[0]}"
            else:
                cause = "no decision then"
            causes[cause].append((float(row.margin), str(row.channel)))
        every = [m for v in causes.values() for m in v]
        lines.append(f"| {action} | all | {_cells(every, per)} |")
        for cause, sends in sorted(causes.items(), key=lambda kv: -sum(m for m, _ in kv[1])):
            lines.append(f"| {action} | {cause} | {_cells(sends, per)} |")
    return lines


def _cells(sends: list[tuple[float, str]], per: float) -> str:
    """Sends, their margin per 1,000 customers and their channels, as table cells."""
    channels = pd.Series([c for _, c in sends], dtype=object).value_counts()
    mix = ", ".join(f"{c} {n}" for c, n in channels.items())
    return f"{len(sends)} | {sum(m for m, _ in sends) * per:.1f} | {mix}"


def blind_oracle(world: ClosedLoopWorld, reference: PolicyRun) -> PolicyRun:
    """The lookahead oracle without the customers' future sessions, at ``reference``'s
    contact volume tick by tick."""
    policy = LookaheadOraclePolicy(
        world.catalog,
        world.contact_policy,
        truth=world.truth,
        mapping=world.mapping,
        triggers=FutureTriggers({}),
        horizon_end=world.end,
    )
    return run_policy(
        world,
        build_pipeline(world.catalog, world.contact_policy, policy=policy),
        name="oracle-blind~nba",
        contact_limits=contacts_per_tick(world, reference),
    )


def margin_lines(world: ClosedLoopWorld, runs: dict[str, PolicyRun]) -> list[str]:
    """Markdown rows: each policy's true incremental margin per customer, overall and in
    the browse and cart scenarios (per 1,000 customers)."""
    n = len(world.customer_ids)
    lines = [
        "| policy | contacts | margin per customer | browse per 1,000 | cart per 1,000 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, run in runs.items():
        contacts = run.contacts
        scenario = contact_scenarios(contacts, world.catalog, world.mapping)
        margin = contacts["margin"]
        lines.append(
            f"| {name} | {len(contacts):,} | {margin.sum() / n:.4f} "
            f"| {margin[scenario == 'browse'].sum() * 1000 / n:.1f} "
            f"| {margin[scenario == 'cart'].sum() * 1000 / n:.1f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seeds", default="0")
    parser.add_argument(
        "--compare",
        action="append",
        help="A,B: A's sends that B did not make (repeatable; default oracle~nba,nba)",
    )
    parser.add_argument("--actions", default="browse_reminder_evening")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--blind-oracle",
        action="store_true",
        help="also run the lookahead oracle without future sessions at nba's volume",
    )
    args = parser.parse_args(argv)
    pairs = [tuple(p.split(",")) for p in (args.compare or ["oracle~nba,nba"])]
    actions = args.actions.split(",")
    names: list[str] = []
    for pair in pairs:
        for name in pair:
            reference = split_matched(name)[1]
            names += [reference, name] if reference else [name]
    if args.blind_oracle:
        names += ["nba", "oracle~nba"]
    names = list(dict.fromkeys(names))
    for seed in (int(s) for s in args.seeds.split(",")):
        world = build_world(
            ClosedLoopConfig(
                n_customers=args.customers,
                history_days=args.history_days,
                days=args.days,
                seed=seed,
                playbook=True,
            )
        )
        result = compare_policies(world, names, workers=args.workers)
        contacts = pd.concat(
            [r.contacts.assign(policy=n) for n, r in result.runs.items()], ignore_index=True
        )
        decisions = pd.concat(
            [r.decisions.assign(policy=n) for n, r in result.runs.items()], ignore_index=True
        )
        background = world.background.assign(
            timestamp=pd.to_datetime(world.background["timestamp"], utc=True),
            customer_id=world.background["customer_id"].astype(str),
        )
        contacts["customer_id"] = contacts["customer_id"].astype(str)
        decisions["customer_id"] = decisions["customer_id"].astype(str)
        runs = dict(result.runs)
        if args.blind_oracle:
            runs["oracle-blind~nba"] = blind_oracle(world, runs["nba"])
            print(f"\nSeed {seed}: true incremental margin ({dt.datetime.now(dt.UTC):%H:%M} UTC)\n")
            print(
                "\n".join(
                    margin_lines(
                        world, {k: runs[k] for k in ("nba", "oracle~nba", "oracle-blind~nba")}
                    )
                )
            )
        cooldowns = {a.id: float(a.cooldown_hours or 0.0) for a in world.catalog}
        session = frozenset(a.id for a in world.catalog if a.type in SESSION_TRIGGERED)
        for first, second in pairs:
            print(
                f"\nSeed {seed}: {first}'s sends that {second} did not make within 12 h, by "
                f"what stopped {second} (true incremental margin of {first}'s sends per 1,000 "
                f"customers; {dt.datetime.now(dt.UTC):%H:%M} UTC)\n"
            )
            print("| action | cause | sends | margin per 1,000 | channels |")
            print("|---|---|---:|---:|---|")
            for line in lead_table(
                contacts,
                decisions,
                background,
                cooldowns,
                session,
                actions,
                first,
                second,
                len(world.customer_ids),
            ):
                print(line)


if __name__ == "__main__":
    main()
