"""Offer response and uplift: who buys because of the offer, and who would have bought anyway.

Examples come from the history's randomised offers: when a campaign carries an
offer, only part of its recipients get it (the simulator's ``offer_share``, a
historical A/B test). Sends on the same channel and day as at least one send
with an offer form a group; in it, sends *with* the offer are treated and sends
without it are controls, given the group's offer as the one they did not get.
The outcome is a purchase by the customer within :data:`OUTCOME_WINDOW` of the
send. Features are the customer's point-in-time profile (read as columns for all
sends at once: :func:`features.point_in_time.point_in_time_columns`), the channel
and the offer's kind, value share (cost over the customer's basket) and cost, with interactions of
the customer's promotion sensitivity with the offer.

Methods (:data:`METHODS`; :mod:`training.offer_selection` fits every one and
the fixed rule, chooses on a validation split and gates promotion on a later
test):

- ``logistic_coupled``: a two-model (T-) learner of logistic regressions whose
  arms share a baseline, ``logit = b + w.x + t (w_t + v.x_e)``: the treated arm
  is the control arm plus a difference ``(w_t, v)`` whose L2 penalty is
  ``1 / interaction_weight**2`` times stronger, depending only on the effect
  columns ``x_e`` (``OfferConfig.effect``: ``"pull"`` the channel and the
  offer's pull, promotion sensitivity x value share and that x the open rate;
  ``"offer"`` every offer column; ``"all"`` every column);
- ``logistic_independent``: the textbook T-learner, two separate arms;
- ``t_learner_lgbm``, ``x_learner_lgbm``, ``dr_learner_lgbm``: meta-learners with
  LightGBM base models (:mod:`training.uplift_learners`), given each send's
  known probability of treatment (:func:`treatment_shares`, the group's share);
- ``proportional_lgbm``: P(purchase without the offer) by LightGBM, times a
  relative lift proportional to the offer's value share (one coefficient fitted
  on the randomised groups);
- ``relative_lift_lgbm``: the same baseline times a relative lift that grows with
  the value share and varies log-linearly with the channel, the customer's open
  rate on it and the offer's kind (a few penalised coefficients pooled across
  offers, the penalty chosen by cross-validated likelihood on the training sends);
- ``rule``: the fixed rule, promotion sensitivity x value share (what the
  engine's rule-based scorer grows its uplift with). A registered rule serves
  as the rule-based scorer itself (:attr:`OfferUpliftModel.is_rule`).

Why so many: the outcome is dominated by organic buying (true uplifts are a
few tenths of a percent for a 12-15 % purchase rate), so a learner that
estimates the difference of two noisy arms mostly fits noise, and which one
ranks best depends on the data: they are compared on held-out sends, in the
same run, with the fixed rules and random targeting (BENCHMARKS.md has them on
the simulator against the true uplift). The logistic arms reduce to
coefficient vectors (one customer's candidates are two matrix products); the
boosted learners cost one LightGBM call per model and customer.

>>> OFFER_FEATURES[:2]
('kind_percent_discount', 'kind_fixed_discount')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.dataset import RetailDataset
from features.finalise import FeaturePriors
from features.point_in_time import ProfileColumns
from nba.actions import OfferKind
from nba.channels import OUTBOUND_CHANNELS, Channel
from nba.events import EventType
from nba.profile import CustomerProfile
from training.contact_features import (
    CHANNEL_FEATURES,
    PROFILE_FEATURES,
    channel_codes,
    channel_features,
    channel_matrix,
    profile_features,
    profile_matrix,
)
from training.examples import ContactExamples, contact_examples, message_sends, sample_rows
from training.logistic import LinearScorer, fit_logistic
from training.metrics import qini_coefficient, qini_curve, uplift_at_k
from training.uplift_learners import (
    LEARNERS,
    BoostingConfig,
    ProportionalLearner,
    RelativeLiftLearner,
    UpliftLearner,
)

Report = Callable[[str], None]

#: A purchase this long after a send counts as its outcome.
OUTCOME_WINDOW = pd.Timedelta(days=7)
_KINDS = tuple(OfferKind)
OFFER_FEATURES: tuple[str, ...] = (
    *(f"kind_{k.value}" for k in _KINDS),
    "value_share",
    "log_cost",
    *(f"promo_x_kind_{k.value}" for k in _KINDS),
    "promo_x_value_share",
)


def offer_features(
    profile: CustomerProfile, kind: OfferKind, cost: float, reference_basket: float
) -> np.ndarray:
    """Features of an offer for one live profile (:data:`OFFER_FEATURES`): :func:`offer_matrix`
    in scalar arithmetic, for the online path."""
    basket = profile.average_basket if profile.average_basket > 0 else reference_basket
    share = min(cost / basket, 2.0) if basket > 0 else 0.0
    onehot = np.array([1.0 if kind == k else 0.0 for k in _KINDS])
    promo = profile.promo_sensitivity
    return np.concatenate(
        [onehot, [share, math.log1p(max(cost, 0.0))], promo * onehot, [promo * share]]
    )


def _baskets(cols: ProfileColumns, reference_basket: float) -> np.ndarray:
    """Each customer's average basket, or ``reference_basket`` when they have none."""
    return np.where(cols.average_basket > 0, cols.average_basket, reference_basket)


