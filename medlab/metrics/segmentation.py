"""Overlap and boundary metrics for binary masks, in physical units.

Every function takes the true mask first and the predicted mask second, as scikit-learn's
metrics do, both of one shape (2D ``(H, W)`` or 3D ``(z, y, x)``, anything that converts to
bool), and, for distances, the voxel ``spacing`` in mm by keyword (one value per axis, or one
for all; default 1). Distances come from MONAI's implementations; Dice and IoU are two sums,
counted here. This module adds the shape checks and the empty-mask rules, which are decided
once here instead of the NaN that MONAI's ``compute_dice`` gives for two empty masks:

=====================  ==================  =======================
case                   Dice, IoU, surface   Hausdorff 95 (mm)
=====================  ==================  =======================
both masks empty       1.0                 0.0
one mask empty         0.0                 ``inf``
=====================  ==================  =======================

>>> truth = np.zeros((8, 8), bool); truth[2:6, 2:6] = True
>>> pred = np.zeros((8, 8), bool); pred[2:6, 3:7] = True
>>> round(dice(truth, pred), 3), round(iou(truth, pred), 3)
(0.75, 0.6)
>>> hausdorff95(truth, pred, spacing=(0.5, 0.5))
0.5

Taught in lab 05, section 5 (Measuring a segmentation, in millimetres); lab 07, section 8
revisits the empty-mask rules.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from medlab import arguments

Spacing = float | Sequence[float] | None


def _pair(truth: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated boolean ``(truth, pred)`` of one shape."""
    if hasattr(pred, "detach"):
        pred = pred.detach().cpu().numpy()
    if hasattr(truth, "detach"):
        truth = truth.detach().cpu().numpy()
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.dtype == object or truth.dtype == object:
        raise ValueError("masks must be arrays of 0/1 or bool, not of Python objects")
    if pred.shape != truth.shape:
        raise ValueError(f"truth and prediction differ in shape: {truth.shape} vs {pred.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"expected a 2D (H, W) or 3D (z, y, x) mask, got shape {pred.shape}")
    for name, mask in (("true", truth), ("predicted", pred)):
        if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
            raise ValueError(f"the {name} mask must be binary (0/1 or bool); threshold probabilities first")
    return truth.astype(bool), pred.astype(bool)


def _spacing(spacing: Spacing, ndim: int) -> list[float]:
    if spacing is None:
        return [1.0] * ndim
    try:
        values = [float(spacing)] * ndim if np.isscalar(spacing) else [float(s) for s in spacing]
    except (TypeError, ValueError):
        values = []
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing needs {ndim} positive values (mm per axis), got {spacing!r:.80}")
    return values


def _as_monai(mask: np.ndarray) -> torch.Tensor:
    """``(H, W)`` → ``(1, 1, H, W)``: MONAI's batch and channel axes."""
    return torch.as_tensor(mask)[None, None]


def dice(truth: Any, pred: Any) -> float:
    """Dice similarity coefficient 2|T∩P| / (|T| + |P|), in [0, 1].

    Taught in lab 05, section 5 (Measuring a segmentation, in millimetres).
    """
    truth, pred = _pair(truth, pred)
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def iou(truth: Any, pred: Any) -> float:
    """Intersection over union |T∩P| / |T∪P| (Jaccard index), in [0, 1]; IoU = Dice / (2 − Dice).

    Taught in lab 05, section 5 (Measuring a segmentation, in millimetres).
    """
    truth, pred = _pair(truth, pred)
    union = (pred | truth).sum()
    return 1.0 if union == 0 else float((pred & truth).sum() / union)


def hausdorff95(truth: Any, pred: Any, *, spacing: Spacing = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the mask boundaries, in mm: the
    distance within which 95 % of each boundary lies from the other (robust to a few outliers).

    Taught in lab 05, section 5 (Measuring a segmentation, in millimetres).
    """
    truth, pred = _pair(truth, pred)
    spacing = _spacing(spacing, pred.ndim)
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        return float("inf")
    from monai.metrics import compute_hausdorff_distance

    with warnings.catch_warnings():  # a deprecation inside MONAI, not about this call
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_hausdorff_distance(_as_monai(pred), _as_monai(truth), include_background=True,
                                           percentile=95, spacing=spacing)
    return float(value.reshape(-1)[0])


def surface_dice(truth: Any, pred: Any, *, tolerance_mm: float, spacing: Spacing = None) -> float:
    """Normalised surface Dice: the fraction of both boundaries lying within ``tolerance_mm`` of
    the other boundary, in [0, 1]. It rewards contours a reader would accept as drawn.

    Taught in lab 05, section 5 (Measuring a segmentation, in millimetres).
    """
    tolerance_mm = arguments.number(tolerance_mm, "tolerance_mm", low=0.0)
    truth, pred = _pair(truth, pred)
    spacing = _spacing(spacing, pred.ndim)
    if not pred.any() and not truth.any():
        return 1.0
    if not pred.any() or not truth.any():
        return 0.0
    from monai.metrics import compute_surface_dice

    with warnings.catch_warnings():  # a deprecation inside MONAI, not about this call
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_surface_dice(_as_monai(pred), _as_monai(truth), class_thresholds=[float(tolerance_mm)],
                                     include_background=True, spacing=spacing)
    return float(value.reshape(-1)[0])


def segmentation_scores(truth: Mapping[str, Any], pred: Mapping[str, Any], *, spacing: Spacing = None,
                        tolerance_mm: float = 2.0) -> dict[str, dict[str, float]]:
    """All four metrics per structure: ``{name: {"dice", "iou", "hd95_mm", "surface_dice"}}`` for
    every structure of ``truth`` (a dict of true masks; ``pred`` must hold a mask for each).

    Taught in lab 05, section 5 (Measuring a segmentation, in millimetres).
    """
    missing = set(truth) - set(pred)
    if missing:
        raise KeyError(f"no prediction for structure(s) {sorted(missing)}")
    return {name: {"dice": dice(truth[name], pred[name]), "iou": iou(truth[name], pred[name]),
                   "hd95_mm": hausdorff95(truth[name], pred[name], spacing=spacing),
                   "surface_dice": surface_dice(truth[name], pred[name], tolerance_mm=tolerance_mm, spacing=spacing)}
            for name in truth}
