"""Consent: a hard constraint, checked before anything else on a channel.

No outbound contact on a channel that needs consent unless the customer has
opted in; after an unsubscribe, a complaint or an SMS STOP the profile's
``consents`` records the withdrawal and the channel is closed. The mobile wallet
reaches only the customers who added the brand's pass (a ``wallet_pass_added`` event,
recorded in ``consents`` too). On-site and in-app placements are always open.

>>> from nba.profile import CustomerProfile
>>> p = CustomerProfile("C1", consents={Channel.EMAIL: True, Channel.SMS: False})
>>> consent_reason(p, Channel.EMAIL) is None
True
>>> consent_reason(p, Channel.SMS).code
<ReasonCode.NO_CONSENT: 'no_consent'>
>>> consent_reason(p, Channel.WEB) is None
True
>>> consent_reason(p, Channel.WALLET).message
'the customer holds no wallet pass (a wallet_pass_added event opens wallet messages)'
>>> consent_reason(CustomerProfile("C2", consents={Channel.WALLET: True}), Channel.WALLET) is None
True
"""

from __future__ import annotations

from nba.channels import Channel
from nba.profile import CustomerProfile
from nba.reasons import Reason, ReasonCode


def consent_reason(profile: CustomerProfile, channel: Channel) -> Reason | None:
    """``None`` when ``channel`` may be used for this customer, else why not."""
    if profile.consented(channel):
        return None
    if channel.needs_pass:
        message = (
            f"the customer holds no {channel.value} pass (a wallet_pass_added event opens "
            f"{channel.value} messages)"
        )
    elif channel in profile.consents:
        message = f"the customer withdrew or never gave consent to {channel.value} contact"
    else:
        message = f"no {channel.value} consent on record (opt-in required)"
    return Reason(ReasonCode.NO_CONSENT, message)
