"""nba: the decision core. Domain vocabulary, rules and policies; pure Python, no I/O.

This package imports nothing from ``features``, ``training``, ``serving`` or
``experiments``; they all build on it.
"""

from nba.channels import CONSENT_CHANNELS, OUTBOUND_CHANNELS, Channel, parse_channel
from nba.events import EventType

__all__ = ["CONSENT_CHANNELS", "OUTBOUND_CHANNELS", "Channel", "EventType", "parse_channel"]
__version__ = "0.1.0"
