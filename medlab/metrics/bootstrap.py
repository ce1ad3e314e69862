"""Bootstrap confidence intervals, resampling whole patients (clusters) when images are grouped.

Several images of one patient are not independent: resampling images pretends there is more
evidence than there is. Pass ``groups`` (a patient id per item) and whole patients are drawn
with replacement. A resample on which the metric is undefined (for example an AUC on a resample
holding one class only, so that it raises ``ValueError`` or returns NaN) is skipped and counted; more than 5 % skipped raises an error, since the
interval would then be biased.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medlab import arguments

Metric = Callable[[np.ndarray, np.ndarray], float]


def _resamples(n_items: int, groups: Any | None, n_resamples: int, seed: int):
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_resamples):
            yield rng.integers(0, n_items, n_items)
        return
    groups = np.asarray(groups)
    if len(groups) != n_items:
        raise ValueError(f"{n_items} items but {len(groups)} group labels")
    _, codes = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    for _ in range(n_resamples):
        chosen = rng.integers(0, len(members), len(members))
        yield np.concatenate([members[g] for g in chosen])


def _replicates(statistic: Callable[[np.ndarray], float], n_items: int, groups: Any | None, n_resamples: int,
                seed: int) -> tuple[np.ndarray, int]:
    """``statistic(indices)`` on each resample; resamples where it is undefined are skipped and counted."""
    n_resamples = arguments.integer(n_resamples, "n_resamples", minimum=1)
    seed = arguments.integer(seed, "seed", minimum=0)
    if n_items == 0:
        raise ValueError("no cases to resample")
    values, skipped = [], 0
    for idx in _resamples(n_items, groups, n_resamples, seed):
        try:
            value = float(statistic(idx))
        except ValueError:
            value = float("nan")
        if np.isnan(value):
            skipped += 1
        else:
            values.append(value)
    if skipped > 0.05 * n_resamples:
        raise ValueError(f"the metric was undefined on {skipped} of {n_resamples} resamples (e.g. one class only): "
                         "the data are too few for a bootstrap interval")
    return np.asarray(values), skipped


def bootstrap_ci(metric: Metric, y_true: Any, y_score: Any, *, groups: Any | None = None, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Percentile bootstrap interval of ``metric(y_true, y_score)``:
    ``{"estimate", "low", "high", "skipped"}``.

    Taught in lab 07, section 4 (How sure are we? Bootstrap intervals, by patient).
    """
    confidence = arguments.probability(confidence, "confidence", exclusive=True)
    y, s = np.asarray(y_true), np.asarray(y_score)
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    values, skipped = _replicates(lambda idx: metric(y[idx], s[idx]), len(y), groups, n_resamples, seed)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return {"estimate": float(metric(y, s)), "low": float(low), "high": float(high), "skipped": skipped}


def paired_bootstrap(metric: Metric, y_true: Any, score_a: Any, score_b: Any, *, groups: Any | None = None,
                     n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Interval of ``metric(B) − metric(A)`` on the same cases, resampled together (paired), and
    the fraction of resamples in which B does not beat A (``p_not_better``, a one-sided
    bootstrap p-value).

    Taught in lab 07, section 4 (How sure are we? Bootstrap intervals, by patient).
    """
    confidence = arguments.probability(confidence, "confidence", exclusive=True)
    y, a, b = np.asarray(y_true), np.asarray(score_a), np.asarray(score_b)
    if not len(y) == len(a) == len(b):
        raise ValueError("labels and both score arrays must have the same length")
    diffs, skipped = _replicates(lambda idx: metric(y[idx], b[idx]) - metric(y[idx], a[idx]), len(y), groups,
                                 n_resamples, seed)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return {"difference": float(metric(y, b) - metric(y, a)), "low": float(low), "high": float(high),
            "p_not_better": float(np.mean(diffs <= 0)), "skipped": skipped}