def _cost_shares(costs: np.ndarray, baskets: np.ndarray) -> np.ndarray:
    safe = np.where(baskets > 0, baskets, 1.0)
    return np.where(baskets > 0, costs / safe, 0.0)


def offer_matrix(
    cols: ProfileColumns, kinds: Sequence[OfferKind], costs: np.ndarray, reference_basket: float
) -> np.ndarray:
    """Features of each row's offer for its customer (:data:`OFFER_FEATURES`),
    shape ``(n, len(OFFER_FEATURES))``."""
    costs = np.asarray(costs, dtype=float)
    baskets = _baskets(cols, reference_basket)
    share = np.minimum(_cost_shares(costs, baskets), 2.0)
    codes = np.array([_KINDS.index(OfferKind(k)) for k in kinds], dtype=np.intp)
    onehot = (codes[:, None] == np.arange(len(_KINDS))[None, :]).astype(float)
    promo = cols.promo_sensitivity[:, None]
    return np.hstack(
        [
            onehot,
            share[:, None],
            np.log1p(np.maximum(costs, 0.0))[:, None],
            promo * onehot,
            promo * share[:, None],
        ]
    )


# ------------------------------------------------------------------ examples


def offer_sends(events: pd.DataFrame, offers: pd.DataFrame) -> pd.DataFrame:
    """Sends of randomised offer groups, with ``treated``, the group's ``offer_id`` and
    ``purchased`` (a purchase within :data:`OUTCOME_WINDOW`).

    Raises ``ValueError`` when no send carries an offer, or an offer id is not in ``offers``.
    """
    sends = message_sends(events)
    if sends.empty:
        raise ValueError("events: no message_sent events, so no offer was ever sent")
    sends["group_day"] = sends["timestamp"].dt.floor("D")
    with_offer = sends[sends["offer_id"].notna()]
    if with_offer.empty:
        raise ValueError(
            "events: no message_sent event carries an offer_id; offer uplift needs sends with "
            "and without offers (e.g. an A/B test of a campaign's offer)"
        )
    unknown = set(with_offer["offer_id"].astype(str)) - set(offers["offer_id"].astype(str))
    if unknown:
        raise ValueError(
            f"events: message_sent offer_id(s) {sorted(unknown)[:5]} are not in the offers table"
        )
    modal = (
        with_offer.groupby(["channel", "group_day"])["offer_id"]
        .agg(lambda s: s.value_counts().index[0])
        .rename("group_offer")
        .reset_index()
    )
    rows = sends.merge(modal, on=["channel", "group_day"], how="inner")
    rows["treated"] = rows["offer_id"].notna()
    rows["offer_id"] = rows["offer_id"].fillna(rows["group_offer"]).astype(str)
    if rows["treated"].all():
        raise ValueError(
            "events: every send of the offer campaigns carries the offer, so there is no control "
            "group to measure uplift against"
        )
    rows["treatment_share"] = rows.groupby(["channel", "group_day"])["treated"].transform("mean")
    rows = rows.sort_values("timestamp", kind="stable").reset_index(drop=True)
    purchases = events.loc[
        events["event_type"] == EventType.PURCHASE.value, ["customer_id", "timestamp"]
    ].drop_duplicates()
    purchases = purchases.assign(
        customer_id=purchases["customer_id"].astype(str), bought_at=purchases["timestamp"]
    ).sort_values("timestamp", kind="stable")
    nxt = pd.merge_asof(
        rows[["customer_id", "timestamp"]].assign(row=np.arange(len(rows))),
        purchases[["customer_id", "timestamp", "bought_at"]],
        on="timestamp",
        by="customer_id",
        direction="forward",
        allow_exact_matches=False,
    ).sort_values("row")
    gap = nxt["bought_at"].to_numpy() - rows["timestamp"].to_numpy()
    rows["purchased"] = pd.notna(nxt["bought_at"]).to_numpy() & (gap <= OUTCOME_WINDOW)
    return rows.drop(columns=["group_day", "group_offer"])


