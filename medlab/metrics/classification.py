"""Binary classification metrics with their undefined cases decided: confusion counts,
sensitivity, specificity, predictive values, and how prevalence moves them.

``y_true`` holds 0/1 labels ``(N,)``; ``y_score`` real scores ``(N,)`` (higher = more likely
positive). Rules:

- NaN or infinite scores raise ``ValueError`` (a silent NaN would rank anywhere);
- sensitivity needs at least one positive case and specificity one negative (else
  ``ValueError``); an AUC needs both classes;
- a predictive value with no case predicted in its class is ``nan`` (undefined, and reported so).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlab import arguments


def check_binary(y_true: Any, y_score: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated ``(labels as int (N,), scores as float (N,))``."""
    y = np.asarray(y_true).reshape(-1)
    if y.dtype == object or not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1; got values {np.unique(y)[:5].tolist()}")
    y = y.astype(int)
    if y_score is None:
        return y, None
    try:
        s = np.asarray(y_score, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"scores must be real numbers, one per label; got {type(y_score).__name__}") from None
    if len(s) != len(y):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if not np.isfinite(s).all():
        raise ValueError(f"{int((~np.isfinite(s)).sum())} scores are NaN or infinite")
    return y, s


def confusion(y_true: Any, y_pred: Any) -> dict[str, int]:
    """Counts ``{"tp", "fp", "tn", "fn"}`` of 0/1 predictions against 0/1 labels, from
    scikit-learn's ``confusion_matrix`` (whose 2 × 2 layout, ``[[tn, fp], [fn, tp]]``, is easy to
    misread) with the label checks of :func:`check_binary`.

    Taught in lab 07, section 2 (The confusion matrix, and what prevalence does to it).
    """
    from sklearn.metrics import confusion_matrix

    y, _ = check_binary(y_true)
    p, _ = check_binary(y_pred)
    if len(p) != len(y):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    tn, fp, fn, tp = (int(n) for n in confusion_matrix(y, p, labels=[0, 1]).ravel())
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def binary_rates(y_true: Any, y_score: Any, *, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and accuracy when ``score >= threshold`` is called positive.

    Taught in lab 07, section 2 (The confusion matrix, and what prevalence does to it).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or np.isnan(threshold):
        raise ValueError(f"threshold must be a number (it may be infinite), got {threshold!r}")
    y, s = check_binary(y_true, y_score)
    c = confusion(y, (s >= threshold).astype(int))
    if c["tp"] + c["fn"] == 0:
        raise ValueError("no positive cases: sensitivity is undefined")
    if c["tn"] + c["fp"] == 0:
        raise ValueError("no negative cases: specificity is undefined")
    ratio = lambda a, b: a / (a + b) if a + b else float("nan")  # noqa: E731
    return {"sensitivity": ratio(c["tp"], c["fn"]), "specificity": ratio(c["tn"], c["fp"]),
            "ppv": ratio(c["tp"], c["fp"]), "npv": ratio(c["tn"], c["fn"]),
            "accuracy": (c["tp"] + c["tn"]) / len(y)}


def predictive_values(sensitivity: float, specificity: float, prevalence: Any) -> tuple[np.ndarray, np.ndarray]:
    """PPV and NPV (Bayes' rule) of a test with the given sensitivity and specificity, at each
    ``prevalence`` in [0, 1].

    Taught in lab 07, section 2 (The confusion matrix, and what prevalence does to it).
    """
    sensitivity = arguments.probability(sensitivity, "sensitivity")
    specificity = arguments.probability(specificity, "specificity")
    try:
        prev = np.asarray(prevalence, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"prevalence must be numbers in [0, 1], got {prevalence!r:.80}") from None
    if not (np.isfinite(prev) & (prev >= 0) & (prev <= 1)).all():
        raise ValueError(f"prevalence must lie in [0, 1], got {prevalence!r:.80}")
    with np.errstate(invalid="ignore", divide="ignore"):
        ppv = sensitivity * prev / (sensitivity * prev + (1 - specificity) * (1 - prev))
        npv = specificity * (1 - prev) / (specificity * (1 - prev) + (1 - sensitivity) * prev)
    return ppv, npv


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve (scikit-learn's), with the checks of :func:`check_binary` and a
    clear error when only one class is present.

    Taught in lab 07, section 3 (ROC, precision–recall, and choosing an operating point).
    """
    from sklearn.metrics import roc_auc_score

    y, s = check_binary(y_true, y_score)
    if len(np.unique(y)) < 2:
        raise ValueError(f"only one class ({int(y[0]) if len(y) else 'none'}) present: the AUC is undefined")
    return float(roc_auc_score(y, s))


def threshold_for_sensitivity(y_true: Any, y_score: Any, *, target: float) -> float:
    """The highest threshold whose sensitivity reaches ``target`` in ``(0, 1]`` (a screening
    operating point): ``score >= threshold`` calls at least that fraction of positives positive.

    >>> threshold_for_sensitivity([0, 1, 1, 1, 1], [0.1, 0.2, 0.6, 0.7, 0.9], target=0.75)
    0.6

    Taught in lab 07, section 3 (ROC, precision–recall, and choosing an operating point).
    """
    target = arguments.number(target, "target sensitivity", low=0.0, high=1.0, low_open=True)
    y, s = check_binary(y_true, y_score)
    positives = np.sort(s[y == 1])[::-1]
    if len(positives) == 0:
        raise ValueError("no positive cases: sensitivity is undefined")
    return float(positives[int(np.ceil(target * len(positives))) - 1])


def threshold_for_specificity(y_true: Any, y_score: Any, *, target: float) -> float:
    """The lowest threshold whose specificity reaches ``target`` in ``(0, 1]`` (a confirmation
    operating point): ``score >= threshold`` calls at least that fraction of negatives negative.

    Taught in lab 07, section 3 (ROC, precision–recall, and choosing an operating point).
    """
    target = arguments.number(target, "target specificity", low=0.0, high=1.0, low_open=True)
    y, s = check_binary(y_true, y_score)
    negatives = np.sort(s[y == 0])
    if len(negatives) == 0:
        raise ValueError("no negative cases: specificity is undefined")
    k = int(np.ceil(target * len(negatives)))  # at least k negatives must fall below the threshold
    return float(np.nextafter(negatives[k - 1], np.inf))
