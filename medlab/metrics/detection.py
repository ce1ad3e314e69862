"""Detection metrics: matching boxes, precision–recall, average precision (COCO's way) and FROC.

Boxes are ``(x_min, y_min, x_max, y_max)`` in pixels (torchvision's convention). A detection
*hits* a true box when their IoU is at least ``iou_threshold``; each true box can be hit once,
the detections taken from the highest score down (greedy, as COCO evaluates), so a second box on
the same lesion is a false positive. The truth comes first, as in scikit-learn: lists run over
images, ``truths[i]`` holding image ``i``'s ``(M, 4)`` true boxes and ``predictions[i]`` its
``(boxes (D, 4), scores (D,))``; options (``iou_threshold``, ``rates``) are keywords.

Average precision follows the COCO definition (precision made monotone, read at 101 recall
points), so it agrees with ``pycocotools`` and ``torchmetrics`` for a single class. FROC
(free-response ROC) gives the sensitivity at fixed numbers of false positives per image, as
lung-nodule challenges report it. pycocotools, the reference, is not called: it works on COCO
dictionaries of a whole dataset and prints as it goes, where the labs need the hits of each
detection (for FROC, and to draw them); ``tests/test_metrics_detection.py`` checks that both
give the same AP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from medlab import arguments

FROC_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""False positives per image at which FROC sensitivities are usually reported."""


def _boxes(array: Any, what: str) -> torch.Tensor:
    """Any (D, 4)-like array (NumPy, tensor, list, possibly empty) -> float64 tensor (D, 4)."""
    if torch.is_tensor(array):
        array = array.detach().cpu().numpy()
    try:
        values = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: boxes must be numbers, an array (D, 4); got {array!r:.80}") from None
    if values.size == 0:
        values = values.reshape(0, 4)
    if values.ndim == 1 and values.shape == (4,):
        values = values[None]
    if values.ndim != 2 or values.shape[1] != 4:
        raise ValueError(f"{what}: boxes must be an array (D, 4) of (x_min, y_min, x_max, y_max); got shape {values.shape}")
    boxes = torch.as_tensor(values)
    if len(boxes) and ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        raise ValueError(f"{what}: boxes must be (x_min, y_min, x_max, y_max) with max >= min")
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{what}: boxes contain NaN or infinite coordinates")
    return boxes


def _scores(scores: Any) -> np.ndarray:
    """Detection scores as float ``(D,)``; NaN or text refused."""
    if torch.is_tensor(scores):
        scores = scores.detach().cpu().numpy()
    try:
        values = np.asarray(scores, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"scores must be numbers, one per box; got {scores!r:.80}") from None
    if np.isnan(values).any():
        raise ValueError("scores contain NaN")
    return values


def match_detections(truth: Any, boxes: Any, scores: Any, *, iou_threshold: float = 0.5) -> np.ndarray:
    """For one image with true boxes ``truth`` ``(M, 4)``: a bool ``(D,)`` array, True where a
    detection of ``boxes`` ``(D, 4)`` hits a not-yet-hit true box, in the order of ``boxes``
    (detections are matched from the highest of ``scores`` ``(D,)`` down).

    Taught in lab 06, section 5 (Precision, recall, average precision, FROC).
    """
    iou_threshold = arguments.number(iou_threshold, "iou_threshold", low=0.0, high=1.0, low_open=True)
    boxes, truth = _boxes(boxes, "predicted"), _boxes(truth, "true")
    scores = _scores(scores)
    if len(scores) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    hits = np.zeros(len(boxes), dtype=bool)
    if len(boxes) == 0 or len(truth) == 0:
        return hits
    ious = box_iou(boxes, truth).numpy()
    taken = np.zeros(len(truth), dtype=bool)
    for d in np.argsort(-scores, kind="mergesort"):
        candidates = np.where(~taken & (ious[d] >= iou_threshold))[0]
        if len(candidates):
            best = candidates[np.argmax(ious[d, candidates])]
            taken[best] = hits[d] = True
    return hits


