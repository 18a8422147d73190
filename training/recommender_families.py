"""The recommender families a training run chooses between, behind one interface.

Each family builds a :class:`~training.recommendation.Recommender` from a
:class:`FamilySpec` (its name and parameters) and a seed: popularity, EASE,
ALS and BPR from ``implicit``, plain LightFM, the hybrid LightFM
order-aware EASE (:mod:`training.sequential`) and a blend of the others
(:mod:`training.recommender_blend`, weights learned on validation). Every one
is registered and served the same way (``recommend(customer_ids, k, ...)``);
the built model carries its spec, so a champion can be refitted on new
held-out data and compared fairly (:func:`spec_of`).

>>> spec = FamilySpec("ease", {"l2": 100.0})
>>> model = build(spec)
>>> type(model).__name__, spec_of(model) == spec
('EASERecommender', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from training.baselines import EASERecommender, PopularityRecommender
from training.factorisation import ImplicitRecommender
from training.recommendation import Recommender
from training.recommender import HybridConfig, HybridRecommender, plain_lightfm
from training.recommender_blend import BlendRecommender
from training.sequential import SequentialEASERecommender

#: Every family, in the order they are reported.
FAMILIES: tuple[str, ...] = (
    "popularity",
    "ease",
    "sequential",
    "als",
    "bpr",
    "lightfm",
    "hybrid",
    "blend",
)
#: Families whose fit depends on the seed (fitted once per seed when several are asked).
STOCHASTIC: frozenset[str] = frozenset({"als", "bpr", "lightfm", "hybrid", "blend"})
#: The blend's components and weights when none are given (a selection learns them).
DEFAULT_BLEND: dict[str, Any] = {
    "components": {"sequential": {}, "lightfm": {}},
    "weights": {"sequential": 0.5, "lightfm": 0.5},
}
#: Families that are baselines: a learned model that loses to one is not promoted silently.
BASELINES: tuple[str, ...] = ("popularity", "ease")


@dataclass(frozen=True)
class FamilySpec:
    """A family and its parameters (those of its constructor or of :class:`HybridConfig`)."""

    family: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r} (expected one of {FAMILIES})")

    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.family}({shown})"


_HYBRID_FIELDS = frozenset(f.name for f in fields(HybridConfig))


def hybrid_config(params: Mapping[str, Any], seed: int = 0) -> HybridConfig:
    """The :class:`HybridConfig` for LightFM ``params`` (seed folded into ``random_state``)."""
    unknown = set(params) - _HYBRID_FIELDS
    if unknown:
        raise ValueError(f"unknown LightFM parameters: {sorted(unknown)}")
    base = HybridConfig(**dict(params))
    return replace(base, random_state=base.random_state + seed)


def build(spec: FamilySpec, seed: int = 0) -> Recommender:
    """An unfitted recommender of ``spec``'s family (``seed`` varies stochastic fits)."""
    params = dict(spec.params)
    model: Recommender
    if spec.family == "popularity":
        model = PopularityRecommender(**params)
    elif spec.family == "ease":
        model = EASERecommender(**params)
    elif spec.family == "sequential":
        model = SequentialEASERecommender(**params)
    elif spec.family in ("als", "bpr"):
        model = ImplicitRecommender(spec.family, random_state=seed, **params)
    elif spec.family == "lightfm":
        model = plain_lightfm(hybrid_config(params, seed))
    elif spec.family == "blend":
        model = blend(params or DEFAULT_BLEND, seed)
    else:
        model = HybridRecommender(hybrid_config(params, seed))
    model.spec = spec
    return model


def blend_spec(components: Mapping[str, FamilySpec], weights: Mapping[str, float]) -> FamilySpec:
    """The blend of ``components`` (one spec per family) with ``weights`` (by family)."""
    kept = {name: w for name, w in weights.items() if w > 0}
    return FamilySpec(
        "blend",
        {
            "components": {name: dict(components[name].params) for name in kept},
            "weights": {name: round(float(w), 6) for name, w in kept.items()},
        },
    )


def blend(params: Mapping[str, Any], seed: int = 0) -> BlendRecommender:
    """An unfitted :class:`BlendRecommender` from blend ``params`` (``components``: family to
    parameters; ``weights``: family to weight)."""
    unknown = set(params) - {"components", "weights"}
    if unknown or "components" not in params or "weights" not in params:
        raise ValueError(f"blend parameters are 'components' and 'weights' (got {sorted(params)})")
    components = dict(params["components"])
    if "blend" in components:
        raise ValueError("a blend cannot contain a blend")
    models = {name: build(FamilySpec(name, p), seed) for name, p in components.items()}
    return BlendRecommender(models, dict(params["weights"]))


def spec_of(model: Recommender) -> FamilySpec:
    """The spec a fitted model was built from (also for models registered before specs)."""
    spec = getattr(model, "spec", None)
    if isinstance(spec, FamilySpec):
        return spec
    if isinstance(model, BlendRecommender):
        parts = {name: spec_of(m) for name, m in model.components.items()}
        return blend_spec(parts, model.weights)
    if isinstance(model, HybridRecommender):
        family = "lightfm" if model.name == "lightfm" else "hybrid"
        return FamilySpec(family, model.config.to_params())
    if isinstance(model, SequentialEASERecommender):
        return FamilySpec("sequential", model.params())
    if isinstance(model, EASERecommender):
        return FamilySpec("ease", {"l2": model.l2, "binary": model.binary})
    if isinstance(model, ImplicitRecommender):
        return FamilySpec(model.algorithm, model.params())
    if isinstance(model, PopularityRecommender):
        return FamilySpec("popularity", {})
    raise ValueError(f"cannot tell the family of {type(model).__name__}")
