"""Overlap and boundary metrics for binary masks, in physical units.

Every function takes one predicted and one true mask of the same shape (2D ``(H, W)`` or 3D
``(z, y, x)``, anything that converts to bool) and, for distances, the voxel ``spacing`` in mm
(one value per axis; default 1). Distances come from MONAI's implementations; this module adds
the shape checks and the empty-mask rules, which are decided once here instead of returning NaN:

=====================  ==================  =======================
case                   Dice, IoU, surface   Hausdorff 95 (mm)
=====================  ==================  =======================
both masks empty       1.0                 0.0
one mask empty         0.0                 ``inf``
=====================  ==================  =======================

>>> truth = np.zeros((8, 8), bool); truth[2:6, 2:6] = True
>>> pred = np.zeros((8, 8), bool); pred[2:6, 3:7] = True
>>> round(dice(pred, truth), 3), round(iou(pred, truth), 3)
(0.75, 0.6)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from medlab import arguments

Spacing = float | Sequence[float] | None


def _pair(pred: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(pred, "detach"):
        pred = pred.detach().cpu().numpy()
    if hasattr(truth, "detach"):
        truth = truth.detach().cpu().numpy()
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.dtype == object or truth.dtype == object:
        raise ValueError("masks must be arrays of 0/1 or bool, not of Python objects")
    if pred.shape != truth.shape:
        raise ValueError(f"prediction and truth differ in shape: {pred.shape} vs {truth.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"expected a 2D (H, W) or 3D (z, y, x) mask, got shape {pred.shape}")
    for name, mask in (("prediction", pred), ("truth", truth)):
        if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
            raise ValueError(f"the {name} mask must be binary (0/1 or bool); threshold probabilities first")
    return pred.astype(bool), truth.astype(bool)


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


def dice(pred: Any, truth: Any) -> float:
    """Dice similarity coefficient 2|P∩T| / (|P| + |T|), in [0, 1]."""
    pred, truth = _pair(pred, truth)
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def iou(pred: Any, truth: Any) -> float:
    """Intersection over union |P∩T| / |P∪T| (Jaccard index), in [0, 1]; IoU = Dice / (2 − Dice)."""
    pred, truth = _pair(pred, truth)
    union = (pred | truth).sum()
    return 1.0 if union == 0 else float((pred & truth).sum() / union)


def hausdorff95(pred: Any, truth: Any, spacing: Spacing = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the mask boundaries, in mm: the
    distance within which 95 % of each boundary lies from the other (robust to a few outliers)."""
    pred, truth = _pair(pred, truth)
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        return float("inf")
    from monai.metrics import compute_hausdorff_distance

    with warnings.catch_warnings():  # a deprecation inside MONAI, not about this call
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_hausdorff_distance(_as_monai(pred), _as_monai(truth), include_background=True,
                                           percentile=95, spacing=_spacing(spacing, pred.ndim))
    return float(value.reshape(-1)[0])


def surface_dice(pred: Any, truth: Any, tolerance_mm: float, spacing: Spacing = None) -> float:
    """Normalised surface Dice: the fraction of both boundaries lying within ``tolerance_mm`` of
    the other boundary, in [0, 1]. It rewards contours a reader would accept as drawn."""
    tolerance_mm = arguments.number(tolerance_mm, "tolerance_mm", low=0.0)
    pred, truth = _pair(pred, truth)
    if not pred.any() and not truth.any():
        return 1.0
    if not pred.any() or not truth.any():
        return 0.0
    from monai.metrics import compute_surface_dice

    with warnings.catch_warnings():  # a deprecation inside MONAI, not about this call
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_surface_dice(_as_monai(pred), _as_monai(truth), class_thresholds=[float(tolerance_mm)],
                                     include_background=True, spacing=_spacing(spacing, pred.ndim))
    return float(value.reshape(-1)[0])


def segmentation_scores(pred: Mapping[str, Any], truth: Mapping[str, Any], *, spacing: Spacing = None,
                        tolerance_mm: float = 2.0) -> dict[str, dict[str, float]]:
    """All four metrics per structure: ``{name: {"dice", "iou", "hd95_mm", "surface_dice"}}`` for
    the structures named in both ``pred`` and ``truth`` (dicts of masks)."""
    missing = set(truth) - set(pred)
    if missing:
        raise KeyError(f"no prediction for structure(s) {sorted(missing)}")
    return {name: {"dice": dice(pred[name], truth[name]), "iou": iou(pred[name], truth[name]),
                   "hd95_mm": hausdorff95(pred[name], truth[name], spacing),
                   "surface_dice": surface_dice(pred[name], truth[name], tolerance_mm, spacing)}
            for name in truth}
