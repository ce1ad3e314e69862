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


def _bins(probability: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin of each probability among ``n_bins`` equal-width bins over [0, 1], right-closed
    (``(0.1, 0.2]``; the first bin also holds 0), as ``sklearn.calibration.calibration_curve``
    bins them."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], probability)


def reliability_curve(y_true: Any, probability: Any, *, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Equal-width bins over [0, 1]: per bin the mean predicted probability (``confidence``),
    the observed fraction of positives (``frequency``) and the ``count``, each ``(n_bins,)``.

    The means of the non-empty bins are scikit-learn's ``calibration_curve``; this adds the
    counts (which the expected calibration error weights by, and a plot shows) and keeps empty
    bins, with ``count`` 0 and NaN means, so that bin ``k`` is always ``(k / n_bins, (k+1) / n_bins]``
    (bin 0 also holds 0).

    Taught in lab 07, section 5 (Calibration: can the probabilities be taken literally?).
    """
    from sklearn.calibration import calibration_curve

    n_bins = arguments.integer(n_bins, "n_bins", minimum=1)
    y, p = _probabilities(y_true, probability)
    if len(y) == 0:
        raise ValueError("no cases: a reliability curve needs at least one prediction")
    count = np.bincount(_bins(p, n_bins), minlength=n_bins)
    confidence, frequency = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    frequency[count > 0], confidence[count > 0] = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    return {"confidence": confidence, "frequency": frequency, "count": count}


def expected_calibration_error(y_true: Any, probability: Any, *, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and frequency over equal-width bins
    (scikit-learn has no ECE).

    Taught in lab 07, section 5 (Calibration: can the probabilities be taken literally?).
    """
    curve = reliability_curve(y_true, probability, n_bins=n_bins)
    used = curve["count"] > 0
    gaps = np.abs(curve["confidence"][used] - curve["frequency"][used])
    return float(np.sum(gaps * curve["count"][used]) / curve["count"].sum())


def brier_score(y_true: Any, probability: Any) -> float:
    """Mean squared difference between probability and outcome (0 is perfect; 0.25 is a coin
    that always says 0.5): scikit-learn's ``brier_score_loss`` with the checks above.

    Taught in lab 07, section 5 (Calibration: can the probabilities be taken literally?).
    """
    from sklearn.metrics import brier_score_loss

    y, p = _probabilities(y_true, probability)
    if len(y) == 0:
        raise ValueError("no cases: the Brier score needs at least one prediction")
    return float(brier_score_loss(y, p))


def fit_temperature(y_true: Any, logits: Any) -> float:
    """Temperature scaling: the ``T > 0`` minimising the cross-entropy of ``sigmoid(logits / T)``
    on held-out data (fit it on validation data, never on the test set). ``T > 1`` softens
    over-confident predictions; the ranking, hence the AUC, is unchanged.

    Taught in lab 07, section 5 (Calibration: can the probabilities be taken literally?).
    """
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
    """Numerically stable logistic function.

    Taught in lab 07, section 5 (Calibration: can the probabilities be taken literally?).
    """
    z = np.asarray(logits, dtype=float)
    return np.exp(-np.logaddexp(0, -z))
