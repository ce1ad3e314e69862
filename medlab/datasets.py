"""torch Datasets over the synthetic cohort, for classification, segmentation and detection.

Classification and segmentation samples are dictionaries with MONAI's keys, ``"image"`` and
``"label"``, the way MONAI's dictionary transforms and :func:`medlab.train.fit` expect them, and
the way every medlab dataset serves them:

- classification: ``{"image": (1, H, W) float32, "label": int}``
- segmentation: ``{"image": (1, H, W) float32, "label": (K, H, W) float32 in {0, 1}}``

Detection samples follow torchvision's detection models, which take an image and a target
dictionary (a sample's boxes differ in number, so they cannot share one tensor): ``(image (1, H, W) float32,
{"boxes": (M, 4) float32 as (x_min, y_min, x_max, y_max) in pixels, "labels": (M,) int64})``.
MONAI's box transforms count box coordinates along the array axes instead (first spatial
axis first), so :class:`DetectionDataset` converts before and after its transform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import Dataset

from medlab.phantoms.radiograph import RadiographBatch


def classification_items(batch: RadiographBatch) -> list[dict[str, Any]]:
    """One ``{"image", "label", "site"}`` dict per radiograph of ``batch``."""
    return [{"image": batch.images[i], "label": int(batch.labels[i]), "site": batch.sites[i]}
            for i in range(len(batch))]


def segmentation_items(batch: RadiographBatch, *, structures: Sequence[str] = ("lung_right", "lung_left")
                       ) -> list[dict[str, Any]]:
    """One ``{"image", "label"}`` dict per radiograph; ``label`` stacks the masks of ``structures``
    as channels, ``(K, H, W)`` float32 in {0, 1}."""
    unknown = set(structures) - set(batch.mask_names)
    if unknown:
        raise ValueError(f"unknown structure(s) {sorted(unknown)}: choose from {', '.join(batch.mask_names)}")
    channels = [batch.mask_names.index(s) for s in structures]
    return [{"image": batch.images[i], "label": batch.masks[i, channels].astype(np.float32)}
            for i in range(len(batch))]


def classification_dataset(batch: RadiographBatch, *, transform: Callable | None = None) -> Dataset:
    """A :class:`monai.data.Dataset` of :func:`classification_items`."""
    return Dataset(classification_items(batch), transform=transform)


def segmentation_dataset(batch: RadiographBatch, *, structures: Sequence[str] = ("lung_right", "lung_left"),
                         transform: Callable | None = None) -> Dataset:
    """A :class:`monai.data.Dataset` of :func:`segmentation_items`."""
    return Dataset(segmentation_items(batch, structures=structures), transform=transform)


def swap_box_axes(boxes: Any) -> Any:
    """Convert 2D boxes between torchvision's ``(x_min, y_min, x_max, y_max)`` (x = column) and
    MONAI's array-axis order (first coordinate along rows). Its own inverse.

    >>> swap_box_axes(np.array([[1.0, 2.0, 3.0, 4.0]]))
    array([[2., 1., 4., 3.]])
    """
    return boxes[..., [1, 0, 3, 2]]


class DetectionDataset(torch.utils.data.Dataset):
    """Images with boxes, served as ``(image, {"boxes", "labels"})`` in torchvision's format.

    ``transform`` is a MONAI dictionary transform over keys ``"image"``, ``"boxes"`` (in MONAI's
    axis order, e.g. ``RandFlipBoxd(image_keys="image", box_keys="boxes")``) and
    ``"box_labels"``; boxes are converted on the way in and out.
    """

    def __init__(self, images: np.ndarray, boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray] | None = None, *,
                 transform: Callable | None = None):
        if len(images) != len(boxes):
            raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
        self.images, self.boxes, self.transform = images, list(boxes), transform
        self.labels = [np.ones(len(b), dtype=np.int64) for b in boxes] if labels is None else list(labels)

    @classmethod
    def from_radiographs(cls, batch: RadiographBatch, *, transform: Callable | None = None) -> DetectionDataset:
        """Nodule detection on a radiograph batch (every box has label 1, ``"nodule"``)."""
        return cls(batch.images, batch.boxes, transform=transform)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sample = {
            "image": torch.as_tensor(self.images[index], dtype=torch.float32),
            "boxes": torch.as_tensor(swap_box_axes(np.asarray(self.boxes[index], dtype=np.float32).reshape(-1, 4))),
            "box_labels": torch.as_tensor(self.labels[index], dtype=torch.int64),
        }
        if self.transform is not None:
            sample = self.transform(sample)
        image = torch.as_tensor(sample["image"], dtype=torch.float32)
        boxes = swap_box_axes(torch.as_tensor(sample["boxes"], dtype=torch.float32).reshape(-1, 4))
        return image, {"boxes": boxes, "labels": torch.as_tensor(sample["box_labels"], dtype=torch.int64)}


def detection_collate(samples: Sequence[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Batch detection samples as lists (torchvision's detectors take lists: boxes differ in number)."""
    images, targets = zip(*samples)
    return list(images), list(targets)
