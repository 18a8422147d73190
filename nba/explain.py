"""Explanations: why this action, on this channel, at this time, and why not the others.

For each chosen action the explanation lists the factors of its priority
(propensity or uplift, value, lever, fatigue, costs), how it was picked
(highest priority, exploration, random draw), why its channel beat the
action's other channels and why its send time. For the best rejected
candidates it says why they lost (the winner and both priorities) or why they
were filtered (reason code and message).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nba.arbitration import DECLARED_CHANNEL, Option, Pick
from nba.channels import Channel
from nba.frozen import fast_init
from nba.reasons import ReasonCode, Rejection
from nba.timing import minute_text

#: How many rejected candidates an explanation lists by default.
MAX_REJECTED = 10


@fast_init
@dataclass(frozen=True, slots=True)
class Factor:
    """One factor of a decision: its name, its value and what it means."""

    name: str
    value: float | str
    detail: str


@fast_init
@dataclass(frozen=True)
class ChosenExplanation:
    """Why one action was chosen."""

    action_id: str
    channel: Channel | None
    summary: str
    factors: tuple[Factor, ...]


@fast_init
@dataclass(frozen=True)
class RejectedExplanation:
    """Why one candidate was not chosen (``priority`` is known when it competed)."""

    action_id: str
    channel: Channel | None
    code: ReasonCode
    message: str
    priority: float | None = None

    def __str__(self) -> str:
        where = self.action_id if self.channel is None else f"{self.action_id} on {self.channel}"
        return f"{where}: {self.code} - {self.message}"


def rejection_items(rejected: Iterable[RejectedExplanation]) -> list[dict[str, str | None]]:
    """``rejected`` as the API's answer and the batch file give them: one
    ``{action_id, channel, code, message}`` item each.

    >>> rejection_items([RejectedExplanation("a", None, ReasonCode.NOT_ELIGIBLE, "why")])
    [{'action_id': 'a', 'channel': None, 'code': 'not_eligible', 'message': 'why'}]
    """
    return [
        {
            "action_id": r.action_id,
            "channel": None if r.channel is None else r.channel.value,
            "code": r.code.value,
            "message": r.message,
        }
        for r in rejected
    ]


class Explanation:
    """The explanation of a decision, as data and as text (:meth:`lines`).

    Built by :func:`explain` from the decision's parts and written out only when read:
    :attr:`chosen` and :attr:`rejected` are each made on first access (a batch reads the
    first, a closed loop neither), then kept. Equal when both parts are equal.
    """

    __slots__ = ("_chosen", "_every_rejected", "_parts", "_rejected")

    def __init__(
        self,
        chosen: tuple[ChosenExplanation, ...] | None,
        rejected: tuple[RejectedExplanation, ...] | None,
        parts: _Parts | None = None,
    ) -> None:
        self._chosen = chosen
        self._rejected = rejected
        self._every_rejected: tuple[RejectedExplanation, ...] | None = None
        self._parts = parts

    @property
    def chosen(self) -> tuple[ChosenExplanation, ...]:
        """Why each chosen action was chosen, in order."""
        if self._chosen is None:
            assert self._parts is not None
            self._chosen = _chosen_of(self._parts)
        return self._chosen

    @property
    def rejected(self) -> tuple[RejectedExplanation, ...]:
        """The best rejected candidates: losers first (highest priority first), then
        filtered actions in catalog order, at most ``max_rejected``."""
        if self._rejected is None:
            assert self._parts is not None
            self._rejected = _rejected_of(self._parts, self._parts.max_rejected)
        return self._rejected

    @property
    def every_rejected(self) -> tuple[RejectedExplanation, ...]:
        """Every action not chosen, in :attr:`rejected`'s order without its limit: why not
        each of the others (the API's answer), less what a request did not ask for (the
        caller knows what it left out, and it would hide the reasons it asked for)."""
        if self._every_rejected is None:
            if self._parts is None:  # written out: only the listed ones travelled
                return self.rejected
            self._every_rejected = _rejected_of(self._parts, None)
        return self._every_rejected

    def every_rejected_items(self) -> list[dict[str, str | None]]:
        """``rejection_items(self.every_rejected)``, the API's ``rejected``: written
        straight from the decision's parts when :attr:`every_rejected` was not read."""
        if self._every_rejected is not None or self._parts is None:
            return rejection_items(self.every_rejected)
        return _rejected_items(self._parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return (self.chosen, self.rejected) == (other.chosen, other.rejected)

    def __hash__(self) -> int:
        return hash((self.chosen, self.rejected))

    def __repr__(self) -> str:
        return f"Explanation(chosen={self.chosen!r}, rejected={self.rejected!r})"

    def __reduce__(self) -> tuple[object, ...]:  # written out: the parts stay in this process
        return (Explanation, (self.chosen, self.rejected))

    def lines(self) -> list[str]:
        out: list[str] = []
        for chosen in self.chosen:
            out.append(f"chose {chosen.summary}")
            out.extend(f"  - {f.name}: {f.detail}" for f in chosen.factors)
        if not self.chosen:
            out.append("nothing to do: every action was filtered out")
        for rejected in self.rejected:
            out.append(f"not {rejected}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def explain(
    chosen: Sequence[tuple[Option, Pick]],
    competed: Sequence[tuple[Option, Rejection]],
    rejections: Sequence[Rejection],
    *,
    max_rejected: int = MAX_REJECTED,
) -> Explanation:
    """Build the explanation of a decision.

    Parameters
    ----------
    chosen
        The picked options, in order, with their picks.
    competed
        Options that competed and lost, with the rejection recorded for them.
    rejections
        Every rejection of the decision (filters and channel choices).
    max_rejected
        How many rejected candidates to list: losers first (highest priority
        first), then filtered actions in catalog order.
    """
    return Explanation(
        None, None, _Parts(tuple(chosen), tuple(competed), tuple(rejections), max_rejected)
    )


@fast_init
@dataclass(frozen=True, slots=True)
class _Parts:
    """What :func:`explain` was given, kept until the explanation is read."""

    chosen: tuple[tuple[Option, Pick], ...]
    competed: tuple[tuple[Option, Rejection], ...]
    rejections: tuple[Rejection, ...]
    max_rejected: int


def _chosen_of(parts: _Parts) -> tuple[ChosenExplanation, ...]:
    competed, rejections = parts.competed, parts.rejections
    return tuple(
        _explain_choice(option, pick, competed, rejections) for option, pick in parts.chosen
    )


def _rejected_of(parts: _Parts, max_rejected: int | None) -> tuple[RejectedExplanation, ...]:
    """The rejected candidates, at most ``max_rejected``; all of them, less those not
    requested, when ``None``."""
    return tuple([RejectedExplanation(*row) for row in _rejected_rows(parts, max_rejected)])


def _rejected_items(parts: _Parts) -> list[dict[str, str | None]]:
    """:func:`rejection_items` of ``_rejected_of(parts, None)``, written straight from the
    rows (no :class:`RejectedExplanation` made only to be turned into a dict)."""
    return [
        {
            "action_id": action_id,
            "channel": None if channel is None else channel.value,
            "code": code.value,
            "message": message,
        }
        for action_id, channel, code, message, _ in _rejected_rows(parts, None)
    ]


_Row = tuple[str, Channel | None, ReasonCode, str, float | None]


def _rejected_rows(parts: _Parts, max_rejected: int | None) -> list[_Row]:
    """The fields of :func:`_rejected_of`'s explanations, in its order."""
    chosen, competed, rejections = parts.chosen, parts.competed, parts.rejections
    losers: dict[str, list[tuple[Option, Rejection]]] = {}  # per action, best first
    for item in sorted(competed, key=lambda item: -item[0].priority):
        losers.setdefault(item[0].action_id, []).append(item)
    rows: list[_Row] = [_lost(group) for group in losers.values()]
    listed = {o.action_id for o, _ in competed} | {o.action_id for o, _ in chosen}
    for action_id, group in _filtered_by_action(rejections, listed, max_rejected is None):
        if max_rejected is not None and 0 <= max_rejected <= len(rows):
            break  # the rest would be cut below: not built
        if len(group) == 1:
            r = group[0]
            rows.append((action_id, r.channel, r.code, r.message, None))
        else:
            message = "; ".join(f"{r.channel}: {r.code} ({r.message})" for r in group)
            rows.append((action_id, None, group[0].code, message, None))
    return rows if max_rejected is None else rows[:max_rejected]


def _lost(group: Sequence[tuple[Option, Rejection]]) -> _Row:
    """One action's options that competed and lost: one entry, each channel's reason
    joined when it lost on several."""
    option, reason = group[0]
    if len(group) == 1:
        return (option.action_id, reason.channel, reason.code, reason.message, option.priority)
    message = "; ".join(
        f"{'-' if o.slot is None else o.slot.channel.value}: {r.code} ({r.message})"
        for o, r in group
    )
    return (option.action_id, None, reason.code, message, option.priority)


def _filtered_by_action(
    rejections: Sequence[Rejection], skip: set[str], asked_only: bool
) -> list[tuple[str, list[Rejection]]]:
    groups: dict[str, list[Rejection]] = {}
    for rejection in rejections:
        if rejection.action_id in skip or not rejection.code.is_filter:
            continue
        if asked_only and rejection.code is ReasonCode.NOT_REQUESTED:
            continue
        groups.setdefault(rejection.action_id, []).append(rejection)
    return list(groups.items())


def _explain_choice(
    option: Option,
    pick: Pick,
    competed: Sequence[tuple[Option, Rejection]],
    rejections: Sequence[Rejection],
) -> ChosenExplanation:
    action = option.candidate.action
    factors: list[Factor] = []
    terms = option.assessment.terms
    if terms is not None:
        if terms.uplift is not None:
            factors.append(
                Factor(
                    "uplift", terms.uplift, f"{terms.uplift:.3f} incremental response probability"
                )
            )
        if terms.offer_uplift is not None:
            factors.append(
                Factor(
                    "offer_uplift",
                    terms.offer_uplift,
                    f"the offer adds {terms.offer_uplift:.3f} to the response",
                )
            )
        factors.append(
            Factor("propensity", terms.propensity, f"P(response) = {terms.propensity:.3f}")
        )
        factors.append(Factor("value", terms.value, f"value of a response {terms.value:.2f}"))
        if terms.lever != 1.0:
            factors.append(Factor("lever", terms.lever, f"business lever x{terms.lever:g}"))
        if terms.fatigue < 1.0:
            factors.append(
                Factor("fatigue", terms.fatigue, f"recent contacts damp it x{terms.fatigue:.2f}")
            )
        if terms.channel_cost:
            factors.append(
                Factor("channel_cost", terms.channel_cost, f"cost of a send {terms.channel_cost:g}")
            )
        if terms.offer_cost:
            factors.append(
                Factor(
                    "offer_cost",
                    terms.offer_cost,
                    f"offer cost {terms.offer_cost:g} per redemption, x P(response)"
                    + (f" + {anyway}" if (anyway := terms.redeemed_anyway_text) else ""),
                )
            )
        if terms.opportunity_cost:
            factors.append(Factor("opportunity_cost", terms.opportunity_cost, terms.kept_free_for))
        if terms.deferral_credit:
            factors.append(Factor("deferral", terms.deferral_credit, terms.deferred_for))
    factors.append(Factor("priority", option.priority, f"priority {option.priority:.3g}"))
    factors.append(
        Factor(
            "pick",
            pick.propensity,
            f"{pick.basis or 'picked'} (probability {pick.propensity:.3f})",
        )
    )
    beaten = [o for o, _ in competed]
    if beaten:
        runner_up = max(beaten, key=lambda o: o.priority)
        factors.append(
            Factor(
                "runner_up",
                runner_up.action_id,
                f"next best {runner_up.action_id} with priority {runner_up.priority:.3g}",
            )
        )
    if option.slot is not None:
        own = [r for r in rejections if r.action_id == action.id]  # mostly none
        others = [r for r in own if r.code == ReasonCode.OTHER_CHANNEL_PREFERRED]
        blocked = [r for r in own if r.code.is_filter]
        detail = f"{option.slot.channel.value}, the best of the action's available channels"
        if any(r.channel == option.slot.channel for r in others):  # exploration sends here
            detail = f"{option.slot.channel.value}, explored: not the action's best channel"
        elif any(r.message.endswith(DECLARED_CHANNEL) for r in others):
            detail = f"{option.slot.channel.value}{DECLARED_CHANNEL}"
        if others:
            detail += " (" + "; ".join(r.message for r in others) + ")"
        if blocked:
            detail += "; unavailable: " + ", ".join(f"{r.channel} ({r.code})" for r in blocked)
        factors.append(Factor("channel", option.slot.channel.value, detail))
        send = option.slot.send
        factors.append(
            Factor(
                "send_time",
                send.at.isoformat(),
                f"{minute_text(send.local, weekday=True)} local "
                f"({send.at.hour:02d}:{send.at.minute:02d} UTC): {send.basis}",
            )
        )
        summary = (
            f"{action.id} on {option.slot.channel.value} at {minute_text(send.local)} "
            f"local time, priority {option.priority:.3g}"
        )
    else:
        summary = f"{action.id} (no contact), priority {option.priority:.3g}"
    return ChosenExplanation(
        action.id, None if option.slot is None else option.slot.channel, summary, tuple(factors)
    )
