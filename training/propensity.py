"""Channel propensity: P(the customer engages | contacted on a channel), calibrated.

Training examples are the ``message_sent`` events of the history; a send is
*engaged* when the same customer opens or clicks on the same channel within
:data:`ENGAGEMENT_WINDOW` (and before the next send there). Channels that
record no opens or clicks (postal mail in the simulator) cannot be learned and
are left out, with a note. Each example's features are those of the
customer's profile as known just before the send (read as columns for all
sends at once: :func:`features.point_in_time.point_in_time_columns`), so no
later event leaks into it, plus
the channel and how well the send's local hour fits the customer's activity.

The model is a logistic regression (per-channel slopes through channel x
feature interactions) fitted on the earlier part of the training window and
calibrated with isotonic regression on the later part (a held-out cut, as
``CalibratedClassifierCV(cv="prefit")`` does). Its coefficients and the
isotonic steps are kept as plain arrays, so that scoring one customer on a
handful of channels is a matrix product and an interpolation, with no
scikit-learn call.

Features and examples are shared with the offer uplift model
(:mod:`training.contact_features`, :mod:`training.examples`); the logistic
regression kept as arrays is :mod:`training.logistic`.

>>> model = ChannelPropensityModel(PropensityConfig(C=1.0))
>>> model.knows(Channel.EMAIL)  # not fitted yet: it knows no channel
False
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.point_in_time import ProfileColumns
from nba.channels import OUTBOUND_CHANNELS, Channel
from nba.profile import HOURS_PER_WEEK, CustomerProfile
from training.contact_features import (
    CHANNEL_FEATURES,
    OPEN_CHANNELS,
    PROFILE_FEATURES,
    channel_codes,
    channel_feature_rows,
    channel_features,
    channel_matrix,
    profile_feature_rows,
    profile_features,
    profile_matrix,
)
from training.examples import ENGAGEMENT_EVENTS, ENGAGEMENT_WINDOW, ContactExamples
from training.logistic import LinearScorer, calibrate, fit_logistic
from training.metrics import ClassificationMetrics, classification_metrics
from training.uplift_learners import BoostingConfig

# ------------------------------------------------------------------ the model


def _design(
    base: np.ndarray, channel_index: np.ndarray, per_channel: np.ndarray, n_channels: int
) -> np.ndarray:
    """``[profile features, channel one-hot, channel one-hot x channel features]``."""
    onehot = np.zeros((len(channel_index), n_channels))
    onehot[np.arange(len(channel_index)), channel_index] = 1.0
    inter = (onehot[:, :, None] * per_channel[:, None, :]).reshape(len(channel_index), -1)
    return np.hstack([base, onehot, inter])


@dataclass(frozen=True)
class PropensityConfig:
    """Settings of :class:`ChannelPropensityModel`."""

    C: float = 0.5  # inverse L2 strength of the logistic regression
    calibration: str = "isotonic"  # isotonic, sigmoid or none
    calibration_fraction: float = 0.25  # latest share of training sends held out to calibrate
    seed: int = 0

    def __post_init__(self) -> None:
        if self.C <= 0:
            raise ValueError(f"C must be > 0 (got {self.C})")
        if not 0.0 < self.calibration_fraction < 1.0:
            raise ValueError(
                f"calibration_fraction must be in (0, 1) (got {self.calibration_fraction})"
            )
        if self.calibration not in ("isotonic", "sigmoid", "none"):
            raise ValueError(
                f"calibration must be 'isotonic', 'sigmoid' or 'none' (got {self.calibration!r})"
            )

    def to_params(self) -> dict[str, object]:
        return {
            "C": self.C,
            "calibration": self.calibration,
            "calibration_fraction": self.calibration_fraction,
            "seed": self.seed,
        }


class ChannelPropensityModel:
    """Calibrated P(engagement | contacted on a channel) per customer and channel.

    Fit with :meth:`fit` on :class:`ContactExamples`; score with :meth:`predict`
    (one customer, many channels and moments) or :meth:`predict_examples`.
    """

    def __init__(self, config: PropensityConfig | None = None) -> None:
        self.config = config or PropensityConfig()
        self.channels: tuple[Channel, ...] = ()
        self.channel_rates: dict[Channel, float] = {}
        self.skipped: dict[str, str] = {}
        self.scorer: LinearScorer | None = None

    # ---------------------------------------------------------------- fitting

    def fit(self, examples: ContactExamples) -> ChannelPropensityModel:
        """Fit on sends of channels that record engagement; raise when none does."""
        rows = examples.rows
        if len(rows) == 0:
            raise ValueError(
                "no message_sent events to learn channel propensity from "
                "(events need event_type 'message_sent' with a channel)"
            )
        keep_channels: list[Channel] = []
        self.skipped = {}
        for name, group in rows.groupby("channel", sort=True):
            channel = _known_channel(str(name))
            if not group["engaged"].any():
                self.skipped[str(name)] = (
                    f"{len(group):,} sends but no {' or '.join(ENGAGEMENT_EVENTS)} event follows "
                    f"any of them: engagement is not observed on {name}"
                )
                continue
            keep_channels.append(channel)
        if not keep_channels:
            raise ValueError(
                "no channel records engagement: none of the message_sent events is followed by "
                f"{' or '.join(ENGAGEMENT_EVENTS)} on the same channel within "
                f"{ENGAGEMENT_WINDOW.days} days ({'; '.join(self.skipped.values())})"
            )
        self.channels = tuple(sorted(keep_channels, key=OUTBOUND_CHANNELS.index))
        examples = examples.take(rows["channel"].isin([c.value for c in self.channels]).to_numpy())
        y = examples.rows["engaged"].to_numpy(dtype=int)
        matrix = self.design(examples)
        self.channel_rates = {
            c: float(y[(examples.rows["channel"] == c.value).to_numpy()].mean())
            for c in self.channels
        }
        n_cal = int(len(y) * self.config.calibration_fraction)
        if self.config.calibration == "none" or n_cal < 50:
            self.scorer = fit_logistic(matrix, y, self.config.C, self.config.seed)
            return self
        fit_part, cal_part = slice(0, len(y) - n_cal), slice(len(y) - n_cal, len(y))
        self.scorer = fit_logistic(matrix[fit_part], y[fit_part], self.config.C, self.config.seed)
        calibrate(self.scorer, matrix[cal_part], y[cal_part], self.config.calibration)
        return self

    def design(self, examples: ContactExamples) -> np.ndarray:
        """Feature matrix of examples (rows in order), shape ``(n, n_features)``."""
        index = self._channel_index(examples.rows["channel"].astype(str))
        return self._matrix(examples.columns, index, examples.hour_of_week % 24)

    def _matrix(
        self, cols: ProfileColumns, index: np.ndarray, hour_of_day: np.ndarray
    ) -> np.ndarray:
        """Design rows of profile columns on the model's channel ``index`` at local
        ``hour_of_day`` (``-1``: unknown)."""
        codes = channel_codes(self.channels)[index] if len(index) else index
        per = channel_matrix(cols, codes, hour_of_day)
        return _design(profile_matrix(cols), index, per, len(self.channels))

    def _channel_index(self, names: pd.Series | Sequence[str]) -> np.ndarray:
        lookup = {c.value: i for i, c in enumerate(self.channels)}
        index = np.array([lookup.get(str(n), -1) for n in names], dtype=np.intp)
        if (index < 0).any():
            unknown = sorted({str(n) for n, i in zip(names, index, strict=True) if i < 0})
            raise ValueError(
                f"channel(s) {unknown} unknown to the propensity model "
                f"(it knows {[c.value for c in self.channels]})"
            )
        return index

    # ---------------------------------------------------------------- scoring

    def _parts(self, scorer: LinearScorer) -> _ScoreParts:
        """The fitted coefficients split by the design's blocks (:func:`_design`)."""
        return _ScoreParts.of(scorer, len(PROFILE_FEATURES), len(self.channels))

    def _check_fitted(self) -> LinearScorer:
        if self.scorer is None:
            raise RuntimeError("the channel propensity model is not fitted; call fit() first")
        return self.scorer

    def predict_examples(self, examples: ContactExamples) -> np.ndarray:
        """Calibrated probabilities for each example, shape ``(n,)``."""
        return self._check_fitted().probability(self.design(examples))

    def predict(
        self,
        profile: CustomerProfile,
        channels: Sequence[Channel],
        local_times: Sequence[dt.datetime | None] | None = None,
    ) -> np.ndarray:
        """P(engage) of one customer on each channel (at each local send time), shape ``(m,)``.

        Raises ``ValueError`` for a channel the model does not know.
        """
        scorer = self._check_fitted()
        names = [Channel(c).value for c in channels]
        index = self._channel_index(names)
        times = list(local_times) if local_times is not None else [None] * len(names)
        if not names:
            return np.zeros(0)
        parts = self._parts(scorer)
        customer = parts.customer(profile_features(profile)[None, :])
        per = np.vstack(
            [
                channel_features(profile, self.channels[i], t)
                for i, t in zip(index, times, strict=True)
            ]
        )
        channel_term = parts.channel(per[:, _NOT_FIT], index)
        return parts.probability(customer, channel_term, index, per[:, _HOUR_FIT])

    def predict_hours(self, profiles: Sequence[CustomerProfile]) -> np.ndarray:
        """P(engage) of each profile on each known channel (:attr:`channels`) at each local
        hour of the day, shape ``(n, len(channels), 24)``: what :meth:`predict` gives for a
        send at that hour (the features read only the hour of the day), to the bit.

        The score is linear in the features and only the hour's fit varies with the hour,
        so each profile's customer term and each (profile, channel) term are computed once
        and the 24 hours are one multiply-add each (:class:`_ScoreParts`), where a design
        matrix of 24 rows per profile and channel multiplied every zero of its other
        channels' columns: 96 rows of ~50 columns per customer, a tenth of a batch
        decision's CPU with the champions."""
        scorer = self._check_fitted()
        n, k = len(profiles), len(self.channels)
        out = np.empty((n, k, 24))
        if n == 0:
            return out
        parts = self._parts(scorer)
        customer = parts.customer(profile_feature_rows(profiles))[:, None]
        fits = _hour_fits(profiles)  # (n, 24)
        for i, channel in enumerate(self.channels):
            per = channel_feature_rows(profiles, channel)  # all but the hour fit
            index = np.full(n, i, dtype=np.intp)
            channel_term = parts.channel(per, index)[:, None]
            out[:, i, :] = parts.probability(customer, channel_term, index[:, None], fits)
        return out

    def knows(self, channel: Channel) -> bool:
        return channel in self.channels

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Batch scoring (the MLflow pyfunc input): profile rows
        (:func:`features.profile_table.profile_to_row` columns) with a ``channel`` and an
        optional local ``send_hour_of_week``; returns ``customer_id, channel, propensity``."""
        from features.profile_table import row_to_profile

        if "channel" not in frame:
            raise ValueError("propensity input: no 'channel' column")
        scorer = self._check_fitted()
        hours = frame.get("send_hour_of_week")
        profiles = [
            row_to_profile({str(k): v for k, v in r.items()}) for r in frame.to_dict("records")
        ]
        names = frame["channel"].astype(str)
        index = self._channel_index(names)
        hour_of_day = np.full(len(frame), -1, dtype=np.intp)
        if hours is not None:
            known = pd.notna(hours).to_numpy()
            hour_of_day[known] = hours[known].to_numpy(dtype=np.int64) % 24
        matrix = self._matrix(ProfileColumns.of_profiles(profiles), index, hour_of_day)
        return pd.DataFrame(
            {
                "customer_id": [x.customer_id for x in profiles],
                "channel": names,
                "propensity": scorer.probability(matrix),
            }
        )


#: Where :func:`~training.contact_features.hour_fit` sits among the channel features.
_HOUR_FIT = CHANNEL_FEATURES.index("hour_fit")
#: The other channel features.
_NOT_FIT = np.array([j for j in range(len(CHANNEL_FEATURES)) if j != _HOUR_FIT], dtype=np.intp)
if len(CHANNEL_FEATURES) - 1 != _HOUR_FIT:  # channel_feature_rows leaves out the last
    raise ImportError("training.propensity expects hour_fit last among CHANNEL_FEATURES")


@dataclass(frozen=True)
class _ScoreParts:
    """A fitted :class:`LinearScorer` over :func:`_design` rows, split by block:
    ``score = (customer + channel) + fit x hour_fit + intercept``, where ``customer`` is
    the profile features' term, ``channel`` the channel's one-hot coefficient plus its
    channel features' term without the hour's fit, and ``fit`` the channel's hour-fit
    coefficient (the design's zeros of the other channels are left out).

    Both scoring paths (:meth:`ChannelPropensityModel.predict`, one customer, and
    :meth:`~ChannelPropensityModel.predict_hours`, a chunk at every hour) score with
    these same operations, each term a row's own sum (:meth:`LinearScorer.raw`'s rule),
    so they agree to the bit; with :meth:`LinearScorer.raw` over the full design (the
    training path) they agree within rounding (the same sum, grouped otherwise)."""

    scorer: LinearScorer
    profile: np.ndarray  # (n_profile_features,)
    onehot: np.ndarray  # (n_channels,)
    per_channel: np.ndarray  # (n_channels, n_channel_features - 1): all but the hour fit
    fit: np.ndarray  # (n_channels,)

    @classmethod
    def of(cls, scorer: LinearScorer, n_profile: int, n_channels: int) -> _ScoreParts:
        coef = scorer.coef
        inter = coef[n_profile + n_channels :].reshape(n_channels, len(CHANNEL_FEATURES))
        return cls(
            scorer,
            coef[:n_profile],
            coef[n_profile : n_profile + n_channels],
            np.ascontiguousarray(inter[:, _NOT_FIT]),
            np.ascontiguousarray(inter[:, _HOUR_FIT]),
        )

    def customer(self, base: np.ndarray) -> np.ndarray:
        """The customer term of each row of profile features, shape ``(n,)``."""
        return (base * self.profile).sum(axis=1)

    def channel(self, per: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The channel term of each row of channel features but the hour fit (``per``,
        shape ``(n, n_channel_features - 1)``) on its channel (``index``), shape ``(n,)``."""
        return (per * self.per_channel[index]).sum(axis=1) + self.onehot[index]

    def probability(
        self, customer: np.ndarray, channel: np.ndarray, index: np.ndarray, fits: np.ndarray
    ) -> np.ndarray:
        """Calibrated P(engage) (:meth:`LinearScorer.probability`) of sends with the
        customer and channel terms, channels ``index`` and hour fits ``fits``, broadcast
        together (a chunk's: ``(n, 1)`` terms at ``(n, 24)`` hours)."""
        z = (customer + channel) + self.fit[index] * fits + self.scorer.intercept
        return self.scorer.calibrated(z)