def treatment_shares(rows: pd.DataFrame) -> np.ndarray:
    """Each send's probability of having been given the offer: its group's treated share
    (the randomisation's, known by design; the overall share when the column is absent),
    kept inside (0, 1)."""
    if "treatment_share" in rows:
        share = rows["treatment_share"].to_numpy(dtype=float)
    else:
        share = np.full(len(rows), rows["treated"].to_numpy(dtype=float).mean())
    return np.clip(share, 0.01, 0.99)


def offer_examples(
    data: RetailDataset,
    max_examples: int | None = None,
    seed: int = 0,
    priors: FeaturePriors | None = None,
    report: Report | None = None,
) -> ContactExamples:
    """Point-in-time examples of the randomised offer groups (a sample when above the cap)."""
    rows = sample_rows(offer_sends(data.events, data.offers), max_examples, seed)
    return contact_examples(data, rows, priors=priors, report=report)


# ------------------------------------------------------------------ the model


#: Logistic T-learners: arms with a shared baseline (coupled) or fitted apart (independent).
LINEAR_METHODS = ("logistic_coupled", "logistic_independent")
#: Gradient-boosted learners (:mod:`training.uplift_learners`).
BOOSTED_METHODS = (*LEARNERS, ProportionalLearner.name, RelativeLiftLearner.name)
#: The fixed rule (promotion sensitivity x value share): the engine's rule-based uplift.
RULE_METHOD = "rule"
METHODS = (*LINEAR_METHODS, *BOOSTED_METHODS, RULE_METHOD)


@dataclass(frozen=True)
class OfferConfig:
    """Settings of :class:`OfferUpliftModel`: which learner (``method``, one of
    :data:`METHODS`) and its settings."""

    C: float = 0.3  # inverse L2 strength of the logistic regressions
    method: str = "logistic_coupled"
    interaction_weight: float = 0.3  # coupled: the arms' difference is penalised 1 / w**2 x more
    effect: str = "pull"  # coupled: what the effect varies with: "pull", "offer" or "all" columns
    seed: int = 0
    boosting: BoostingConfig = field(default_factory=BoostingConfig)  # the boosted learners

    def __post_init__(self) -> None:
        if self.C <= 0:
            raise ValueError(f"C must be > 0 (got {self.C})")
        if self.effect not in ("pull", "offer", "all"):
            raise ValueError(f"effect must be 'pull', 'offer' or 'all' (got {self.effect!r})")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)} (got {self.method!r})")
        if not 0.0 < self.interaction_weight <= 1.0:
            raise ValueError(
                f"interaction_weight must be in (0, 1] (got {self.interaction_weight})"
            )

    def to_params(self) -> dict[str, object]:
        params: dict[str, object] = {"method": self.method, "seed": self.seed}
        if self.method in LINEAR_METHODS:
            params.update(C=self.C, interaction_weight=self.interaction_weight, effect=self.effect)
        elif self.method in BOOSTED_METHODS:
            params.update({f"lgbm_{k}": v for k, v in self.boosting.to_params().items()})
        return params


@dataclass(frozen=True)
class OfferSpec:
    """What the model needs to know of an offer."""

    kind: OfferKind
    cost: float


