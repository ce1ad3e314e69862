"""NIfTI in and out: volumes ``(z, y, x)`` with their geometry, through nibabel.

MedLab keeps volumes as ``(z, y, x)`` arrays with spacing ``(z, y, x)`` in mm, an origin and
a direction in DICOM's patient frame, LPS (x to the patient's Left, y to Posterior, z to
Superior). NIfTI differs on both counts:

* its voxel axes are ``(i, j, k)`` with ``i`` fastest in memory, i.e. ``(x, y, z)``: the
  array is transposed on the way in and out;
* its affine maps ``(i, j, k)`` to world coordinates in RAS (x to the Right, y to
  Anterior): ``RAS = diag(-1, -1, 1) · LPS``.

So voxel ``volume[k, j, i]`` lies at ``affine @ (i, j, k, 1)`` in RAS millimetres, and
nibabel, MONAI, ITK-SNAP and 3D Slicer all place it where the DICOM files did. MONAI's
``LoadImage(image_only=True)`` returns a NIfTI file's array as ``(x, y, z)``, without a
channel axis (``EnsureChannelFirst`` adds one): the transpose of MedLab's ``(z, y, x)``,
with the same RAS affine in ``.affine``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from medlab.errors import reason


LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""``RAS = LPS_TO_RAS @ LPS`` for affines and points; the matrix is its own inverse."""


class NiftiError(ValueError):
    """A NIfTI file or argument cannot be used; the message names it and the problem."""


def _triple(values: Any, name: str, axes: str = "(z, y, x)") -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        triple = ()
    if len(triple) != 3 or not all(np.isfinite(triple)):
        raise NiftiError(f"{name} must be three numbers {axes}; got {values!r}.")
    return triple  # type: ignore[return-value]


def affine_from_geometry(
    *,
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: Any = None,
) -> np.ndarray:
    """The 4×4 NIfTI (RAS) affine of a ``(z, y, x)`` volume with MedLab geometry.

    ``spacing`` is ``(z, y, x)`` in mm; ``origin`` the LPS position (mm) of voxel
    ``[0, 0, 0]``; ``direction`` the ``(3, 3)`` array whose rows are the LPS unit vectors of
    the x (row), y (column) and z (slice) axes, as in :class:`medlab.dicom.Series`
    (identity if ``None``). The affine maps NIfTI voxel ``(i, j, k) = (x, y, z)`` to RAS mm.

    >>> affine_from_geometry(spacing=(2.0, 0.5, 0.5), origin=(10.0, 20.0, 30.0))
    array([[ -0.5,   0. ,   0. , -10. ],
           [  0. ,  -0.5,   0. , -20. ],
           [  0. ,   0. ,   2. ,  30. ],
           [  0. ,   0. ,   0. ,   1. ]])
    """
    sz, sy, sx = _triple(spacing, "spacing")
    if min(sz, sy, sx) <= 0:
        raise NiftiError(f"spacing must be positive (mm); got {(sz, sy, sx)}.")
    axes = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    if axes.shape != (3, 3) or not np.allclose(axes @ axes.T, np.eye(3), atol=1e-4):
        raise NiftiError(
            "direction must be a (3, 3) array of orthonormal rows (row, column and slice "
            f"directions); got {np.asarray(direction).tolist()!r}."
        )
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = axes[0] * sx, axes[1] * sy, axes[2] * sz
    lps[:3, 3] = _triple(origin, "origin", "(x, y, z) in LPS mm")
    return LPS_TO_RAS @ lps


def save_nifti(
    volume: Any,
    path: str | os.PathLike,
    *,
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: Any = None,
) -> Path:
    """Write a ``(z, y, x)`` volume as NIfTI-1 (``.nii`` or ``.nii.gz``) and return the path.

    The array is stored transposed to NIfTI's ``(x, y, z)`` with the RAS affine of
    :func:`affine_from_geometry` as both qform and sform (code 1, scanner), units mm.
    Floating-point volumes are stored as float32, booleans as uint8, integer types as they are.

    Taught in lab 01, section 10 (A MONAI pipeline, step by step).
    """
    data = np.asarray(volume)
    if data.ndim != 3 or data.size == 0:
        raise NiftiError(f"volume must be a non-empty 3-D array (z, y, x); got shape {data.shape}.")
    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise NiftiError(f"{path}: a NIfTI file name ends with .nii or .nii.gz.")
    if data.dtype == bool:
        data = data.astype(np.uint8)
    elif not np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32)
    affine = affine_from_geometry(spacing=spacing, origin=origin, direction=direction)
    image = nib.Nifti1Image(np.ascontiguousarray(data.transpose(2, 1, 0)), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)
    return path


