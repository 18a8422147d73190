"""Reason codes: why a candidate action was filtered out or lost arbitration.

Every candidate the engine drops carries a :class:`ReasonCode` and a human
message, so that a marketer can read why a customer did not get an action and
an analyst can count refusals by cause.

>>> ReasonCode.NO_CONSENT.stage
'consent'
>>> r = Rejection("cart_reminder_1", None, ReasonCode.NOT_ELIGIBLE, "cart is empty")
>>> str(r)
'cart_reminder_1: not_eligible (cart is empty)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from nba.channels import Channel
from nba.frozen import fast_init

Stage = Literal["eligibility", "consent", "contact_policy", "scoring", "arbitration"]


class ReasonCode(StrEnum):
    """Why a candidate (an action, or an action on one channel) was not chosen."""

    # the request
    NOT_REQUESTED = "not_requested"  # the caller restricted the actions or the channel
    # the action itself
    OUTSIDE_VALIDITY = "outside_validity"  # before valid_from or after valid_to
    NOT_ELIGIBLE = "not_eligible"  # eligibility rule false or unknown, or no variant matches
    ACTION_COOLDOWN = "action_cooldown"  # the same action was sent to this customer too recently
    OFFER_HELD = "offer_held"  # the customer still holds another time-limited incentive
    BUDGET_EXHAUSTED = "budget_exhausted"  # the offer's daily budget is used up
    VOLUME_LIMIT = "volume_limit"  # the action's daily volume is used up
    # consent (hard constraint)
    NO_CONSENT = "no_consent"  # not opted in, or opted out (unsubscribe, complaint, STOP)
    # contact policy, per channel
    CHANNEL_UNAVAILABLE = "channel_unavailable"  # e.g. on-site placement without a web session
    REFUSAL_COOLDOWN = "refusal_cooldown"  # the customer refused a contact on this channel recently
    CONTACT_TOO_RECENT = "contact_too_recent"  # minimum gap between two contacts on a channel
    CHANNEL_DAILY_CAP = "channel_daily_cap"
    CHANNEL_WEEKLY_CAP = "channel_weekly_cap"
    CHANNEL_30_DAY_CAP = "channel_30_day_cap"
    TOTAL_DAILY_CAP = "total_daily_cap"
    TOTAL_WEEKLY_CAP = "total_weekly_cap"
    FATIGUE = "fatigue"  # many recent contacts, no engagement
    NO_SEND_SLOT = "no_send_slot"  # quiet hours leave no allowed moment within the time-to-live
    # scoring
    UPLIFT_TOO_LOW = "uplift_too_low"  # the offer would not change what the customer does
    # arbitration
    OTHER_CHANNEL_PREFERRED = "other_channel_preferred"  # same action, better channel chosen
    EXCLUSIVE_GROUP = "exclusive_group"  # another action of the same group was chosen
    LOST_ARBITRATION = "lost_arbitration"  # another action (or doing nothing) won

    @property
    def stage(self) -> Stage:
        """The step of the decision that produced this code."""
        return _STAGES[self]

    @property
    def is_filter(self) -> bool:
        """True when the candidate was filtered out (it never competed in arbitration)."""
        return self in _FILTERS


_STAGES: dict[ReasonCode, Stage] = {
    ReasonCode.NOT_REQUESTED: "eligibility",
    ReasonCode.OUTSIDE_VALIDITY: "eligibility",
    ReasonCode.NOT_ELIGIBLE: "eligibility",
    ReasonCode.ACTION_COOLDOWN: "eligibility",
    ReasonCode.OFFER_HELD: "eligibility",
    ReasonCode.BUDGET_EXHAUSTED: "eligibility",
    ReasonCode.VOLUME_LIMIT: "eligibility",
    ReasonCode.NO_CONSENT: "consent",
    ReasonCode.CHANNEL_UNAVAILABLE: "contact_policy",
    ReasonCode.REFUSAL_COOLDOWN: "contact_policy",
    ReasonCode.CONTACT_TOO_RECENT: "contact_policy",
    ReasonCode.CHANNEL_DAILY_CAP: "contact_policy",
    ReasonCode.CHANNEL_WEEKLY_CAP: "contact_policy",
    ReasonCode.CHANNEL_30_DAY_CAP: "contact_policy",
    ReasonCode.TOTAL_DAILY_CAP: "contact_policy",
    ReasonCode.TOTAL_WEEKLY_CAP: "contact_policy",
    ReasonCode.FATIGUE: "contact_policy",
    ReasonCode.NO_SEND_SLOT: "contact_policy",
    ReasonCode.UPLIFT_TOO_LOW: "scoring",
    ReasonCode.OTHER_CHANNEL_PREFERRED: "arbitration",
    ReasonCode.EXCLUSIVE_GROUP: "arbitration",
    ReasonCode.LOST_ARBITRATION: "arbitration",
}

_FILTERS = frozenset(code for code, stage in _STAGES.items() if stage != "arbitration")


@fast_init
@dataclass(frozen=True, slots=True)
class Reason:
    """A reason code with its human message, before it is tied to an action."""

    code: ReasonCode
    message: str


@fast_init
@dataclass(frozen=True, slots=True)
class Rejection:
    """A candidate that was not chosen: the action, the channel (``None`` for the
    whole action), the reason code and a message a marketer can read."""

    action_id: str
    channel: Channel | None
    code: ReasonCode
    message: str

    @classmethod
    def of(cls, action_id: str, channel: Channel | None, reason: Reason) -> Rejection:
        """Tie ``reason`` to an action and channel."""
        return cls(action_id, channel, reason.code, reason.message)

    def __str__(self) -> str:
        where = self.action_id if self.channel is None else f"{self.action_id} on {self.channel}"
        return f"{where}: {self.code} ({self.message})"


class WrittenWhenRead(Rejection):
    """A :class:`Rejection` whose message is written the first time it is read.

    Most actions are refused at every decision and few refusals are ever read (a batch
    file, the closed loop): the words that name a failing clause and the customer's
    values cost more than the rest of the screening, so they wait for a reader (the
    API's answer). ``write`` (called with ``arguments``) must give the same text whenever
    it is called.

    >>> calls = []
    >>> r = WrittenWhenRead("a", None, ReasonCode.NOT_ELIGIBLE, lambda: calls.append(1) or "why")
    >>> len(calls)
    0
    >>> r.message, r.message, len(calls), str(r)
    ('why', 'why', 1, 'a: not_eligible (why)')
    >>> WrittenWhenRead("b", None, ReasonCode.NOT_ELIGIBLE, "{} is {}".format, "x", 2).message
    'x is 2'
    """

    __slots__ = ("_arguments", "_write")
    _write: Callable[..., str]
    _arguments: tuple[object, ...]

    def __init__(
        self,
        action_id: str,
        channel: Channel | None,
        code: ReasonCode,
        write: Callable[..., str],
        *arguments: object,
    ) -> None:
        # one is made per refused action and decision: each slot set through its own
        # descriptor (a frozen dataclass's __setattr__ refuses, and object.__setattr__
        # looks the name up again); nothing else sets them, so it stays as good as frozen
        _set_action_id(self, action_id)
        _set_channel(self, channel)
        _set_code(self, code)
        _set_write(self, write)
        _set_arguments(self, arguments)

    def __getattr__(self, name: str) -> str:
        """``message``, written now (only an unset slot gets here)."""
        if name != "message":
            raise AttributeError(name)
        text = self._write(*self._arguments)
        _set_message(self, text)
        return text


# the slots' descriptors (Rejection's and WrittenWhenRead's own), read once
_set_action_id = Rejection.__dict__["action_id"].__set__
_set_channel = Rejection.__dict__["channel"].__set__
_set_code = Rejection.__dict__["code"].__set__
_set_message = Rejection.__dict__["message"].__set__
_set_write = WrittenWhenRead.__dict__["_write"].__set__
_set_arguments = WrittenWhenRead.__dict__["_arguments"].__set__
