"""Issue 12 (winback6) through the real API: with the contact policy's
``offer_trial_share`` set, ``POST /v1/decisions`` tries the win-back discount the
offer-pays test refuses on exactly the lapsed customers whose draw is below the share,
says so in the chosen action's reasons ("refused on priors"), and names the trial the
others are held out of.
(:mod:`tests.test_scenarios_api`'s shop: a real app on a real Redis, raw events.)"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from features.dataset import RetailDataset
from nba.offer_trial import trial_draw
from tests.api_support import redis_client
from tests.test_scenarios_api import PARIS, codes, event, local, open_shop, the_action

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"


def test_the_api_tries_the_refused_win_back_discount_on_its_share(
    base: RetailDataset, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("offer_trial_api")
    policy = root / "contact_policy.yaml"
    policy.write_text((EXAMPLES / "contact_policy.yaml").read_text() + "offer_trial_share: 0.5\n")
    prefix = f"trial{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, contact_policy_path=policy) as shop:
        tried, held = [], []
        for _ in range(16):
            customer = shop.signup(local(PARIS, "2025-08-01 10:00"), consents=("email", "sms"))
            shop.post(event(customer, local(PARIS, "2025-09-01 11:00"), "purchase", "P2"))
            shop.post(event(customer, local(PARIS, "2025-10-01 11:00"), "purchase", "P2"))
            answer = shop.decide(customer, local(PARIS, "2026-03-04 10:00"))
            chosen = the_action(answer)
            expected = trial_draw("reactivation_offer", customer) < 0.5
            assert (chosen["action_id"] == "reactivation_offer") == expected
            if not expected:  # the refusal on priors among the others' reasons
                refused = set(codes(answer, "reactivation_offer"))
                assert refused and refused <= {"uplift_too_low", "lost_arbitration"}
            (tried if expected else held).append(chosen)
        assert tried and held
        for chosen in tried:
            assert chosen["offer_id"] == "winback_15" and chosen["explored"]
            assert chosen["channel"] in ("email", "sms")
            [pick] = [r for r in chosen["reasons"] if r.startswith("pick: ")]
            assert "explored: reactivation_offer (refused on priors" in pick
            assert "tried on 50.0% of the customers it is refused to" in pick
        for chosen in held:
            [pick] = [r for r in chosen["reasons"] if r.startswith("pick: ")]
            assert "held out of the trial of reactivation_offer" in pick
