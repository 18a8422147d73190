"""The API's ``rejected`` items written straight from a decision's parts
(:meth:`nba.explain.Explanation.every_rejected_items`) are the items of
:attr:`~nba.explain.Explanation.every_rejected`, item for item, on decisions of a
simulated retailer's customers built through the real feature code."""

from __future__ import annotations

import datetime as dt

import pytest

from cli.decide import load_catalog, load_contact_policy
from features.batch import build_profiles
from features.dataset import RetailDataset
from nba.channels import Channel
from nba.context import CustomerContext
from nba.explain import rejection_items
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile
from nba.screening import Restriction
from simulator import SimulatorConfig, simulate


@pytest.fixture(scope="module")
def profiles() -> list[CustomerProfile]:
    sim = simulate(SimulatorConfig(n_customers=200, days=30, seed=11, n_products=200))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    cut = sim.config.start + dt.timedelta(days=30, hours=-15)
    return build_profiles(data, as_of=cut, workers=1).profiles


@pytest.mark.parametrize(
    ("max_actions", "restriction"),
    [
        (1, None),
        (3, None),
        (2, Restriction(channels=frozenset({Channel.EMAIL}))),
        (1, Restriction(action_ids=frozenset({"cart_reminder_1", "welcome_1"}))),
    ],
)
def test_the_answers_rejected_items_are_those_of_every_rejected(
    profiles: list[CustomerProfile], max_actions: int, restriction: Restriction | None
) -> None:
    catalog, policy = load_catalog(None), load_contact_policy(None)
    pipeline = build_pipeline(catalog, policy, max_actions=max_actions)
    compared = joined = 0
    for profile in profiles:
        assert profile.as_of is not None
        for hours in (0, 9):  # the morning and the evening of the cut's day
            context = CustomerContext(profile, profile.as_of + dt.timedelta(hours=hours))
            seed = f"{hours}:{profile.customer_id}"
            first = pipeline.route(context, seed=seed, restriction=restriction).decision
            again = pipeline.route(context, seed=seed, restriction=restriction).decision
            items = first.explanation.every_rejected_items()  # straight from the parts
            expected = rejection_items(again.explanation.every_rejected)
            assert items == expected, profile.customer_id
            # once every_rejected was read, the items come from it, the same
            assert rejection_items(first.explanation.every_rejected) == items
            assert first.explanation.every_rejected_items() == items
            compared += len(items)
            joined += sum(
                1 for item in items if item["channel"] is None and "; " in item["message"]
            )
    assert compared > 500  # most actions are refused for most customers
    assert joined > 0  # some actions refused on several channels: their reasons joined
