"""Channels: where customers interact with the brand and where nba can reach them.

Every channel produces behavioural events; only *outbound* channels can deliver
an action chosen by the engine, and only *consent* channels need an explicit
opt-in before the engine may use them.

>>> Channel("sms").is_outbound, Channel("sms").needs_consent
(True, True)
>>> Channel.STORE.is_outbound
False
>>> parse_channel("E-mail")
<Channel.EMAIL: 'email'>
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """The channels nba knows. Values are the spelling used in data files and the API."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WALLET = "wallet"
    POSTAL = "postal"
    WEB = "web"
    APP = "app"
    STORE = "store"
    SOCIAL = "social"
    CALL_CENTRE = "call_centre"

    @property
    def value(self) -> str:
        """The channel's spelling: ``Enum.value`` read in one step (the enum's own property
        goes through two Python calls; decisions read channels' values a dozen times)."""
        return self._value_

    @property
    def is_outbound(self) -> bool:
        """True when the engine may choose this channel to deliver an action.

        Web and app count as outbound through on-site and in-app placements.
        """
        return self in OUTBOUND_CHANNELS

    @property
    def needs_consent(self) -> bool:
        """True when contact on this channel requires the customer's opt-in."""
        return self in CONSENT_CHANNELS

    @property
    def needs_pass(self) -> bool:
        """True when the channel reaches only customers who added the brand's pass (the
        mobile wallet: a ``wallet_pass_added`` event opens it), consent aside."""
        return self in PASS_CHANNELS


#: Channels whose contact requires an explicit, recorded opt-in.
CONSENT_CHANNELS: tuple[Channel, ...] = (
    Channel.EMAIL,
    Channel.SMS,
    Channel.PUSH,
    Channel.POSTAL,
    Channel.CALL_CENTRE,
)

#: Channels that reach only the customers holding the brand's pass: a wallet message is
#: an update of the loyalty card the customer added to their phone's wallet.
PASS_CHANNELS: tuple[Channel, ...] = (Channel.WALLET,)

#: Outbound channels that show content in a session the customer has open (on-site and
#: in-app placements) rather than send a message.
PLACEMENT_CHANNELS: frozenset[Channel] = frozenset({Channel.WEB, Channel.APP})

#: Channels the engine can use to deliver an action.
OUTBOUND_CHANNELS: tuple[Channel, ...] = (
    Channel.EMAIL,
    Channel.SMS,
    Channel.PUSH,
    Channel.WALLET,
    Channel.POSTAL,
    Channel.WEB,
    Channel.APP,
    Channel.CALL_CENTRE,
)

_ALIASES: dict[str, Channel] = {
    "e-mail": Channel.EMAIL,
    "mail": Channel.EMAIL,
    "text": Channel.SMS,
    "push_notification": Channel.PUSH,
    "mobile_wallet": Channel.WALLET,
    "postal_mail": Channel.POSTAL,
    "direct_mail": Channel.POSTAL,
    "website": Channel.WEB,
    "mobile": Channel.APP,
    "mobile_app": Channel.APP,
    "in_app": Channel.APP,
    "pos": Channel.STORE,
    "call_center": Channel.CALL_CENTRE,
    "callcentre": Channel.CALL_CENTRE,
    "callcenter": Channel.CALL_CENTRE,
}


def parse_channel(value: str) -> Channel:
    """Return the channel named by ``value``, accepting common spellings.

    Raises ``ValueError`` naming the accepted values when ``value`` is unknown.
    """
    key = str(value).strip().lower().replace(" ", "_")
    try:
        return Channel(key)
    except ValueError:
        pass
    if key in _ALIASES:
        return _ALIASES[key]
    accepted = ", ".join(c.value for c in Channel)
    raise ValueError(f"unknown channel {value!r} (expected one of: {accepted})")
