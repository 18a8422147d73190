"""Figures logged to MLflow with training runs (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def model_comparison(values: Mapping[str, float], metric: str, title: str) -> Any:
    """Bar chart of one metric per model."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(values)
    ax.bar(names, [values[n] for n in names], color="#4c72b0")
    ax.set_ylabel(metric)
    ax.set_title(title)
    for i, n in enumerate(names):
        ax.text(i, values[n], f"{values[n]:.3f}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def gain_curves(curves: Mapping[str, Sequence[float]], ylabel: str, title: str) -> Any:
    """One line per model of a metric against the list length k (recall@k: a gain curve)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, ys in curves.items():
        ax.plot(np.arange(1, len(ys) + 1), ys, marker=".", label=name)
    ax.set_xlabel("k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def calibration_curve(y_true: np.ndarray, y_prob: np.ndarray, title: str, n_bins: int = 10) -> Any:
    """Reliability diagram: observed rate against mean predicted probability per bin."""
    bins = np.clip((np.asarray(y_prob) * n_bins).astype(int), 0, n_bins - 1)
    xs, ys = [], []
    for b in range(n_bins):
        at = bins == b
        if at.any():
            xs.append(float(np.mean(np.asarray(y_prob)[at])))
            ys.append(float(np.mean(np.asarray(y_true)[at])))
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(xs, ys, marker="o")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def hour_heatmap(matrix: np.ndarray, row_labels: Sequence[str], title: str) -> Any:
    """Heatmap of shares by hour of week (168 columns), one row per segment."""
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(row_labels) + 1.5))
    ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(row_labels)), labels=list(row_labels))
    ax.set_xticks(range(0, 168, 24), labels=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def qini_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Any:
    """Qini curves: incremental outcomes against the share targeted, one line per model,
    with the random-targeting diagonal of the first model."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name)
    if curves:
        x, y = next(iter(curves.values()))
        ax.plot([0, 1], [0, y[-1]], linestyle="--", color="grey", label="random (expected)")
    ax.set_xlabel("share targeted (by decreasing predicted uplift)")
    ax.set_ylabel("incremental purchases")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig
