"""Budgeted hyper-parameter search on the validation split (never on the test).

Each family has a default (what ``nba train`` fits without ``--tune``), a few
hand-picked variants and, for the LightFM families, a search space sampled at
random (seeded) until the budget of fits is spent. :func:`candidates` lists
what :func:`~training.selection.select_recommender` fits for one family.

>>> [c["l2"] for c in candidates("ease", tune=True)]
[250.0, 50.0, 100.0, 500.0, 1000.0]
>>> len(candidates("hybrid", tune=True, budget=6)), candidates("hybrid", tune=False)
(6, [{}])
"""

from __future__ import annotations

import random

#: Each family's default (first) and hand-picked variants tried when tuning.
GRIDS: dict[str, tuple[dict[str, object], ...]] = {
    "popularity": ({},),
    "ease": ({"l2": 250.0}, {"l2": 50.0}, {"l2": 100.0}, {"l2": 500.0}, {"l2": 1000.0}),
    "sequential": (
        {},
        {"transitions": 0.0, "recency": 0.95},
        {"transitions": 0.4},
        {"l2": 500.0, "recency": 0.95},
        {"seen_weight": 0.0, "dropout": 0.0},
    ),
    "als": (
        {"factors": 64, "regularization": 0.05, "alpha": 10.0},
        {"factors": 32, "regularization": 0.1, "alpha": 20.0},
        {"factors": 128, "regularization": 1.0, "alpha": 5.0, "iterations": 20},
    ),
    "bpr": ({"factors": 64, "learning_rate": 0.01}, {"factors": 64, "learning_rate": 0.05}),
    "lightfm": ({}, {"item_alpha": 0.0, "user_alpha": 0.0}, {"epochs": 50}),
    "hybrid": (
        {},
        {"user_features": False, "behaviour_features": False, "epochs": 60},
        {"user_features": False, "epochs": 40},
    ),
}

#: Random-search spaces of the LightFM families (sampled after the hand-picked variants).
SEARCH_SPACES: dict[str, dict[str, tuple[object, ...]]] = {
    "hybrid": {
        "no_components": (32, 64, 96),
        "learning_rate": (0.02, 0.05, 0.08),
        "epochs": (30, 50, 70),
        "max_sampled": (10, 30),
        "user_features": (True, False),
        "behaviour_features": (True, False),
        "item_identity_weight": (0.5, 1.0, 2.0),
        "item_alpha": (0.0, 1e-6, 1e-5),
        "user_alpha": (0.0, 1e-6, 1e-5),
    },
    "lightfm": {
        "no_components": (32, 64, 96),
        "learning_rate": (0.02, 0.05, 0.08),
        "epochs": (30, 50),
        "item_alpha": (0.0, 1e-6),
        "user_alpha": (0.0, 1e-6),
    },
}
#: Fits per LightFM family when tuning (hand-picked variants included).
DEFAULT_BUDGET = 8


def candidates(
    family: str, *, tune: bool, budget: int = DEFAULT_BUDGET, seed: int = 0
) -> list[dict[str, object]]:
    """What to fit for ``family``: its default alone, or (``tune``) its variants and random
    draws from its search space, at most ``budget`` of them for the LightFM families."""
    grid = [dict(v) for v in GRIDS[family]]
    if not tune:
        return grid[:1]
    space = SEARCH_SPACES.get(family)
    if space is None:
        return grid
    rng = random.Random(seed)
    out = grid[:budget]
    seen = {tuple(sorted(c.items())) for c in out}
    attempts = 0
    while len(out) < budget and attempts < 100 * budget:
        attempts += 1
        draw = {name: rng.choice(values) for name, values in space.items()}
        key = tuple(sorted(draw.items()))
        if key not in seen:
            seen.add(key)
            out.append(draw)
    return out