class OfferUpliftModel:
    """P(purchase | offer), P(purchase | no offer) and their difference, per customer,
    channel and offer (two logistic regressions, see the module docstring)."""

    def __init__(self, config: OfferConfig | None = None) -> None:
        self.config = config or OfferConfig()
        self.channels: tuple[Channel, ...] = ()
        self.offers: dict[str, OfferSpec] = {}
        self.reference_basket = 0.0
        self.treated: LinearScorer | None = None
        self.control: LinearScorer | None = None
        self.learner: UpliftLearner | None = None

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def is_rule(self) -> bool:
        """The fixed rule (the engine's rule-based uplift serves in its place)."""
        return self.config.method == RULE_METHOD

    @property
    def fitted(self) -> bool:
        if self.is_rule:
            return bool(self.offers)
        return self.learner is not None or self.treated is not None

    def fit(
        self, examples: ContactExamples, offers: pd.DataFrame, matrix: np.ndarray | None = None
    ) -> OfferUpliftModel:
        """Fit on the offer groups' ``examples``. ``matrix`` is their :meth:`design` when
        already built by a model fitted on the same examples (it depends only on them)."""
        rows = examples.rows
        for column in ("treated", "purchased", "offer_id"):
            if column not in rows:
                raise ValueError(f"offer examples need a {column!r} column (see offer_sends)")
        treated = rows["treated"].to_numpy(dtype=bool)
        if treated.all() or not treated.any():
            raise ValueError("offer examples need both treated sends and controls")
        self.offers = {
            str(o): OfferSpec(OfferKind(k), float(c))
            for o, k, c in zip(offers["offer_id"], offers["kind"], offers["cost"], strict=True)
        }
        self.channels = tuple(
            sorted({Channel(c) for c in rows["channel"].astype(str)}, key=OUTBOUND_CHANNELS.index)
        )
        baskets = examples.columns.average_basket
        self.reference_basket = float(baskets[baskets > 0].mean()) if (baskets > 0).any() else 50.0
        cfg = self.config
        if self.is_rule:
            return self
        matrix = self.design(examples) if matrix is None else matrix
        y = rows["purchased"].to_numpy(dtype=int)
        if cfg.method in BOOSTED_METHODS:
            self.learner = self._boosted(matrix.shape[1]).fit(
                matrix, treated, y, treatment_shares(rows)
            )
            return self
        if cfg.method == "logistic_independent":
            self.treated = fit_logistic(matrix[treated], y[treated], cfg.C, cfg.seed)
            self.control = fit_logistic(matrix[~treated], y[~treated], cfg.C, cfg.seed)
            return self
        # coupled arms: logit = b + w.x + t (w_t + v.x_u); treated arm (b + w_t, w + v),
        # control arm (b, w), with the difference (w_t, v) under a stronger penalty; x_u are
        # the columns the offer's effect may depend on (all, or the channel and the offer)
        t = treated.astype(float)[:, None]
        d = matrix.shape[1]
        effect = self._effect_columns(d)
        weights = np.concatenate([np.ones(d + 1), np.full(len(effect), cfg.interaction_weight)])
        joint = fit_logistic(
            np.hstack([matrix, t, t * matrix[:, effect]]),
            y,
            cfg.C,
            cfg.seed,
            column_weights=weights,
        )
        base, shift = joint.coef[:d], float(joint.coef[d])
        diff = np.zeros(d)
        diff[effect] = joint.coef[d + 1 :]
        self.control = LinearScorer(base, joint.intercept)
        self.treated = LinearScorer(base + diff, joint.intercept + shift)
        return self

    def _boosted(self, d: int) -> UpliftLearner:
        cfg = dataclasses.replace(self.config.boosting, seed=self.config.seed)
        if self.config.method == ProportionalLearner.name:
            return ProportionalLearner(self._value_share_column(d), cfg)
        if self.config.method == RelativeLiftLearner.name:
            return RelativeLiftLearner(self._value_share_column(d), self._modifier_columns(d), cfg)
        return LEARNERS[self.config.method](cfg)

    def _modifier_columns(self, d: int) -> np.ndarray:
        """Design columns the relative-lift learner's lift may vary with: where and how
        the offer is seen (the channel, the customer's open rate on it) and what it is
        (its kind); who would buy anyway is in its baseline."""
        start = len(PROFILE_FEATURES)
        channel_cols = np.arange(start, start + len(self.channels))
        open_rate = start + len(self.channels) + CHANNEL_FEATURES.index("logit_open_rate")
        offer_start = d - 1 - len(OFFER_FEATURES)
        kinds = offer_start + np.arange(len(_KINDS))
        return np.concatenate([channel_cols, [open_rate], kinds])

    def _value_share_column(self, d: int) -> int:
        """Design column of the offer's value share (see :meth:`_offer_part`)."""
        return d - 1 - len(OFFER_FEATURES) + OFFER_FEATURES.index("value_share")

    def _effect_columns(self, d: int) -> np.ndarray:
        """Design columns the treatment effect may depend on (see ``OfferConfig.effect``)."""
        if self.config.effect == "all":
            return np.arange(d)
        start = len(PROFILE_FEATURES)
        channel_cols = np.arange(start, start + len(self.channels))
        if self.config.effect == "pull":
            # promotion sensitivity x value share, and that x the open rate on the channel
            return np.concatenate([channel_cols, [d - 2, d - 1]])
        offer_cols = np.arange(d - len(OFFER_FEATURES) - 1, d)
        return np.concatenate([channel_cols, offer_cols])

    def design(self, examples: ContactExamples) -> np.ndarray:
        specs = [self._offer(o) for o in examples.rows["offer_id"].astype(str)]
        channels = [Channel(c) for c in examples.rows["channel"].astype(str)]
        return self._matrix(examples.columns, channels, specs)

    def _offer(self, offer_id: str) -> OfferSpec:
        spec = self.offers.get(offer_id)
        if spec is None:
            raise ValueError(f"offer {offer_id!r} is unknown to the uplift model")
        return spec

    def _matrix(
        self, cols: ProfileColumns, channels: Sequence[Channel], offers: Sequence[OfferSpec]
    ) -> np.ndarray:
        """Design rows: profile features, the channel's one-hot and features, the offer's
        features, and the offer's pull x the customer's open rate on the channel (an offer
        moves only those who see it); :meth:`_channel_part` and :meth:`_offer_part` per
        live profile."""
        unknown = sorted({c.value for c in channels} - {c.value for c in self.channels})
        if unknown:
            raise ValueError(
                f"channel {unknown[0]!r} unknown to the uplift model "
                f"(it knows {[c.value for c in self.channels]})"
            )
        n = len(channels)
        row = np.arange(n)
        position = {c: i for i, c in enumerate(self.channels)}
        onehot = np.zeros((n, len(self.channels)))
        onehot[np.arange(n), [position[c] for c in channels]] = 1.0
        codes = channel_codes(channels)
        per = channel_matrix(cols, codes, np.full(n, -1))
        costs = np.array([s.cost for s in offers], dtype=float)
        offer = offer_matrix(cols, [s.kind for s in offers], costs, self.reference_basket)
        seen = np.where(cols.has_engagement[row, codes], cols.open_rate[row, codes], 0.0)
        pull = (seen * offer[:, -1])[:, None]
        return np.hstack([profile_matrix(cols), onehot, per, offer, pull])

    def _channel_onehot(self, channel: Channel) -> np.ndarray:
        if channel not in self.channels:
            raise ValueError(
                f"channel {channel.value!r} unknown to the uplift model "
                f"(it knows {[c.value for c in self.channels]})"
            )
        out = np.zeros(len(self.channels))
        out[self.channels.index(channel)] = 1.0
        return out

    def _channel_part(self, profile: CustomerProfile, channel: Channel) -> np.ndarray:
        return np.concatenate(
            [self._channel_onehot(channel), channel_features(profile, channel, None)]
        )

    def _offer_part(
        self, profile: CustomerProfile, channel: Channel, kind: OfferKind, cost: float
    ) -> np.ndarray:
        """Offer features, and the offer's pull x the customer's open rate on the channel:
        an offer moves only those who see it."""
        features = offer_features(profile, kind, cost, self.reference_basket)
        engagement = profile.engagement.get(channel)
        seen = engagement.open_rate if engagement is not None else 0.0
        return np.concatenate([features, [seen * features[-1]]])

    def _arms(self) -> tuple[LinearScorer, LinearScorer]:
        if self.treated is None or self.control is None:
            raise RuntimeError("the offer uplift model is not fitted; call fit() first")
        return self.treated, self.control

    def _score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P(purchase | offer), uplift)`` of design rows."""
        if self.learner is not None:
            return self.learner.outcome_and_effect(matrix)
        if self.is_rule:
            raise RuntimeError("the rule scores profiles, not design rows (see rule_uplift)")
        treated, control = self._arms()
        p_t = treated.probability(matrix)
        return p_t, p_t - control.probability(matrix)

    def uplift_examples(
        self, examples: ContactExamples, matrix: np.ndarray | None = None
    ) -> np.ndarray:
        """The estimated uplift of each example's offer, shape ``(n,)`` (``matrix``: their
        :meth:`design` by a model fitted on the same examples, when already built)."""
        if self.is_rule:
            costs = (
                examples.rows["offer_id"]
                .astype(str)
                .map({o: s.cost for o, s in self.offers.items()})
            )
            return rule_uplift(
                examples.with_rows(examples.rows.assign(offer_cost=costs.to_numpy(dtype=float))),
                self.reference_basket,
            )
        return self._score(self.design(examples) if matrix is None else matrix)[1]

    def predict(
        self,
        profile: CustomerProfile,
        channels: Sequence[Channel],
        offers: Sequence[OfferSpec],
    ) -> tuple[np.ndarray, np.ndarray]:
        """One customer: ``(P(purchase | offer), uplift)`` for each ``(channel, offer)`` pair.

        The logistic arms score all pairs by two matrix products (no scikit-learn call),
        the boosted learners by one call per model on all pairs; the rule by its formula.
        """
        if not self.fitted:
            raise RuntimeError("the offer uplift model is not fitted; call fit() first")
        if len(channels) != len(offers):
            raise ValueError("channels and offers must have one entry per pair")
        if not channels:
            return np.zeros(0), np.zeros(0)
        if self.is_rule:
            promo, basket = profile.promo_sensitivity, profile.average_basket
            basket = basket if basket > 0 else self.reference_basket
            rule = [promo * (s.cost / basket if basket > 0 else 0.0) for s in offers]
            return np.full(len(offers), np.nan), np.array(rule)
        base = profile_features(profile)
        per_channel = {c: self._channel_part(profile, c) for c in set(channels)}
        seen = {
            c: (profile.engagement[c].open_rate if c in profile.engagement else 0.0)
            for c in per_channel
        }
        per_offer = {
            (s.kind, s.cost): offer_features(profile, s.kind, s.cost, self.reference_basket)
            for s in offers
        }
        matrix = np.vstack(
            [
                np.concatenate(
                    [
                        base,
                        per_channel[c],
                        per_offer[(s.kind, s.cost)],
                        [seen[c] * per_offer[(s.kind, s.cost)][-1]],
                    ]
                )
                for c, s in zip(channels, offers, strict=True)
            ]
        )
        return self._score(matrix)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Batch scoring (the MLflow pyfunc input): profile rows
        (:func:`features.profile_table.profile_to_row` columns) with ``channel``,
        ``offer_kind`` and ``offer_cost``; returns ``customer_id, channel, p_offer, uplift``."""
        from features.profile_table import row_to_profile

        missing = {"channel", "offer_kind", "offer_cost"} - set(frame.columns)
        if missing:
            raise ValueError(f"uplift input: missing column(s) {sorted(missing)}")
        p_offer, uplift = [], []
        for row in frame.to_dict("records"):
            try:
                kind = OfferKind(str(row["offer_kind"]))
            except ValueError:
                raise ValueError(
                    f"uplift input: unknown offer_kind {row['offer_kind']!r} "
                    f"(expected one of {[k.value for k in OfferKind]})"
                ) from None
            p, u = self.predict(
                row_to_profile({str(k): v for k, v in row.items()}),
                [Channel(row["channel"])],
                [OfferSpec(kind, float(row["offer_cost"]))],
            )
            p_offer.append(float(p[0]))
            uplift.append(float(u[0]))
        return pd.DataFrame(
            {
                "customer_id": frame["customer_id"].astype(str).to_numpy(),
                "channel": frame["channel"].astype(str).to_numpy(),
                "p_offer": p_offer,
                "uplift": uplift,
            }
        )

    @property
    def n_features(self) -> int:
        return (
            len(PROFILE_FEATURES)
            + len(self.channels)
            + len(CHANNEL_FEATURES)
            + len(OFFER_FEATURES)
            + 1
        )


