"""Datasets over the cohort, and MONAI augmentation that keeps masks and boxes on the anatomy."""

import numpy as np
import pytest
import torch
from monai.apps.detection.transforms.dictionary import RandFlipBoxd, RandRotateBox90d

from medlab.datasets import DetectionDataset, swap_box_axes
from medlab.phantoms import chest_radiographs


@pytest.fixture(scope="module")
def batch():
    return chest_radiographs(12, seed=9, size=64, nodules=1.0, pneumonia=0.5)


def test_swap_box_axes_is_its_own_inverse():
    boxes = np.array([[1.0, 2.0, 3.0, 5.0]])
    np.testing.assert_array_equal(swap_box_axes(swap_box_axes(boxes)), boxes)


def test_detection_targets_in_torchvision_format(batch):
    ds = DetectionDataset(batch.images, batch.boxes)
    image, target = ds[0]
    assert image.shape == (1, 64, 64) and image.dtype == torch.float32
    assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
    np.testing.assert_allclose(target["boxes"].numpy(), batch.boxes[0])
    images, targets = next(iter(torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=lambda s: tuple(zip(*s)))))
    assert len(images) == 2 and len(targets) == 2 and images[1].shape == (1, 64, 64)


def _box_covers_nodule(image, boxes, nodule_mask):
    for x0, y0, x1, y1 in boxes.round().int().tolist():
        nodule_mask[y0:y1, x0:x1] = False
    return not nodule_mask.any()


@pytest.mark.parametrize("transform", [
    RandFlipBoxd(image_keys="image", box_keys="boxes", box_ref_image_keys="image", prob=1.0, spatial_axis=0),
    RandFlipBoxd(image_keys="image", box_keys="boxes", box_ref_image_keys="image", prob=1.0, spatial_axis=1),
    RandRotateBox90d(image_keys="image", box_keys="boxes", box_ref_image_keys="image", prob=1.0, max_k=1),
])
def test_monai_box_transforms_keep_boxes_on_the_nodules(batch, transform):
    """Flip and rotate image and boxes together; the nodule mask, moved the same way by hand,
    must still lie inside the returned boxes."""
    masks = torch.as_tensor(batch.mask("nodule")[:, None].astype(np.float32))
    for i in range(4):
        image, target = DetectionDataset(masks[i:i + 1].numpy(), batch.boxes[i:i + 1], transform=transform)[0]
        assert image.sum() == masks[i].sum()  # the transformed "image" is the nodule mask itself
        assert _box_covers_nodule(image, target["boxes"], image[0].numpy() > 0.5)
        # and the boxes are tight: each contains nodule pixels
        for x0, y0, x1, y1 in target["boxes"].round().int().tolist():
            assert image[0, y0:y1, x0:x1].sum() > 0
