"""Radiomics-style features of a region: intensity statistics, GLCM texture, shape, and Fourier
descriptors of its outline.

Each function takes a 2D image ``(H, W)`` and/or a boolean mask ``(H, W)`` of the region and
returns a flat ``dict`` of named numbers, so features of several regions combine into one row
of a feature table (:func:`region_features`). Built on scikit-image; the names follow the
Image Biomarker Standardisation Initiative loosely (first-order, GLCM, shape).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats
from skimage.feature import graycomatrix, graycoprops
from skimage.measure import find_contours, label, regionprops


def _checked(image: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D (H, W), got shape {mask.shape}")
    if image is not None and np.shape(image) != mask.shape:
        raise ValueError(f"image {np.shape(image)} and mask {mask.shape} must have the same shape")
    if mask.sum() < 2:
        raise ValueError("the mask selects fewer than 2 pixels: no features can be computed")
    if image is not None and not np.isfinite(np.asarray(image, dtype=float)[mask]).all():
        raise ValueError("the image has NaN or infinite pixels inside the mask: features would be NaN")
    return mask


def first_order(image: np.ndarray, mask: np.ndarray, *, bins: int = 32) -> dict[str, float]:
    """Intensity statistics of the pixels in ``mask``: mean, standard deviation, skewness,
    kurtosis (excess), 10th/50th/90th percentiles and the histogram entropy (bits, ``bins`` bins).

    >>> f = first_order(np.arange(16.0).reshape(4, 4), np.ones((4, 4), bool))
    >>> f["mean"], f["p50"]
    (7.5, 7.5)

    Taught in lab 02, section 2 (Features of a region).
    """
    mask = _checked(image, mask)
    v = np.asarray(image, dtype=np.float64)[mask]
    counts, _ = np.histogram(v, bins=bins)
    p = counts[counts > 0] / counts.sum()
    flat = v.std() < 1e-12
    return {
        "mean": float(v.mean()), "std": float(v.std()),
        "skewness": 0.0 if flat else float(stats.skew(v)),
        "kurtosis": 0.0 if flat else float(stats.kurtosis(v)),
        "p10": float(np.percentile(v, 10)), "p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90)),
        "entropy": float(-(p * np.log2(p)).sum()),
    }


def glcm_features(image: np.ndarray, mask: np.ndarray, *, levels: int = 32, distances: tuple[int, ...] = (1, 2),
                  value_range: tuple[float, float] | None = None) -> dict[str, float]:
    """Grey-level co-occurrence texture of the region (scikit-image's ``graycomatrix``).

    Pixels in ``mask`` are quantised to ``levels`` grey levels over ``value_range`` (default: the
    region's own minimum and maximum); pairs involving a pixel outside the mask are discarded.
    The co-occurrence matrix is symmetric, averaged over four directions and the ``distances``
    (pixels). Returns contrast, dissimilarity, homogeneity, energy and correlation.

    Taught in lab 02, section 2 (Features of a region).
    """
    mask = _checked(image, mask)
    values = np.asarray(image, dtype=np.float64)
    lo, hi = value_range if value_range is not None else (values[mask].min(), values[mask].max())
    scaled = np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    # level 0 marks "outside the region"; the region uses levels 1..levels
    quantised = np.where(mask, 1 + np.minimum((scaled * levels).astype(int), levels - 1), 0).astype(np.uint8)
    matrix = graycomatrix(quantised, distances=list(distances), angles=[0, np.pi / 4, np.pi / 2, 3 * np.pi / 4],
                          levels=levels + 1, symmetric=True, normed=False)
    matrix = matrix[1:, 1:].astype(np.float64)  # drop pairs that touch the outside
    totals = matrix.sum(axis=(0, 1), keepdims=True)
    if np.any(totals == 0):
        raise ValueError("the region is too thin for these distances: no pixel pairs inside the mask")
    matrix /= totals
    return {name: float(graycoprops(matrix, name).mean())
            for name in ("contrast", "dissimilarity", "homogeneity", "energy", "correlation")}


def shape_features(mask: np.ndarray, *, spacing: float = 1.0) -> dict[str, float]:
    """Shape of the largest connected region in ``mask``: area (units²), perimeter (units),
    eccentricity, solidity, extent, and compactness ``4π·area/perimeter²`` (1 for a disk).
    ``spacing`` is the pixel size (e.g. mm).

    >>> yy, xx = np.mgrid[:64, :64]
    >>> round(shape_features((yy - 32) ** 2 + (xx - 32) ** 2 < 20 ** 2)["eccentricity"], 2)
    0.0
    """
    mask = _checked(None, mask)
    regions = regionprops(label(mask))
    r = max(regions, key=lambda region: region.area)
    area, perimeter = r.area * spacing**2, max(r.perimeter, 1e-12) * spacing
    return {
        "area": float(area), "perimeter": float(perimeter), "eccentricity": float(r.eccentricity),
        "solidity": float(r.solidity), "extent": float(r.extent),
        "compactness": float(4 * np.pi * area / perimeter**2),
    }


def fourier_descriptors(mask: np.ndarray, *, n: int = 8) -> np.ndarray:
    """Magnitudes of the first ``n`` Fourier coefficients of the region's outline, divided by the
    first: invariant to position, size, rotation and where the outline starts. Shape ``(n,)``.

    The outline is the longest contour of ``mask`` as complex numbers ``x + iy``; dropping
    coefficient 0 removes position, dividing by coefficient 1 removes size, and taking
    magnitudes removes rotation and the starting point.

    Taught in lab 02, section 2 (Features of a region).
    """
    mask = _checked(None, mask)
    contours = find_contours(np.pad(mask, 1).astype(float), 0.5)
    outline = max(contours, key=len)
    z = outline[:, 1] + 1j * outline[:, 0]
    if len(z) < 2 * n + 3:
        raise ValueError(f"the outline has only {len(z)} points: too few for {n} descriptors")
    coefficients = np.fft.fft(z - z.mean())
    magnitudes = np.abs(np.concatenate([coefficients[1:n + 2], coefficients[-(n + 1):]]))
    # pair +k and -k: the outline's ellipse-like harmonics
    paired = magnitudes[: n + 1] + magnitudes[::-1][: n + 1]
    return (paired[1:] / max(paired[0], 1e-12)).astype(np.float64)


def region_features(image: np.ndarray, masks: Mapping[str, np.ndarray], *, n_fourier: int = 6,
                    value_range: tuple[float, float] | None = None) -> dict[str, float]:
    """All of the above for each named region, flattened into ``{"<region>_<feature>": value}``.

    Taught in lab 02, section 2 (Features of a region).
    """
    row: dict[str, float] = {}
    for name, mask in masks.items():
        for group in (first_order(image, mask), glcm_features(image, mask, value_range=value_range),
                      shape_features(mask)):
            row.update({f"{name}_{key}": value for key, value in group.items()})
        for k, value in enumerate(fourier_descriptors(mask, n=n_fourier), start=2):
            row[f"{name}_fourier{k}"] = float(value)
    return row
