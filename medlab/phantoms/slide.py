"""A synthetic H&E-stained whole slide, rendered region by region, never whole.

A real whole-slide image is tens of thousands of pixels a side: it does not fit in a laptop's
memory decoded, so everything that touches it works window by window. This phantom is built the
same way. Its random parts are drawn once from the ``seed`` into small arrays (a few MB for an
8192 × 8192 slide), and any level-0 region is rendered from them alone:

- **tissue** — a smooth random field at 1/64 of the resolution (128 × 128 for 8192²; Gaussian
  filtered noise that fades out towards the slide's edges), upsampled bilinearly only over the
  region asked and thresholded so that about 45 % of the slide is tissue (35–60 % whatever the
  seed);
- **stroma** — pink (eosin), a little darker deep inside the tissue, with a fibrous texture;
- **nuclei** — dark purple (haematoxylin) disks of radius 3–6 px on a jittered grid of
  16 × 16 px cells: each cell holds at most one nucleus, drawn with its centre, radius, shade
  and presence once for the whole grid, and kept inside its cell, so a pixel needs only its own
  cell. Nuclei appear only in tissue;
- **background** — near-white glass with faint noise.

Pixel noise and the fibre texture are periodic tiles drawn from the seed (251 and 256 px, so
their sum repeats only every 64 256 px). Every pixel is computed from its own coordinates with
plain arithmetic, so the same pixels come out whatever region split is used: two halves equal
the whole, and :func:`slide_tiles` tiles stitch seamlessly.

>>> rgb, nuclei = slide_region(0, 0, 32, 48, shape=(1024, 1024))
>>> rgb.shape, rgb.dtype, nuclei.shape, nuclei.dtype
((32, 48, 3), dtype('uint8'), (32, 48), dtype('bool'))
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import scipy.ndimage as ndi

from medlab import arguments

TISSUE_SCALE = 64
"""Level-0 pixels per pixel of the low-resolution tissue field."""

CELL = 16
"""Side of a nucleus cell in level-0 pixels: each cell holds at most one nucleus."""

TISSUE_FRACTION = 0.45
"""The share of the low-resolution field that is tissue (the slide's share is within a few %)."""

BACKGROUND = np.array([242.0, 241.0, 244.0], np.float32)
STROMA = np.array([228.0, 150.0, 190.0], np.float32)
NUCLEUS = np.array([88.0, 52.0, 128.0], np.float32)
"""Mean colours (RGB, 0–255) of glass, eosin-stained stroma and haematoxylin-stained nuclei."""

BLOCK = (64, 256)
"""Rows and columns (whole cells) rendered at a time: its float32 arrays (64 KB) stay in the
cache and below the allocator's memory-mapping threshold, which makes rendering about 4 times
faster than in one piece (large temporaries are page-faulted afresh at each allocation)."""

_NOISE_PERIOD, _FIBRE_PERIOD = 251, 256


class _Plan(NamedTuple):
    """The slide's random parts, drawn once from the seed (all small arrays)."""

    field: np.ndarray      # (ceil(H/64), ceil(W/64)) float32, tissue where > threshold
    threshold: float
    centre_y: np.ndarray   # (ceil(H/16), ceil(W/16)) float32, nucleus centre within its cell
    centre_x: np.ndarray
    radius2: np.ndarray    # squared radius; 0 where the cell has no nucleus
    shade: np.ndarray      # nucleus darkness factor around 1
    noise: np.ndarray      # (251, 251) float32, unit pixel noise, periodic
    fibres: np.ndarray     # (256, 256) float32, fibre texture in about [-1, 1], periodic


def _tissue_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Smooth noise at 1/64 scale (blobs of about 1000 px), faded towards the slide's edges."""
    low = tuple(-(-n // TISSUE_SCALE) for n in shape)
    field = ndi.gaussian_filter(rng.standard_normal(low), sigma=3.0, mode="reflect")
    field /= field.std() + 1e-12
    edge = [np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5) / n for n in low]  # 0 … 0.5
    distance = np.minimum(edge[0][:, None], edge[1][None, :])
    return (field - 2.5 * np.clip(1.0 - distance / 0.08, 0.0, 1.0)).astype(np.float32)


def _nucleus_cells(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Centre (y, x) within the cell, squared radius (0: no nucleus) and shade of each cell."""
    cells = tuple(-(-n // CELL) for n in shape)
    radius = rng.uniform(3.0, 6.0, cells)
    span = (CELL - 1) - 2 * radius  # keeps the disk [c - r, c + r] inside the cell's pixels
    centre_y = radius + rng.random(cells) * span
    centre_x = radius + rng.random(cells) * span
    present = rng.random(cells) < 0.45
    shade = rng.uniform(0.8, 1.15, cells)
    return tuple(a.astype(np.float32) for a in (centre_y, centre_x, np.where(present, radius**2, 0.0), shade))


def _fibre_texture(rng: np.random.Generator) -> np.ndarray:
    """Noise smeared along one direction, periodic: the streaks of collagen fibres."""
    streaks = ndi.gaussian_filter(rng.standard_normal((_FIBRE_PERIOD,) * 2), sigma=(1.0, 5.0), mode="wrap")
    streaks = ndi.rotate(streaks, 30, reshape=False, mode="grid-wrap", order=1)
    return np.clip(streaks / (2.5 * streaks.std()), -1.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _plan(seed: int, shape: tuple[int, int]) -> _Plan:
    rng = np.random.default_rng([seed, 83])
    field = _tissue_field(rng, shape)
    cells = _nucleus_cells(rng, shape)
    noise = rng.standard_normal((_NOISE_PERIOD,) * 2).astype(np.float32)
    plan = _Plan(field, float(np.quantile(field, 1.0 - TISSUE_FRACTION)), *cells, noise, _fibre_texture(rng))
    for array in plan:
        if isinstance(array, np.ndarray):
            array.flags.writeable = False
    return plan


def _bilinear_weights(start: int, stop: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For level-0 pixels ``start … stop - 1``: the two low-resolution samples around each pixel
    centre (clamped at the edges) and the weight of the second."""
    u = (np.arange(start, stop, dtype=np.float32) + 0.5) / TISSUE_SCALE - 0.5
    low = np.floor(u)
    fraction = np.clip(u - low, 0.0, 1.0).astype(np.float32)
    first = np.clip(low, 0, n - 1).astype(np.intp)
    fraction[u < 0] = 0.0
    return first, np.minimum(first + 1, n - 1), fraction


def _tissue_values(plan: _Plan, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """The tissue field upsampled bilinearly over the region only, ``(h, w)`` float32."""
    r0, r1, fy = _bilinear_weights(*rows, plan.field.shape[0])
    c0, c1, fx = _bilinear_weights(*cols, plan.field.shape[1])
    along_rows = plan.field[r0] * (1 - fy)[:, None] + plan.field[r1] * fy[:, None]
    return np.take(along_rows, c0, axis=1) * (1 - fx) + np.take(along_rows, c1, axis=1) * fx


def _nucleus_pixels(plan: _Plan, cell_rows: slice, cell_cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """Nucleus mask and shade over whole cells, ``(h, w)``: each pixel tests its own cell's disk."""
    local = np.arange(CELL, dtype=np.float32)
    cy, cx = plan.centre_y[cell_rows, cell_cols], plan.centre_x[cell_rows, cell_cols]
    dy2 = (local[None, :, None, None] - cy[:, None, :, None]) ** 2
    dx2 = (local[None, None, None, :] - cx[:, None, :, None]) ** 2
    inside = dy2 + dx2 <= plan.radius2[cell_rows, cell_cols][:, None, :, None]
    shade = np.broadcast_to(plan.shade[cell_rows, cell_cols][:, None, :, None], inside.shape)
    h, w = cy.shape[0] * CELL, cy.shape[1] * CELL
    return inside.reshape(h, w), shade.reshape(h, w)


def _periodic(tile: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """A periodic tile read over the region, ``(h, w)``."""
    return np.take(tile[np.arange(*rows) % tile.shape[0]], np.arange(*cols) % tile.shape[1], axis=1)


def _colours(tissue: np.ndarray, depth: np.ndarray, nuclei: np.ndarray, shade: np.ndarray,
             noise: np.ndarray, fibres: np.ndarray) -> np.ndarray:
    """Glass, stroma and nuclei coloured, ``(h, w, 3)`` uint8: each kind's mean colour times a
    brightness factor (stroma: depth and fibres; nuclei: their shade), plus pixel noise.

    Blended with 0/1 weights rather than looked up: plain float32 arithmetic is the fastest."""
    t, m = tissue.astype(np.float32), nuclei.astype(np.float32)  # nuclei lie in tissue
    eosin = 1.0 - 0.08 * np.clip(depth, 0.0, 1.5) - 0.10 * fibres
    factor = 1.0 + t * (eosin - 1.0) + m * (shade - eosin)
    grain = (2.5 + 2.5 * t + 2.0 * m) * noise
    rgb = np.empty(tissue.shape + (3,), np.uint8)
    for c in range(3):
        mean = BACKGROUND[c] + t * (STROMA[c] - BACKGROUND[c]) + m * (NUCLEUS[c] - STROMA[c])
        rgb[..., c] = np.clip(mean * factor + grain, 0.0, 255.0)
    return rgb


def _checked_region(y, x, h, w, shape) -> tuple[int, int, int, int, tuple[int, int]]:
    shape = arguments.shape(shape, "shape", ndim=2, minimum=CELL, axes="(height, width) in pixels")
    y = arguments.integer(y, "y", minimum=0, maximum=shape[0] - 1)
    x = arguments.integer(x, "x", minimum=0, maximum=shape[1] - 1)
    h = arguments.integer(h, "h", minimum=1, maximum=shape[0] - y)
    w = arguments.integer(w, "w", minimum=1, maximum=shape[1] - x)
    return y, x, h, w, shape


def _render_block(plan: _Plan, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``(h, w, 3)`` uint8 and nuclei ``(h, w)`` bool over a box of whole cells."""
    field = _tissue_values(plan, rows, cols)
    tissue = field > plan.threshold
    cells = slice(rows[0] // CELL, rows[1] // CELL), slice(cols[0] // CELL, cols[1] // CELL)
    nuclei, shade = _nucleus_pixels(plan, *cells)
    nuclei &= tissue
    rgb = _colours(tissue, field - plan.threshold, nuclei, shade,
                   _periodic(plan.noise, rows, cols), _periodic(plan.fibres, rows, cols))
    return rgb, nuclei


def slide_region(y: int, x: int, h: int, w: int, *, seed: int = 0,
                 shape: tuple[int, int] = (8192, 8192)) -> tuple[np.ndarray, np.ndarray]:
    """Render the level-0 region ``[y, y + h) × [x, x + w)`` (pixels: row and column of the
    top-left corner, height and width) of the slide of ``shape`` ``(H, W)`` drawn from ``seed``.

    Returns ``rgb`` ``(h, w, 3)`` uint8 (an H&E-like colour image) and ``nuclei`` ``(h, w)``
    bool (the nucleus pixels: the ground truth of a segmentation). Only the
    region is rendered (over the whole 16-px cells it touches), from small arrays drawn once per
    seed and shape; the same pixel comes out whatever region it is asked in. The region must lie
    inside the slide.

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    y, x, h, w, shape = _checked_region(y, x, h, w, shape)
    plan = _plan(arguments.integer(seed, "seed", minimum=0), shape)
    top, left = y // CELL * CELL, x // CELL * CELL
    bottom, right = -(-(y + h) // CELL) * CELL, -(-(x + w) // CELL) * CELL
    rgb = np.empty((bottom - top, right - left, 3), np.uint8)
    nuclei = np.empty((bottom - top, right - left), bool)
    for r in range(top, bottom, BLOCK[0]):
        for c in range(left, right, BLOCK[1]):
            rows, cols = (r, min(r + BLOCK[0], bottom)), (c, min(c + BLOCK[1], right))
            where = slice(r - top, rows[1] - top), slice(c - left, cols[1] - left)
            rgb[where], nuclei[where] = _render_block(plan, rows, cols)
    crop = (slice(y - top, y - top + h), slice(x - left, x - left + w))
    return rgb[crop].copy(), nuclei[crop].copy()


def slide_tiles(*, shape: tuple[int, int] = (8192, 8192), tile: int = 512, seed: int = 0) -> Iterator[np.ndarray]:
    """The level-0 tiles of the slide, ``(tile, tile, 3)`` uint8 each, in row-major order — what
    ``tifffile.TiffWriter.write`` takes as an iterator, and what
    :func:`medlab.slides.write_pyramid` streams into a file without holding the slide.

    ``shape`` ``(H, W)`` in pixels must be divisible by ``tile``.

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    shape = arguments.shape(shape, "shape", ndim=2, minimum=CELL, axes="(height, width) in pixels")
    tile = arguments.integer(tile, "tile", minimum=1)
    seed = arguments.integer(seed, "seed", minimum=0)
    if shape[0] % tile or shape[1] % tile:
        raise ValueError(f"shape {shape} must be divisible by tile {tile}")
    return (slide_region(y, x, tile, tile, seed=seed, shape=shape)[0]
            for y in range(0, shape[0], tile) for x in range(0, shape[1], tile))