def _is_prediction(item: Any) -> bool:
    """Whether ``item`` looks like one image's ``(boxes, scores)`` pair rather than true boxes."""
    return isinstance(item, (tuple, list)) and len(item) == 2 and np.ndim(item[1]) == 1 and np.ndim(item[0]) == 2


def _ranked(truths: Sequence, predictions: Sequence, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    if len(predictions) != len(truths):
        raise ValueError(f"{len(truths)} images with truth but {len(predictions)} with predictions")
    if truths and _is_prediction(truths[0]) and not _is_prediction(predictions[0]):
        raise ValueError("the first argument looks like predictions and the second like true boxes: "
                         "the truth comes first, e.g. average_precision(truths, predictions)")
    scores, hits = [], []
    for i, (prediction, truth) in enumerate(zip(predictions, truths)):
        try:
            boxes, image_scores = prediction
        except (TypeError, ValueError):
            raise ValueError(f"predictions[{i}] must be a pair (boxes (D, 4), scores (D,)); "
                             f"got {type(prediction).__name__}") from None
        hits.append(match_detections(truth, boxes, image_scores, iou_threshold=iou_threshold))
        scores.append(_scores(image_scores))
    scores, hits = np.concatenate(scores) if scores else np.zeros(0), np.concatenate(hits) if hits else np.zeros(0, bool)
    order = np.argsort(-scores, kind="mergesort")
    return scores[order], hits[order], int(sum(len(_boxes(t, "true")) for t in truths))


def precision_recall(truths: Sequence, predictions: Sequence, *, iou_threshold: float = 0.5
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, score_thresholds)``, one point per detection taken in score order.

    Taught in lab 06, section 5 (Precision, recall, average precision, FROC).
    """
    scores, hits, n_true = _ranked(truths, predictions, iou_threshold)
    if n_true == 0:
        raise ValueError("no true boxes in any image: recall is undefined")
    tp = np.cumsum(hits)
    return tp / np.arange(1, len(hits) + 1), tp / n_true, scores


def average_precision(truths: Sequence, predictions: Sequence, *, iou_threshold: float = 0.5) -> float:
    """COCO-style AP at one IoU threshold: monotone precision envelope read at recall
    0, 0.01, …, 1. 0 when nothing is detected.

    Taught in lab 06, section 5 (Precision, recall, average precision, FROC).
    """
    precision, recall, _ = precision_recall(truths, predictions, iou_threshold=iou_threshold)
    if len(precision) == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.mean([envelope[i] if i < len(envelope) else 0.0 for i in index]))


COCO_IOU_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.5, 0.96, 0.05), 2))
"""The IoU thresholds 0.5, 0.55, …, 0.95 over which COCO averages AP."""


def average_precision_range(truths: Sequence, predictions: Sequence, *,
                            iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS) -> float:
    """AP averaged over IoU thresholds 0.5, 0.55, …, 0.95 (COCO's headline "AP@[.5:.95]").

    Taught in lab 06, section 5 (Precision, recall, average precision, FROC).
    """
    return float(np.mean([average_precision(truths, predictions, iou_threshold=t) for t in iou_thresholds]))


def froc(truths: Sequence, predictions: Sequence, *, rates: Sequence[float] = FROC_RATES,
         iou_threshold: float = 0.5) -> np.ndarray:
    """Sensitivity at each number of false positives per image in ``rates``: the best
    sensitivity reached while the false positives per image stay at or below the rate.

    Taught in lab 06, section 5 (Precision, recall, average precision, FROC).
    """
    rates = [arguments.number(rate, "rates", low=0.0) for rate in rates]
    scores, hits, n_true = _ranked(truths, predictions, iou_threshold)
    if n_true == 0:
        raise ValueError("no true boxes in any image: sensitivity is undefined")
    n_images = len(truths)
    sensitivity = np.concatenate([[0.0], np.cumsum(hits) / n_true])
    fp_per_image = np.concatenate([[0.0], np.cumsum(~hits) / n_images])
    return np.array([sensitivity[fp_per_image <= rate].max() for rate in rates])
