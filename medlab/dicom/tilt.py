"""Gantry tilt: measure how far a series' slices are sheared, and resample them onto a straight grid.

A CT gantry can tilt (by up to about 30 degrees) about the patient's left-right axis, so
that the slices follow the anatomy, e.g. parallel to the skull base to keep the eye lenses
out of the beam. The table still moves the patient straight through the gantry, so the
slices are parallel planes whose positions step along the table, not along the slice
normal: each slice lies shifted within its own plane, by ``step * sin(tilt)``, from where a
straight stack would put it. Stacked straight, the slices shear the anatomy.

:func:`_drift` measures that in-plane shift of every slice from *Image Position (Patient)*;
:func:`_straighten` shifts each slice back by it, with linear interpolation in the slice
plane (``scipy.ndimage.shift``), onto a straight grid along the slice normal, as dcm2niix
does. The grid grows by the largest shift, so no voxel is cut off; the new voxels get the
darkest value of the series, as in dcm2niix. :func:`~medlab.dicom.read.read_series` calls
both when given ``tilt="correct"``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi

from medlab.dicom.errors import DicomError

WHOLE_PIXEL_TOLERANCE = 1e-3
"""A shift within this many pixels of a whole number is taken as that number, so that a slice
moved by whole pixels is copied exactly rather than interpolated."""

TILT_MODES = ("refuse", "correct")
"""What :func:`~medlab.dicom.read.read_series` does with a sheared series: raise, or resample."""


def _check_mode(tilt: object) -> str:
    if tilt not in TILT_MODES:
        raise DicomError(
            f"tilt must be 'refuse' (raise a DicomError for a tilted series) or 'correct' "
            f"(resample it onto a straight grid), not {tilt!r}."
        )
    return str(tilt)


def _drift(ipp: np.ndarray, along: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """``(n, 2)`` in-plane shift ``(y, x)`` in mm of each slice from a straight stack.

    ``ipp`` holds the ``(n, 3)`` slice positions (LPS, mm) in slice order, ``along`` their
    distances along the slice normal and ``direction`` the rows ``(x, y, normal)`` of
    :attr:`Series.direction`. Slice 0 has no shift; ``y`` runs along the columns, ``x``
    along the rows.
    """
    steps = ipp - ipp[0]
    in_plane = steps - np.outer(along - along[0], direction[2])
    return np.stack([in_plane @ direction[1], in_plane @ direction[0]], axis=1)


def _tilt_deg(drift: np.ndarray, along: np.ndarray) -> float:
    """The largest angle (degrees) between a slice's step from slice 0 and the slice normal.

    ``drift`` is :func:`_drift`'s ``(n, 2)`` in mm, ``along`` the distances along the
    normal (mm). 0.0 for a single slice.
    """
    if len(along) < 2:
        return 0.0
    sizes = np.linalg.norm(drift[1:], axis=1)
    return max(math.degrees(math.atan2(d, a)) for d, a in zip(sizes, along[1:] - along[0]))


def _pixel_shifts(drift: np.ndarray, pixel_spacing: tuple[float, float]) -> np.ndarray:
    """``(n, 2)`` shifts in pixels, ``(rows, columns)``, of the mm ``drift``; near-whole ones whole."""
    shifts = drift / np.asarray(pixel_spacing, dtype=float)
    whole = np.round(shifts)
    return np.where(np.abs(shifts - whole) <= WHOLE_PIXEL_TOLERANCE, whole, shifts)


def _straight_grid(
    shifts: np.ndarray, shape: tuple[int, int, int]
) -> tuple[tuple[int, int, int], np.ndarray]:
    """The ``(z, y, x)`` shape of the straight grid that holds every shifted slice, and the
    ``(rows, columns)`` position of the first slice's pixel ``[0, 0]`` in it (``>= 0``)."""
    low = np.floor(shifts.min(axis=0)).astype(int)
    high = np.ceil(shifts.max(axis=0)).astype(int)
    return (shape[0], shape[1] + int(high[0] - low[0]), shape[2] + int(high[1] - low[1])), -low


def _straighten(
    volume: np.ndarray, shifts: np.ndarray, *, max_bytes: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Shift slice ``k`` of ``volume`` ``(z, y, x)`` by ``shifts[k]`` pixels ``(rows, columns)``.

    Returns the float32 volume on the straight grid, larger than ``volume`` by the spread
    of the shifts and filled with ``volume``'s darkest value where no slice reaches, and
    the ``(rows, columns)`` index, in it, of the first slice's pixel ``[0, 0]``. Linear
    interpolation (``scipy.ndimage.shift``, order 1) within each slice; a whole-pixel shift
    copies the slice exactly. Raises a :class:`DicomError` naming ``where`` if the grid
    would need more than ``max_bytes``.
    """
    shape, first = _straight_grid(shifts, volume.shape)
    needed = math.prod(shape) * np.dtype(np.float32).itemsize
    if needed > max_bytes:
        raise DicomError(
            f"{where}: straightening the tilted slices needs a grid of {shape[1]} x {shape[2]} "
            f"pixels per slice, {needed / 2**30:.1f} GiB as float32 for {shape[0]} slices, more "
            f"than read_series allocates ({max_bytes / 2**30:g} GiB). Read fewer slices at a time."
        )
    fill = float(volume.min())
    out = np.full(shape, fill, dtype=np.float32)
    for k, (plane, shift) in enumerate(zip(volume, shifts)):
        at = first + shift
        whole = np.round(at).astype(int)
        if np.array_equal(at, whole):
            out[k, whole[0]:whole[0] + plane.shape[0], whole[1]:whole[1] + plane.shape[1]] = plane
        else:
            canvas = np.full(shape[1:], fill, dtype=np.float32)
            canvas[: plane.shape[0], : plane.shape[1]] = plane
            out[k] = ndi.shift(canvas, at, order=1, mode="constant", cval=fill)
    return out, first
