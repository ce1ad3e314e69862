"""Graded scanner corruptions and the augmentation that mimics them."""

import numpy as np
import pytest
import torch

from medlab import corruptions
from medlab.phantoms import chest_radiographs


@pytest.fixture(scope="module")
def images():
    return chest_radiographs(4, seed=0, size=32).images


@pytest.mark.parametrize("kind", corruptions.CORRUPTIONS)
def test_each_corruption_grows_with_severity_and_keeps_the_range(images, kind):
    changes = []
    for severity in range(6):
        out = corruptions.corrupt(images, kind=kind, severity=severity, seed=1)
        assert out.shape == images.shape and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
        changes.append(np.abs(out - images).mean())
    assert changes[0] == 0 and all(a < b for a, b in zip(changes[1:], changes[2:])), changes
    np.testing.assert_array_equal(corruptions.corrupt(images, kind=kind, severity=3, seed=1),
                                  corruptions.corrupt(images, kind=kind, severity=3, seed=1))


def test_corrupt_names_what_is_wrong(images):
    with pytest.raises(ValueError, match="unknown corruption 'jpeg'"):
        corruptions.corrupt(images, kind="jpeg", severity=1)
    with pytest.raises(ValueError, match="severity must be"):
        corruptions.corrupt(images, kind="noise", severity=6)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        corruptions.corrupt(images[:, 0], kind="noise", severity=1)


def test_the_augmentation_changes_images_reproducibly_within_the_range(images):
    x = torch.as_tensor(images)
    first, second = corruptions.scanner_augmentation(seed=3), corruptions.scanner_augmentation(seed=3)
    a, b = first(x), second(x)
    assert a.shape == x.shape and a.dtype == x.dtype and a.min() >= 0 and a.max() <= 1
    with pytest.raises(ValueError, match=r"float batch \(N, 1, H, W\)"):
        first(x[:, 0])
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, x) and not torch.equal(first(x), a)  # drawn afresh every batch