def load_nifti(
    path: str | os.PathLike, *, channel_first: bool = False
) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """Read a NIfTI file as ``(volume, spacing, affine)``.

    ``volume`` is float32 ``(z, y, x)`` (NIfTI's ``(x, y, z)`` transposed; a 2-D image
    becomes ``(1, y, x)``, a trailing axis of length 1 is dropped); ``spacing`` is
    ``(z, y, x)`` in mm from the header's voxel sizes; ``affine`` is nibabel's 4×4 RAS
    affine of ``(i, j, k) = (x, y, z)``, unchanged.

    With ``channel_first=True`` the volume is ``(C, z, y, x)``: a 4-D file ``(x, y, z, c)``
    holding one volume per channel (e.g. the MR contrasts of a Decathlon brain tumour case)
    gives ``C = c``, and any other file ``C = 1``.
    """
    path = Path(path)
    if not path.is_file():
        raise NiftiError(
            f"{path} does not exist{' (it is a folder)' if path.is_dir() else ''}: check the path."
        )
    try:
        image = nib.load(path)
        _check_header(image, path)
        data = np.asarray(image.dataobj, dtype=np.float32)
        zooms = image.header.get_zooms()
    except NiftiError:
        raise
    except Exception as exc:  # nibabel, gzip and numpy raise many types on bad files
        raise NiftiError(
            f"{path} is not a readable NIfTI file ({reason(exc)}). It may be "
            "truncated or another format: write it again or copy it again from its source."
        ) from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data, zooms = data[..., 0], zooms[:-1]
    if data.ndim == 2:
        data, zooms = data[..., np.newaxis], (*zooms, 1.0)
    if data.ndim == 3:
        volume = np.ascontiguousarray(data.transpose(2, 1, 0))
        if channel_first:
            volume = volume[np.newaxis]
    elif data.ndim == 4 and channel_first:
        volume = np.ascontiguousarray(data.transpose(3, 2, 1, 0))
    else:
        raise NiftiError(
            f"{path} holds a {data.ndim}-D image of shape {data.shape}; load_nifti reads 3-D volumes"
            + (", and 4-D ones (x, y, z, channel) with channel_first=True." if data.ndim == 4 else ".")
        )
    spacing = (float(zooms[2]), float(zooms[1]), float(zooms[0]))
    if not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise NiftiError(
            f"{path} has voxel sizes (pixdim) {spacing} (z, y, x): they must be positive finite mm; "
            "the header is damaged, so the geometry of this file cannot be trusted"
        )
    affine = np.asarray(image.affine, dtype=float)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise NiftiError(
            f"{path} has an affine that is not finite or maps voxels onto a plane ({affine[:3].tolist()}); "
            "the header is damaged, so the position of its voxels cannot be trusted"
        )
    return volume, spacing, affine


MAX_VOXELS = 2**31
"""The most voxels :func:`load_nifti` reads from one file (8 GiB as float32)."""

_MAX_GZIP_RATIO = 1100
"""Deflate compresses at most about 1032:1; a header promising more data than that is lying."""


def _check_header(image: Any, path: Path) -> None:
    """Refuse an empty shape, or one whose data cannot be in the file, before reading any voxels."""
    shape = tuple(int(n) for n in image.header.get_data_shape())
    if not shape or min(shape) < 1:
        raise NiftiError(f"{path} has an empty image of shape {shape} (x, y, z, ...): there are no voxels to read.")
    voxels = int(np.prod(shape, dtype=np.int64))
    needed = voxels * np.dtype(image.header.get_data_dtype()).itemsize
    size = path.stat().st_size
    if voxels > MAX_VOXELS or needed > size * (_MAX_GZIP_RATIO if path.name.endswith(".gz") else 1):
        raise NiftiError(
            f"{path}: its header promises an image of shape {shape} ({needed:,} bytes), which a "
            f"{size:,}-byte file cannot hold (or which exceeds {MAX_VOXELS:,} voxels); the file is "
            "truncated or its header is damaged."
        )
