"""A torch Dataset of images with boxes, for detection, and the box convention it converts.

Classification and segmentation samples in MedLab are dictionaries with MONAI's keys,
``{"image": (C, H, W) float32, "label": ...}`` (in the labs, a list of dicts in a
:class:`monai.data.Dataset`; the datasets of :mod:`medlab.realdata`), or plain tensor pairs from
a ``TensorDataset``. Detection samples follow
torchvision's detection models instead, which take an image and a target dictionary (a sample's
boxes differ in number, so they cannot share one tensor): ``(image (1, H, W) float32,
{"boxes": (M, 4) float32 as (x_min, y_min, x_max, y_max) in pixels, "labels": (M,) int64})``.
MONAI's box transforms count box coordinates along the array axes instead (first spatial
axis first), so :class:`DetectionDataset` converts before and after its transform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from medlab.phantoms.radiograph import RadiographBatch


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
    ``"box_labels"``; boxes are converted on the way in and out. In a ``DataLoader``, keep the
    samples as lists, as torchvision's detection reference does:
    ``collate_fn=lambda samples: tuple(zip(*samples))``.

    Taught in lab 01, section 9 (Augmentation that keeps masks and boxes aligned).
    """

    def __init__(self, images: np.ndarray, boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray] | None = None, *,
                 transform: Callable | None = None):
        if len(images) != len(boxes):
            raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
        self.images, self.boxes, self.transform = images, list(boxes), transform
        self.labels = [np.ones(len(b), dtype=np.int64) for b in boxes] if labels is None else list(labels)

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
