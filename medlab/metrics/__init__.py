"""Metrics with defined behaviour on the edge cases that break naive code.

- :mod:`medlab.metrics.segmentation`: Dice, IoU, 95th-percentile Hausdorff distance and surface
  Dice, in physical units (mm) given the voxel spacing.
"""

from medlab.metrics.segmentation import dice, hausdorff95, iou, segmentation_scores, surface_dice

__all__ = ["dice", "hausdorff95", "iou", "segmentation_scores", "surface_dice"]
