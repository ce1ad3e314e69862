"""Calibration: does a predicted probability of 0.8 come true 80 % of the time?

``y_true`` 0/1 labels ``(N,)``, ``probability`` in [0, 1] ``(N,)``; logits are real ``(N,)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlab import arguments
from medlab.metrics.classification import check_binary


def _probabilities(y_true: Any, probability: Any) -> tuple[np.ndarray, np.ndarray]:
    y, p = check_binary(y_true, probability)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]; apply a sigmoid to logits first")
    return y, p


def reliability_curve(y_true: Any, probability: Any, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Equal-width bins over [0, 1]: per bin the mean predicted probability (``confidence``),
    the observed fraction of positives (``frequency``) and the ``count``. Empty bins have
    ``count`` 0 and NaN means."""
    n_bins = arguments.integer(n_bins, "n_bins", minimum=1)
    y, p = _probabilities(y_true, probability)
    if len(y) == 0:
        raise ValueError("no cases: a reliability curve needs at least one prediction")
    index = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=p, minlength=n_bins) / count
        frequency = np.bincount(index, weights=y, minlength=n_bins) / count
    return {"confidence": confidence, "frequency": frequency, "count": count}


def expected_calibration_error(y_true: Any, probability: Any, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and frequency over equal-width bins."""
    curve = reliability_curve(y_true, probability, n_bins)
    used = curve["count"] > 0
    gaps = np.abs(curve["confidence"][used] - curve["frequency"][used])
    return float(np.sum(gaps * curve["count"][used]) / curve["count"].sum())


def brier_score(y_true: Any, probability: Any) -> float:
    """Mean squared difference between probability and outcome (0 is perfect; 0.25 is a coin
    that always says 0.5)."""
    y, p = _probabilities(y_true, probability)
    if len(y) == 0:
        raise ValueError("no cases: the Brier score needs at least one prediction")
    return float(np.mean((p - y) ** 2))


def fit_temperature(logits: Any, y_true: Any) -> float:
    """Temperature scaling: the ``T > 0`` minimising the cross-entropy of ``sigmoid(logits / T)``
    on held-out data (fit it on validation data, never on the test set). ``T > 1`` softens
    over-confident predictions; the ranking, hence the AUC, is unchanged."""
    from scipy.optimize import minimize_scalar

    y, z = check_binary(y_true, logits)
    if len(np.unique(y)) < 2:
        raise ValueError("fit_temperature needs both classes among the labels: with one class the "
                         "best temperature runs off to 0 or infinity")

    def nll(log_t):
        scaled = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0, scaled) - y * scaled))

    return float(np.exp(minimize_scalar(nll, bounds=(-5, 5), method="bounded").x))


def sigmoid(logits: Any) -> np.ndarray:
    """Numerically stable logistic function."""
    z = np.asarray(logits, dtype=float)
    return np.exp(-np.logaddexp(0, -z))