def _hour_fits(profiles: Sequence[CustomerProfile]) -> np.ndarray:
    """:func:`~training.contact_features.hour_fit` of each profile at each local hour of the
    day, shape ``(n, 24)``, with the same operations in the same order (so equal to the bit);
    1 for a profile without an hour-of-week activity pattern."""
    out = np.ones((len(profiles), 24))
    known = [i for i, p in enumerate(profiles) if len(p.activity_by_hour) == HOURS_PER_WEEK]
    if not known:
        return out
    activity = np.array([profiles[i].activity_by_hour for i in known]).reshape(-1, 7, 24)
    days = np.zeros((len(known), 24))
    for day in range(7):  # each hour of day summed over the week day by day, as hour_fit does
        days += activity[:, day, :]
    before, after = np.roll(days, 1, axis=1), np.roll(days, -1, axis=1)
    out[known] = 24.0 * (0.25 * before + 0.5 * days + 0.25 * after)
    return out


def _known_channel(name: str) -> Channel:
    try:
        return Channel(name)
    except ValueError:
        raise ValueError(
            f"events: message_sent on unknown channel {name!r} "
            f"(expected one of {[c.value for c in Channel]})"
        ) from None


# ------------------------------------------------------------------ evaluation


def profile_rate_baseline(examples: ContactExamples) -> np.ndarray:
    """The customer's smoothed rate on the send's channel (what the rule-based scorer reads:
    the open rate where opens are reported, the click rate elsewhere)."""
    cols = examples.columns
    codes = channel_codes(examples.rows["channel"].astype(str))
    rows = np.arange(len(codes))
    opens = np.isin(codes, channel_codes(OPEN_CHANNELS))
    rate = np.where(opens, cols.open_rate[rows, codes], cols.click_rate[rows, codes])
    return np.where(cols.has_engagement[rows, codes], rate, 0.0)