# ------------------------------------------------------------------ evaluation


def rule_uplift(examples: ContactExamples, reference_basket: float) -> np.ndarray:
    """The simple baseline: promotion sensitivity x the offer's value share (what the
    rule-based scorer's uplift grows with)."""
    return _rule(
        examples.columns, examples.rows["offer_cost"].to_numpy(dtype=float), reference_basket
    )


def _rule(cols: ProfileColumns, costs: np.ndarray, reference_basket: float) -> np.ndarray:
    return cols.promo_sensitivity * _cost_shares(costs, _baskets(cols, reference_basket))


@dataclass(frozen=True)
class UpliftEvaluation:
    """Uplift models on held-out sends (after ``cut``): Qini and uplift@k on the observed
    randomised outcomes, and agreement with the true uplift when the simulator knows it."""

    cut: pd.Timestamp
    n_train: int
    n_test: int
    qini: dict[str, float]
    uplift_at: dict[str, dict[str, float]]  # model -> "10%" -> uplift
    truth_spearman: dict[str, float] = field(default_factory=dict)
    truth_top30: dict[str, float] = field(default_factory=dict)  # mean true uplift of top 30%
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    split: str = "held-out"
    #: Spearman with the true uplift among sends whose offer has a cost (a discount, free
    #: shipping, points): what is left to rank once offers of no value are ranked last.
    truth_spearman_valued: dict[str, float] = field(default_factory=dict)
    #: Mean true uplift of the top 30 % among sends whose offer has a cost: targeting where
    #: the choice is real (over all sends, offers of no value, whose true uplift is 0, fill
    #: the bottom of every sensible ranking and the top 30 % saturates).
    truth_top30_valued: dict[str, float] = field(default_factory=dict)
    #: How much each model's uplift lowers the held-out R-loss below a zero effect's
    #: (:func:`training.uplift_learners.r_loss_gain`; the rules scaled on the training
    #: sends; ``no_effect`` is 0): what chooses and gates, higher is better.
    r_gain: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {
            "train_sends": float(self.n_train),
            "test_sends": float(self.n_test),
        }
        for name, q in self.qini.items():
            out[f"{name}_qini"] = q
            for k, v in self.uplift_at[name].items():
                out[f"{name}_uplift_at_{k.rstrip('%')}pct"] = v
        for name, g in self.r_gain.items():
            out[f"{name}_r_loss_gain"] = g
        for name, v in self.truth_spearman.items():
            out[f"{name}_truth_spearman"] = v
        for name, v in self.truth_top30.items():
            out[f"{name}_true_uplift_top30"] = v
        for name, v in self.truth_spearman_valued.items():
            out[f"{name}_truth_spearman_valued_offers"] = v
        for name, v in self.truth_top30_valued.items():
            out[f"{name}_true_uplift_top30_valued_offers"] = v
        return out

    def markdown(self) -> str:
        lines = [
            f"Offer uplift, {self.split} sends after {self.cut:%Y-%m-%d %H:%M} UTC "
            f"({self.n_test:,} sends)",
            "",
            "| model | R-loss gain | Qini | uplift@10% | uplift@30% | Spearman vs true uplift "
            "| true uplift of top 30% | Spearman, offers with a cost "
            "| true uplift of top 30%, offers with a cost |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]

        def cell(value: float | None, digits: int) -> str:
            return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

        for name, q in self.qini.items():
            at = self.uplift_at[name]
            lines.append(
                f"| {name} | {cell(self.r_gain.get(name), 4)} | {q:.5f} | {at['10%']:.4f} | "
                f"{at['30%']:.4f} | "
                f"{cell(self.truth_spearman.get(name), 3)} | "
                f"{cell(self.truth_top30.get(name), 5)} | "
                f"{cell(self.truth_spearman_valued.get(name), 3)} | "
                f"{cell(self.truth_top30_valued.get(name), 5)} |"
            )
        if "no_effect" in self.r_gain:
            lines.append(f"| no_effect | {self.r_gain['no_effect']:.4f} |" + " - |" * 7)
            lines += [
                "",
                "R-loss gain: the held-out R-loss of a zero effect minus the model's (its "
                "uplift in purchase probability; the rules scaled on the training sends); "
                "above 0 is closer to the true effect than no effect, 'random' targeting has "
                "no effect size.",
            ]
        return "\n".join(lines)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; NaN when either side is constant (a rule that gives
    every send the same score ranks nothing)."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def offer_split(
    examples: ContactExamples, test_fraction: float
) -> tuple[pd.Timestamp, ContactExamples, ContactExamples]:
    """Time split: the latest ``test_fraction`` of sends is held out (training sends whose
    outcome window reaches the cut are dropped). When the held-out sends are all on channels
    absent before the cut (a one-off postal campaign at the end), the cut moves earlier,
    up to half of the sends."""
    stamps = examples.rows["timestamp"]
    fraction = test_fraction
    while True:
        cut = pd.Timestamp(stamps.quantile(1.0 - fraction))  # type: ignore[arg-type]
        train = examples.take((stamps < cut - OUTCOME_WINDOW).to_numpy())
        test = examples.take((stamps >= cut).to_numpy())
        trained = set(train.rows["channel"])
        if len(train) and test.rows["channel"].isin(trained).any():
            return cut, train, test
        if fraction >= 0.5:
            raise ValueError(
                f"no time split leaves offer sends on the same channels before and after the "
                f"cut ({len(examples):,} sends from {stamps.min()} to {stamps.max()}); "
                "offer uplift needs a longer history"
            )
        fraction = min(0.5, fraction + 0.1)


