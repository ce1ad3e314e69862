"""Metrics with defined behaviour on the edge cases that break naive code.

- :mod:`medlab.metrics.segmentation`: Dice, IoU, 95th-percentile Hausdorff distance and surface
  Dice, in physical units (mm) given the voxel spacing.
- :mod:`medlab.metrics.detection`: box matching, precision–recall, COCO-style average precision
  and FROC.
"""

from medlab.metrics.detection import (FROC_RATES, average_precision, average_precision_range, froc, match_detections,
                                      precision_recall)
from medlab.metrics.segmentation import dice, hausdorff95, iou, segmentation_scores, surface_dice

__all__ = ["FROC_RATES", "average_precision", "average_precision_range", "froc", "match_detections", "precision_recall",
           "dice", "hausdorff95", "iou", "segmentation_scores", "surface_dice"]
