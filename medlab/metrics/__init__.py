"""Metrics with defined behaviour on the edge cases that break naive code.

- :mod:`medlab.metrics.segmentation`: Dice, IoU, 95th-percentile Hausdorff distance and surface
  Dice, in physical units (mm) given the voxel spacing.
- :mod:`medlab.metrics.classification`: confusion counts, sensitivity, specificity, predictive
  values and prevalence, AUC, operating points.
- :mod:`medlab.metrics.calibration`: reliability curve, expected calibration error, Brier score,
  temperature scaling.
- :mod:`medlab.metrics.bootstrap`: confidence intervals and paired comparisons, resampling
  patients.
- :mod:`medlab.metrics.detection`: box matching, precision–recall, COCO-style average precision
  and FROC.
"""

from medlab.metrics.bootstrap import bootstrap_ci, paired_bootstrap
from medlab.metrics.calibration import (brier_score, expected_calibration_error, fit_temperature, reliability_curve,
                                        sigmoid)
from medlab.metrics.classification import (binary_rates, check_binary, confusion, predictive_values, roc_auc,
                                           threshold_for_sensitivity, threshold_for_specificity)
from medlab.metrics.detection import (COCO_IOU_THRESHOLDS, FROC_RATES, average_precision, average_precision_range, froc,
                                      match_detections,
                                      precision_recall)
from medlab.metrics.segmentation import dice, hausdorff95, iou, segmentation_scores, surface_dice

__all__ = ["bootstrap_ci", "paired_bootstrap", "brier_score", "expected_calibration_error", "fit_temperature",
           "reliability_curve", "sigmoid", "binary_rates", "check_binary", "confusion", "predictive_values", "roc_auc",
           "threshold_for_sensitivity", "threshold_for_specificity",
           "COCO_IOU_THRESHOLDS", "FROC_RATES", "average_precision", "average_precision_range", "froc", "match_detections", "precision_recall",
           "dice", "hausdorff95", "iou", "segmentation_scores", "surface_dice"]
