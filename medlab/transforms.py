"""The few array operations the labs reuse, built on MONAI: resampling to a spacing, and cutting
a large image into overlapping tiles and stitching them back.

Arrays are channel-first: ``(C, H, W)`` or ``(C, D, H, W)``. Spacings are in millimetres, in
the order of the spatial axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from medlab import arguments


def _as_tensor(array: Any) -> torch.Tensor:
    return array if isinstance(array, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(array))


MAX_VOXELS = 2**29
"""The most voxels :func:`resample` makes (2 GiB as float32)."""


def _spacings(spacing: Any, target: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Both spacings as positive finite floats, one per spatial axis."""
    try:
        pair = tuple(float(v) for v in spacing), tuple(float(v) for v in target)
    except (TypeError, ValueError):
        pair = (), ()
    if not pair[0] or len(pair[0]) != len(pair[1]) or not all(
            np.isfinite(v) and v > 0 for v in pair[0] + pair[1]):
        raise ValueError(f"spacing {spacing!r:.60} and target {target!r:.60} must be positive mm, one per spatial axis")
    return pair


def resample(
    image: Any,
    *,
    spacing: Sequence[float],
    target_spacing: Sequence[float],
    mode: str = "bilinear",
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Resample a channel-first image to ``target_spacing`` with MONAI's ``Spacing``.

    ``image`` is ``(C, *spatial)``, ``spacing`` its voxel size per spatial axis (mm). Use
    ``mode="nearest"`` for label maps (interpolating labels invents classes). Returns the new
    array (float32 unless nearest, which keeps the dtype) and the spacing actually reached,
    which can differ slightly from the target so that the field of view is kept.

    >>> out, new = resample(np.zeros((1, 10, 20)), spacing=(2.0, 1.0), target_spacing=(1.0, 1.0))
    >>> out.shape, new
    ((1, 20, 20), (1.0, 1.0))

    Taught in lab 01, section 4 (Orientation and resampling to a common spacing).
    """
    from monai.data import MetaTensor
    from monai.transforms import Spacing

    spacing, target_spacing = _spacings(spacing, target_spacing)
    spatial = len(spacing)
    if np.ndim(image) != spatial + 1:
        raise ValueError(f"image must be channel-first with {spatial} spatial axes, got shape {np.shape(image)}")
    voxels = np.prod([n * s / t for n, s, t in zip(np.shape(image)[1:], spacing, target_spacing)]) * np.shape(image)[0]
    if voxels > MAX_VOXELS:
        raise ValueError(
            f"resampling {np.shape(image)} from {spacing} to {target_spacing} mm would make about "
            f"{voxels:,.0f} voxels (at most {MAX_VOXELS:,}): choose a coarser target spacing"
        )
    dtype = np.asarray(image).dtype if not isinstance(image, torch.Tensor) else None
    affine = torch.eye(spatial + 1, dtype=torch.float64)
    affine[range(spatial), range(spatial)] = torch.as_tensor(spacing, dtype=torch.float64)
    tensor = MetaTensor(_as_tensor(image).float(), affine=affine)
    out = Spacing(pixdim=tuple(target_spacing), mode=mode, dtype=np.float32, scale_extent=True,
                  align_corners=True)(tensor)
    reached = tuple(float(v) for v in np.abs(np.diag(np.asarray(out.affine))[:spatial]))
    array = out.detach().cpu().numpy()
    if mode == "nearest" and dtype is not None:
        array = array.astype(dtype)
    return array.astype(np.float32, copy=False) if mode != "nearest" else array, reached


def tile(image: Any, *, size: int = 512, overlap: float = 0.25) -> tuple[torch.Tensor, np.ndarray]:
    """Cut ``image`` ``(C, H, W)`` into overlapping ``size × size`` tiles (MONAI's ``GridPatch``).

    ``overlap`` is the fraction of a tile shared with its neighbour. Tiles that run past the
    border are padded with zeros. Returns ``tiles`` ``(N, C, size, size)`` and ``origins``
    ``(N, 2)``: each tile's top-left pixel (row, column) in the image.

    Taught in lab 01, section 8 (Tiling a large image into overlapping windows).
    """
    from monai.transforms import GridPatch

    size = arguments.integer(size, "size", minimum=1)
    overlap = arguments.number(overlap, "overlap", low=0.0, high=1.0, high_open=True)
    array = _as_tensor(image)
    if array.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {tuple(array.shape)}")
    short = (max(size - array.shape[1], 0), max(size - array.shape[2], 0))
    if any(short):  # an image smaller than one tile becomes one padded tile
        array = torch.nn.functional.pad(array, (0, short[1], 0, short[0]))
    patches = GridPatch(patch_size=(size, size), overlap=overlap, pad_mode="constant")(array)
    origins = np.asarray(patches.meta["location"]).T.astype(int)
    return patches.as_tensor(), origins


def stitch(tiles: Any, origins: np.ndarray, shape: Sequence[int]) -> torch.Tensor:
    """Reassemble tiles ``(N, C, h, w)`` at ``origins`` ``(N, 2)`` into an image of ``shape``
    ``(C, H, W)``, averaging where tiles overlap (MONAI's ``AvgMerger``).

    The inverse of :func:`tile`; for model outputs, averaging overlaps blends the seams.

    Taught in lab 01, section 8 (Tiling a large image into overlapping windows).
    """
    from monai.inferers import AvgMerger

    tiles = _as_tensor(tiles).float()
    n, channels, h, w = tiles.shape
    if len(origins) != n:
        raise ValueError(f"{n} tiles but {len(origins)} origins")
    if channels != shape[0]:
        raise ValueError(f"tiles have {channels} channels, the target shape {tuple(shape)} has {shape[0]}")
    full = (1, channels, max(shape[1], int(origins[:, 0].max()) + h), max(shape[2], int(origins[:, 1].max()) + w))
    merger = AvgMerger(merged_shape=full, cropped_shape=(1, *shape), count_dtype=torch.int32)
    for t, (r, c) in zip(tiles, origins):
        merger.aggregate(t[None], (int(r), int(c)))
    return merger.finalize()[0]


def _uniform(n: int, half_width: float, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` draws from U(-half_width, half_width) on the CPU, so that a seeded generator gives
    the same draws on every device."""
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1).float() * half_width


def _require_float_batch(images: torch.Tensor) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float batch (N, C, H, W), got {images.dtype} {tuple(images.shape)}")


def random_affine(images: torch.Tensor, *, degrees: float = 10.0, scale: float = 0.1, shift: float = 0.08,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate, scale and shift each image of a batch by its own random amount.

    ``images`` ``(N, C, H, W)`` float, on any device; returns the same shape and device. Each
    image is rotated by up to ``degrees`` either way, scaled by a factor within
    ``1 ± scale`` and shifted by up to ``shift`` of its width and height, with bilinear
    interpolation; pixels brought in from outside repeat the border. Draws come from
    ``generator`` (a CPU ``torch.Generator``; the global one if None).

    One batched ``grid_sample`` does the whole batch: torchvision's and MONAI's random
    transforms draw one transform per call, so a batch would need a Python loop over images.

    Taught in lab 04, section 7 (The final model: a recipe for the whole training set).
    """
    _require_float_batch(images)
    degrees = arguments.number(degrees, "degrees", low=0.0, high=180.0)
    scale = arguments.number(scale, "scale", low=0.0, high=1.0, high_open=True)
    shift = arguments.number(shift, "shift", low=0.0, high=1.0)
    n = len(images)
    angle = torch.deg2rad(_uniform(n, degrees, generator))
    zoom = 1 + _uniform(n, scale, generator)
    offset = torch.stack([_uniform(n, 2 * shift, generator), _uniform(n, 2 * shift, generator)], 1)  # grid units: 2 = the width
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_exposure(images: torch.Tensor, *, contrast: float = 0.2, brightness: float = 0.1,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Change each image's contrast and brightness by its own random amount, as exposure and
    processing differ between radiographs.

    ``images`` ``(N, C, H, W)`` float in [0, 1]-like units, on any device; returns the same
    shape and device, not clipped. Each image's deviations from its own mean are multiplied by a
    factor within ``1 ± contrast``, and a shift within ``± brightness`` is added. Draws come from
    ``generator`` (a CPU ``torch.Generator``; the global one if None).

    Taught in lab 04, section 7 (The final model: a recipe for the whole training set).
    """
    _require_float_batch(images)
    contrast = arguments.number(contrast, "contrast", low=0.0, high=1.0, high_open=True)
    brightness = arguments.number(brightness, "brightness", low=0.0)
    n = len(images)
    factor = (1 + _uniform(n, contrast, generator)).to(images).view(n, 1, 1, 1)
    offset = _uniform(n, brightness, generator).to(images).view(n, 1, 1, 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * factor + mean + offset
