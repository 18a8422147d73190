"""Metrics per policy, and the comparison tables.

The headline (:func:`headline_table`) is the **true incremental margin per
customer over the horizon**: the sum, over a policy's contacts, of each
contact's true incremental margin (expected margin within the attribution
window with the message minus without any contact, given the customer's state
when it goes out: the fatigue of the contacts before it included), net of the
offer's cost, the channel's cost and the future value an unsubscribe loses,
divided by the audience. The background behaviour is the same for every policy
and the truth's contact effects add up, so this sum is the policy's expected
margin minus that of doing nothing in the same world with the same seeds: the
``nothing`` policy measures 0 by construction (tested). Ratios between policies
come with paired Poisson-bootstrap intervals over customers (both runs
resampled with the same customer weights).

* ``contacts``: messages sent; ``conversions``: sampled purchases through a
  message's click; ``unsubscribes``: sampled withdrawals.
* ``revenue`` and ``margin``: the *true incremental* value of the messages
  sent, i.e. expected revenue (margin net of offer and channel costs and of
  the future value an unsubscribe loses) within
  the attribution window with the message minus without any contact, under the
  simulator's response model. Purchases customers would have made anyway are
  not credited, and outcome noise does not blur the comparison (the decisions
  themselves were still driven by sampled outcomes).
* ``revenue_per_contact`` with a 95 % bootstrap interval over customers.
* ``violations``: contacts the independent checker flagged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.closed_loop.checker import Violation
from simulator.closed_loop.runner import PolicyRun

BOOTSTRAP_DRAWS = 1000


def bootstrap_weights(seed: int, units: int) -> np.ndarray:
    """The Poisson(1) weights of the ``BOOTSTRAP_DRAWS`` resamples of ``units`` customers
    for ``seed``: ``np.random.default_rng(seed).poisson(1.0, size=(BOOTSTRAP_DRAWS,
    units))``, the same numbers, drawn once per seed and size and kept (read-only; as
    bytes when they fit, which a product with floats reads as the same floats). Every
    interval of a report resamples with them: at 100,000 customers one draw is 10**8
    numbers (~3 CPU-s), and a report made ~15.

    >>> w = bootstrap_weights(0, 5)
    >>> bool((w == np.random.default_rng(0).poisson(1.0, size=(BOOTSTRAP_DRAWS, 5))).all())
    True
    >>> bootstrap_weights(0, 5) is w
    True
    """
    return _bootstrap_weights(int(seed), int(units))


@functools.lru_cache(maxsize=2)
def _bootstrap_weights(seed: int, units: int) -> np.ndarray:
    weights = np.random.default_rng(seed).poisson(1.0, size=(BOOTSTRAP_DRAWS, units))
    if weights.size and weights.max() <= np.iinfo(np.uint8).max:
        weights = weights.astype(np.uint8)
    weights.setflags(write=False)
    return weights


@dataclass(frozen=True)
class PolicyMetrics:
    """The outcome of one policy over the closed loop."""

    policy: str
    customers: int
    decisions: int
    contacts: int
    conversions: int
    revenue: float
    margin: float
    unsubscribes: int
    violations: int
    revenue_per_contact_ci: tuple[float, float]
    contacts_by_channel: dict[str, int]
    seconds: float

    @property
    def contacts_per_customer(self) -> float:
        return self.contacts / self.customers if self.customers else 0.0

    @property
    def revenue_per_contact(self) -> float:
        return self.revenue / self.contacts if self.contacts else 0.0

    @property
    def margin_per_contact(self) -> float:
        return self.margin / self.contacts if self.contacts else 0.0

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.contacts if self.contacts else 0.0

    @property
    def revenue_per_customer(self) -> float:
        return self.revenue / self.customers if self.customers else 0.0

    @property
    def margin_per_customer(self) -> float:
        return self.margin / self.customers if self.customers else 0.0


def policy_metrics(
    run: PolicyRun, violations: Sequence[Violation], customers: Sequence[str], seed: int = 0
) -> PolicyMetrics:
    """Sum up ``run`` over the audience ``customers``."""
    contacts = run.contacts
    revenue = per_customer(run, customers, "revenue")
    sent = per_customer(run, customers, "contacts")
    return PolicyMetrics(
        policy=run.policy,
        customers=len(customers),
        decisions=len(run.decisions),
        contacts=len(contacts),
        conversions=int(contacts["converted"].sum()),
        revenue=float(contacts["revenue"].sum()),
        margin=float(contacts["margin"].sum()),
        unsubscribes=int(contacts["unsubscribed"].sum()),
        violations=len(violations),
        revenue_per_contact_ci=ratio_interval(revenue, sent, seed=seed),
        contacts_by_channel={str(k): int(v) for k, v in contacts["channel"].value_counts().items()},
        seconds=run.seconds,
    )


def ratio_interval(
    numerator: np.ndarray, denominator: np.ndarray, *, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Poisson-bootstrap interval of ``sum(numerator) / sum(denominator)`` over units
    (customers).

    >>> ratio_interval(np.ones(50), np.ones(50))
    (1.0, 1.0)
    """
    n = numerator.size
    if n == 0 or denominator.sum() == 0:
        return (0.0, 0.0)
    counts = bootstrap_weights(seed, n)
    top = counts @ numerator
    bottom = counts @ denominator
    ratios = top[bottom > 0] / bottom[bottom > 0]
    low, high = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return (float(low), float(high))