@dataclass(frozen=True)
class ChannelEvaluation:
    """The propensity model and its baselines on held-out sends (after ``cut``)."""

    cut: pd.Timestamp
    n_train: int
    results: dict[str, ClassificationMetrics]  # model name -> metrics
    per_channel_auc: dict[str, dict[str, float]]  # model -> channel -> AUC
    truth_correlation: dict[str, float] = field(default_factory=dict)  # model -> Spearman
    y_true: np.ndarray = field(default_factory=lambda: np.zeros(0))
    predictions: dict[str, np.ndarray] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, m in self.results.items():
            out |= {
                f"{name}_auc": m.auc,
                f"{name}_brier": m.brier,
                f"{name}_ece": m.ece,
                f"{name}_log_loss": m.log_loss,
            }
        for name, rho in self.truth_correlation.items():
            out[f"{name}_truth_spearman"] = rho
        out["test_sends"] = float(next(iter(self.results.values())).n) if self.results else 0.0
        out["train_sends"] = float(self.n_train)
        return out

    def markdown(self) -> str:
        lines = [
            f"Channel propensity, held-out sends after {self.cut:%Y-%m-%d %H:%M} UTC",
            "",
            "| model | AUC | log loss | Brier | ECE | Spearman vs true P(open) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, m in self.results.items():
            rho = self.truth_correlation.get(name)
            rho_text = f"{rho:.3f}" if rho is not None else "-"
            lines.append(
                f"| {name} | {m.auc:.4f} | {m.log_loss:.4f} | {m.brier:.4f} | {m.ece:.4f} "
                f"| {rho_text} |"
            )
        return "\n".join(lines)


def split_examples(
    examples: ContactExamples, test_fraction: float
) -> tuple[pd.Timestamp, ContactExamples, ContactExamples]:
    """Time split of sends: the latest ``test_fraction`` is the test set; training sends whose
    engagement window reaches past the cut are dropped (their labels are not known yet)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1) (got {test_fraction})")
    stamps = examples.rows["timestamp"]
    cut = pd.Timestamp(stamps.quantile(1.0 - test_fraction))  # type: ignore[arg-type]
    train = (stamps < cut - ENGAGEMENT_WINDOW).to_numpy()
    test = (stamps >= cut).to_numpy()
    return cut, examples.take(train), examples.take(test)


def evaluate_channels(
    examples: ContactExamples,
    config: PropensityConfig | None = None,
    test_fraction: float = 0.2,
    truth: Callable[[ContactExamples], np.ndarray] | None = None,
    boosted: BoostingConfig | None = None,
) -> tuple[ChannelEvaluation, ChannelPropensityModel]:
    """Fit on the earlier sends, score the later ones, with the baselines in the same run.

    ``boosted`` adds ``propensity_lgbm``: a LightGBM classifier on the same features and
    training sends (uncalibrated; the challenger the logistic model is compared with).

    ``truth`` (simulator only) gives the true engagement probability of sends;
    the Spearman correlation of each model with it is reported (channels where
    it returns NaN are left out).
    """
    cut, train, test = split_examples(examples, test_fraction)
    model = ChannelPropensityModel(config).fit(train)
    test = test.take(test.rows["channel"].isin([c.value for c in model.channels]).to_numpy())
    if len(test) == 0:
        raise ValueError(f"no held-out sends after {cut} on the channels the model learned")
    y = test.rows["engaged"].to_numpy(dtype=int)
    channel_rate = (
        test.rows["channel"].map({c.value: r for c, r in model.channel_rates.items()}).to_numpy()
    )
    predictions = {
        "propensity": model.predict_examples(test),
        "channel_rate": channel_rate.astype(float),
        "profile_rate": profile_rate_baseline(test),
    }
    if boosted is not None:
        known = train.take(train.rows["channel"].isin([c.value for c in model.channels]).to_numpy())
        lgbm = boosted.classifier().fit(
            model.design(known), known.rows["engaged"].to_numpy(dtype=int)
        )
        predictions["propensity_lgbm"] = lgbm.predict_proba(model.design(test))[:, 1]
    results = {name: classification_metrics(y, p) for name, p in predictions.items()}
    per_channel: dict[str, dict[str, float]] = {}
    for name, p in predictions.items():
        per_channel[name] = {}
        for ch in model.channels:
            at = (test.rows["channel"] == ch.value).to_numpy()
            if at.any():
                per_channel[name][ch.value] = classification_metrics(y[at], p[at]).auc
    correlation: dict[str, float] = {}
    if truth is not None:
        from scipy.stats import spearmanr

        true_p = truth(test)
        known = np.isfinite(true_p)
        for name, p in predictions.items():
            correlation[name] = float(spearmanr(p[known], true_p[known]).statistic)
        results["truth"] = classification_metrics(y[known], true_p[known])
        predictions["truth"] = true_p
    evaluation = ChannelEvaluation(
        cut, len(train), results, per_channel, correlation, y, predictions
    )
    return evaluation, model
