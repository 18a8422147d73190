"""One draw of a message's outcomes, consistent with the marginal probabilities.

The draw follows the funnel: delivered, then (independently) withdrawn and
opened; clicked only when opened and not withdrawn; converted only when
clicked; purchased when converted or, independently, by organic buying
(faster while holding an opened coupon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulator.response.probabilities import ResponseTerms


class UniformSource(Protocol):
    """What sampling needs of a random generator: uniforms of a given shape."""

    def random(self, size: tuple[int, int]) -> np.ndarray: ...


@dataclass(frozen=True)
class ResponseSample:
    """One draw of outcomes, boolean arrays of shape ``(n,)``.

    Fields mirror :class:`~simulator.response.probabilities.ResponseProbabilities`.
    """

    delivered: np.ndarray
    opened: np.ndarray
    clicked: np.ndarray
    converted: np.ndarray
    purchased: np.ndarray
    unsubscribed: np.ndarray


#: Uniforms drawn per message, in one ``rng.random((DRAWS, n))`` call: a caller may
#: hand in a source that fills each message's column from its own stream.
DRAWS = 6


def draw_outcomes(rng: UniformSource, terms: ResponseTerms) -> ResponseSample:
    """Outcomes of the messages behind ``terms``, from one block of uniforms."""
    u = rng.random((DRAWS, terms.size))
    delivered = u[0] < terms.deliver
    unsubscribed = delivered & (u[1] < terms.unsubscribe)
    opened = delivered & (u[2] < terms.open)
    clicked = opened & ~unsubscribed & (u[3] < terms.click)
    converted = clicked & (u[4] < terms.convert)
    organic = np.where(opened, terms.organic_probability(True), terms.organic_probability(False))
    purchased = converted | (u[5] < organic)
    return ResponseSample(delivered, opened, clicked, converted, purchased, unsubscribed)
