"""Radiomics-style features against known answers and their invariances."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from medlab.features import first_order, fourier_descriptors, glcm_features, region_features, shape_features

YY, XX = np.mgrid[:96, :96]


def disk(cy=48, cx=48, r=20):
    return (YY - cy) ** 2 + (XX - cx) ** 2 < r**2


def ellipse(cy=48, cx=48, ry=12, rx=30):
    return ((YY - cy) / ry) ** 2 + ((XX - cx) / rx) ** 2 < 1


def test_first_order_matches_numpy_and_scipy():
    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, size=(96, 96))
    mask = disk()
    f = first_order(image, mask)
    v = image[mask]
    assert f["mean"] == pytest.approx(v.mean()) and f["std"] == pytest.approx(v.std())
    assert f["p90"] == pytest.approx(np.percentile(v, 90))
    assert f["skewness"] > 0.5  # gamma(2) is right-skewed (skewness √2)
    constant = first_order(np.full((8, 8), 3.0), np.ones((8, 8), bool))
    assert constant["std"] == 0 and constant["entropy"] == 0 and constant["skewness"] == 0


def test_glcm_separates_smooth_from_noisy_texture():
    rng = np.random.default_rng(1)
    noisy = rng.random((96, 96))
    smooth = ndi.gaussian_filter(noisy, 4)
    mask = disk()
    rough, soft = glcm_features(noisy, mask), glcm_features(smooth, mask)
    assert rough["contrast"] > 10 * soft["contrast"]
    assert soft["homogeneity"] > rough["homogeneity"] and soft["correlation"] > 0.9 > rough["correlation"]


def test_glcm_ignores_what_is_outside_the_mask():
    rng = np.random.default_rng(2)
    image = rng.random((96, 96))
    mask = disk()
    changed = image.copy()
    changed[~mask] = 100.0
    assert glcm_features(image, mask, value_range=(0, 1)) == glcm_features(changed, mask, value_range=(0, 1))


def test_shape_of_a_disk_and_an_ellipse():
    d, e = shape_features(disk(r=20), spacing=0.5), shape_features(ellipse())
    assert d["area"] == pytest.approx(np.pi * 20**2 * 0.25, rel=0.02)
    assert d["eccentricity"] < 0.05 and d["compactness"] > 0.9 and d["solidity"] > 0.98
    assert e["eccentricity"] == pytest.approx(np.sqrt(1 - (12 / 30) ** 2), abs=0.02)


def test_fourier_descriptors_are_invariant_to_position_size_and_rotation():
    base = fourier_descriptors(ellipse(), n=6)
    moved = fourier_descriptors(ellipse(cy=40, cx=55), n=6)
    scaled = fourier_descriptors(((YY - 48) / 18) ** 2 + ((XX - 48) / 45) ** 2 < 1, n=6)
    rotated = fourier_descriptors(ellipse().T, n=6)
    for other in (moved, scaled, rotated):
        np.testing.assert_allclose(other, base, atol=0.02)
    # but they tell shapes apart: a (pixelated) disk has almost no higher harmonics, a square a strong third
    square = (np.abs(YY - 48) < 20) & (np.abs(XX - 48) < 20)
    assert fourier_descriptors(disk(), n=6).max() < 0.05 < 0.1 < fourier_descriptors(square, n=6)[1]  # k = 3: corners


def test_region_features_flatten_names_and_check_input():
    image = np.random.default_rng(3).random((96, 96))
    row = region_features(image, {"left": disk(48, 30, 12), "right": disk(48, 66, 12)}, n_fourier=4)
    assert "left_mean" in row and "right_contrast" in row and "left_fourier5" in row and "left_fourier6" not in row
    assert all(np.isfinite(v) for v in row.values())
    with pytest.raises(ValueError, match="fewer than 2 pixels"):
        first_order(image, np.zeros((96, 96), bool))
    with pytest.raises(ValueError, match="same shape"):
        first_order(image, np.ones((10, 10), bool))


def test_nan_pixels_inside_the_mask_are_refused():
    image = np.ones((8, 8))
    image[3, 3] = np.nan
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    with pytest.raises(ValueError, match="NaN or infinite pixels inside the mask"):
        first_order(image, mask)
    mask[3, 3] = False  # outside the mask a NaN does not matter
    assert np.isfinite(first_order(image, mask)["mean"])