def offer_costs(examples: ContactExamples, model: OfferUpliftModel) -> ContactExamples:
    """``examples`` on the channels ``model`` knows, with each offer's cost (``offer_cost``)."""
    kept = examples.take(
        examples.rows["channel"].isin([c.value for c in model.channels]).to_numpy()
    )
    cost = {o: s.cost for o, s in model.offers.items()}
    return kept.with_rows(kept.rows.assign(offer_cost=kept.rows["offer_id"].astype(str).map(cost)))


def value_share(examples: ContactExamples, reference_basket: float) -> np.ndarray:
    """The second fixed rule: the offer's cost as a share of the customer's basket
    (``offer_cost`` column), whatever their promotion sensitivity."""
    costs = examples.rows["offer_cost"].to_numpy(dtype=float)
    return _cost_shares(costs, _baskets(examples.columns, reference_basket))


def measure_uplift(
    scores: dict[str, np.ndarray],
    test: ContactExamples,
    cut: pd.Timestamp,
    n_train: int,
    true_uplift: np.ndarray | None = None,
    random_repeats: int = 20,
    split: str = "held-out",
    r_gain: dict[str, float] | None = None,
) -> UpliftEvaluation:
    """Qini, uplift@10 % and @30 % of each score on ``test``'s randomised outcomes, with
    random targeting (Qini averaged over ``random_repeats`` draws); against
    ``true_uplift`` when the simulator knows it (Spearman, true uplift of the top 30 %,
    over all sends and among offers with a cost). ``r_gain``: each model's R-loss gain on
    ``test``, computed by the caller."""
    treated = test.rows["treated"].to_numpy(dtype=bool)
    outcome = test.rows["purchased"].to_numpy(dtype=float)
    rng = np.random.default_rng(0)
    qini: dict[str, float] = {}
    at: dict[str, dict[str, float]] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, s in scores.items():
        qini[name] = qini_coefficient(s, treated, outcome)
        at[name] = {f"{int(k * 100)}%": uplift_at_k(s, treated, outcome, k) for k in (0.1, 0.3)}
        curves[name] = qini_curve(s, treated, outcome)
    draws = [rng.random(len(test)) for _ in range(random_repeats)]
    qini["random"] = float(np.mean([qini_coefficient(d, treated, outcome) for d in draws]))
    at["random"] = {
        f"{int(k * 100)}%": float(np.nanmean([uplift_at_k(d, treated, outcome, k) for d in draws]))
        for k in (0.1, 0.3)
    }
    curves["random"] = qini_curve(draws[0], treated, outcome)
    spearman: dict[str, float] = {}
    top30: dict[str, float] = {}
    valued_rho: dict[str, float] = {}
    valued_top30: dict[str, float] = {}
    if true_uplift is not None:
        valued = test.rows["offer_cost"].to_numpy(dtype=float) > 0
        ranked = {**scores, "random": draws[0], "truth": true_uplift}
        for name, s in ranked.items():
            if name != "truth":
                spearman[name] = _spearman(s, true_uplift)
                if valued.sum() > 2:
                    valued_rho[name] = _spearman(s[valued], true_uplift[valued])
            top30[name] = _top_share_truth(s, true_uplift)
            if valued.any():
                valued_top30[name] = _top_share_truth(s[valued], true_uplift[valued])
        top30["everyone"] = float(true_uplift.mean())
        if valued.any():
            valued_top30["everyone"] = float(true_uplift[valued].mean())
    return UpliftEvaluation(
        cut,
        n_train,
        len(test),
        qini,
        at,
        spearman,
        top30,
        curves,
        split,
        valued_rho,
        valued_top30,
        dict(r_gain or {}),
    )


def _top_share_truth(score: np.ndarray, truth: np.ndarray, share: float = 0.3) -> float:
    """Mean true uplift of the ``share`` of sends with the highest ``score`` (ties in
    send order)."""
    n_top = max(1, round(share * len(score)))
    return float(truth[np.argsort(-score, kind="stable")[:n_top]].mean())