def per_customer(run: PolicyRun, customers: Sequence[str], column: str) -> np.ndarray:
    """Sum of ``column`` over each customer's contacts (``"contacts"``: their count),
    shape ``(len(customers),)``."""
    index = {cid: i for i, cid in enumerate(customers)}
    who = np.array([index[c] for c in run.contacts["customer_id"]], dtype=np.intp)
    if column == "contacts":
        return np.bincount(who, minlength=len(customers)).astype(float)
    values = run.contacts[column].to_numpy(dtype=float)
    return np.bincount(who, values, minlength=len(customers))


def difference_interval(
    a: PolicyRun,
    b: PolicyRun,
    customers: Sequence[str],
    *,
    column: str = "revenue",
    per_contact: bool = False,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Paired Poisson-bootstrap interval of ``a`` minus ``b``: total ``column`` per
    customer, or per contact when ``per_contact``. Both runs are resampled with the
    same customer weights, since they decided for the same customers."""
    va, vb = per_customer(a, customers, column), per_customer(b, customers, column)
    weights = bootstrap_weights(seed, len(customers))
    top_a, top_b = weights @ va, weights @ vb
    if per_contact:
        na = weights @ per_customer(a, customers, "contacts")
        nb = weights @ per_customer(b, customers, "contacts")
        ok = (na > 0) & (nb > 0)
        diff = top_a[ok] / na[ok] - top_b[ok] / nb[ok]
    else:
        diff = (top_a - top_b) / max(1, len(customers))
    low, high = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return (float(low), float(high))


def ratio_of_totals_interval(
    a: PolicyRun,
    b: PolicyRun,
    customers: Sequence[str],
    *,
    column: str = "margin",
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """``a``'s total ``column`` over ``b``'s, with a paired Poisson-bootstrap interval
    over customers: ``(ratio, low, high)`` (NaN when ``b``'s total is 0)."""
    va, vb = per_customer(a, customers, column), per_customer(b, customers, column)
    if vb.sum() == 0:
        return (float("nan"), float("nan"), float("nan"))
    weights = bootstrap_weights(seed, len(customers))
    top, bottom = weights @ va, weights @ vb
    ok = bottom != 0
    low, high = np.quantile(top[ok] / bottom[ok], [(1 - level) / 2, (1 + level) / 2])
    return (float(va.sum() / vb.sum()), float(low), float(high))


def mean_interval(
    run: PolicyRun,
    customers: Sequence[str],
    *,
    column: str = "margin",
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Poisson-bootstrap interval of the mean over customers of their total ``column``."""
    values = per_customer(run, customers, column)
    return ratio_interval(values, np.ones(len(customers)), seed=seed, level=level)


#: The headline's comparisons: the engine against random and the oracle, both at its volume.
HEADLINE_RATIOS: tuple[tuple[str, str], ...] = (
    ("nba", "random~nba"),
    ("nba", "oracle~nba"),
    ("nba", "oracle"),
    ("nba", "rules"),
    ("nba-greedy", "nba"),
    ("nba-greedy", "oracle~nba-greedy"),
)


def headline_table(
    runs: Mapping[str, PolicyRun],
    metrics: Sequence[PolicyMetrics],
    customers: Sequence[str],
    *,
    ratios: Sequence[tuple[str, str]] = HEADLINE_RATIOS,
    seed: int = 0,
) -> str:
    """True incremental margin per customer over the horizon (see the module doc), per
    policy with its 95 % interval, then the ratios of ``ratios`` with paired intervals."""
    lines = [
        "| policy | contacts | contacts / customer | incremental margin / customer (95% CI) | "
        "unsubscribes | violations |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in metrics:
        low, high = mean_interval(runs[m.policy], customers, seed=seed)
        lines.append(
            f"| {m.policy} | {m.contacts:,} | {m.contacts_per_customer:.2f} | "
            f"{m.margin_per_customer:.4f} ({low:.4f} to {high:.4f}) | {m.unsubscribes:,} | "
            f"{m.violations} |"
        )
    pairs = [(a, b) for a, b in ratios if a in runs and b in runs]
    if pairs:
        lines.append("")
    for a, b in pairs:
        ratio, low, high = ratio_of_totals_interval(runs[a], runs[b], customers, seed=seed)
        lines.append(
            f"- {a} / {b}: incremental margin {ratio:.2f}x (paired 95% CI {low:.2f}-{high:.2f}x)"
        )
    return "\n".join(lines)


#: Ratio lines of the table: (policy, compared with), when both ran.
DEFAULT_RATIOS: tuple[tuple[str, str], ...] = (
    ("nba", "random"),
    ("nba", "random~nba"),
    ("nba", "oracle"),
    ("nba", "oracle~nba"),
    ("nba+truth", "oracle"),
    ("nba+truth~nba", "oracle~nba"),
)


def markdown_table(
    metrics: Sequence[PolicyMetrics], *, ratios: Sequence[tuple[str, str]] = DEFAULT_RATIOS
) -> str:
    """The comparison as Markdown: one row per policy, then the ratios of ``ratios``."""
    lines = [
        "| policy | decisions | contacts | conversions | conv. rate | revenue | "
        "revenue / contact (95% CI) | margin | margin / customer | unsubscribes | violations |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in metrics:
        low, high = m.revenue_per_contact_ci
        lines.append(
            f"| {m.policy} | {m.decisions:,} | {m.contacts:,} | {m.conversions:,} | "
            f"{m.conversion_rate:.2%} | {m.revenue:,.0f} | "
            f"{m.revenue_per_contact:.2f} ({low:.2f}-{high:.2f}) | {m.margin:,.0f} | "
            f"{m.margin_per_customer:.3f} | {m.unsubscribes:,} | {m.violations} |"
        )
    by_name = {m.policy: m for m in metrics}
    pairs = [(a, b) for a, b in ratios if a in by_name and b in by_name]
    if pairs:
        lines.append("")
    for subject, other in pairs:
        a, b = by_name[subject], by_name[other]
        lines.append(
            f"- {subject} / {other}: revenue per contact "
            f"{_ratio(a.revenue_per_contact, b.revenue_per_contact)}, "
            f"revenue {_ratio(a.revenue, b.revenue)}, margin {_ratio(a.margin, b.margin)}"
        )
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    if b == 0:
        return "n/a"
    return f"{a / b:.2f}x" if b > 0 else f"{a:.2f} vs {b:.2f}"
