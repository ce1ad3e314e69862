"""Smooth random fields and soft shapes: the building blocks of the phantoms.

Everything here is vectorised over a batch and works in normalised coordinates
(``-1 … 1`` across the image), so anatomy is defined once, independent of the pixel size.
"""

from __future__ import annotations

import functools

import numpy as np


def grid(size: int) -> np.ndarray:
    """Pixel-centre coordinates in ``[-1, 1]``, shape ``(size,)``, float32."""
    return ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _interpolation_matrix(size: int, knots: int) -> np.ndarray:
    """``(size, knots)`` weights that spread ``knots`` control values smoothly over ``size``
    samples (Gaussian kernel of one knot spacing, rows summing to 1)."""
    u = grid(size)
    g = np.linspace(-1.2, 1.2, knots, dtype=np.float32)
    step = g[1] - g[0]
    w = np.exp(-0.5 * ((u[:, None] - g[None, :]) / step) ** 2)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def smooth_field(
    rng: np.random.Generator, shape: tuple[int, ...], *, batch: int, knots: int = 6
) -> np.ndarray:
    """A smooth random field of unit standard deviation, shape ``(batch, *shape)``, float32.

    ``knots`` control points per axis set the smoothness: 4 gives a gentle gradient (a bias
    field), 16 a patchy texture. Works for 2D ``(H, W)`` and 3D ``(D, H, W)`` shapes.
    """
    low = rng.standard_normal((batch,) + (knots,) * len(shape)).astype(np.float32)
    return interpolate_knots(low, shape)


def interpolate_knots(low: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Spread control values ``(batch, k, k[, k])`` smoothly over ``(batch, *shape)`` and
    normalise each field to zero mean and unit standard deviation."""
    out = low
    for axis, size in enumerate(shape):
        m = _interpolation_matrix(size, low.shape[axis + 1])
        out = np.moveaxis(np.tensordot(out, m, axes=([axis + 1], [1])), -1, axis + 1)
    axes = tuple(range(1, out.ndim))
    out -= out.mean(axis=axes, keepdims=True)
    out /= out.std(axis=axes, keepdims=True) + 1e-6
    return out


def soft_step(signed_distance: np.ndarray, width: float) -> np.ndarray:
    """Smooth 0→1 transition: 1 inside (``signed_distance > 0``), 0 outside, over ``width``
    (same units as the distance). A logistic profile, like a blurred organ boundary."""
    return (0.5 * (1.0 + np.tanh(signed_distance / max(width, 1e-6)))).astype(np.float32)


def ellipse_distance(
    y: np.ndarray, x: np.ndarray, cy, cx, ry, rx, angle=0.0
) -> np.ndarray:
    """Approximate signed distance to an ellipse boundary, positive inside.

    ``y`` and ``x`` broadcast against the (batch-shaped) centre, radii and angle (radians). The
    value is ``(1 - r) * min(ry, rx)`` with ``r`` the normalised elliptic radius: exact for
    circles, a good approximation for moderate eccentricity.
    """
    dy, dx = y - cy, x - cx
    if np.all(np.asarray(angle) == 0):
        u, v = dx / rx, dy / ry
    else:
        cos, sin = np.cos(angle), np.sin(angle)
        u = (dx * cos + dy * sin) / rx
        v = (-dx * sin + dy * cos) / ry
    r = np.sqrt(u * u + v * v)
    return ((1.0 - r) * np.minimum(ry, rx)).astype(np.float32)


def ridges(field: np.ndarray, width: float) -> np.ndarray:
    """Curvilinear bright lines along the zero crossings of a smooth field: ``exp(-(f/w)^2)``.

    Applied to a patchy random field it draws worm-like, branching structures, the way vessels
    and interstitial markings look in a radiograph.
    """
    return np.exp(-((field / width) ** 2)).astype(np.float32)
