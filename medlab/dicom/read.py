"""Read a DICOM file or a folder holding one series into a volume.

A CT or MR *series* arrives as a folder of files, one 2-D slice each. :func:`read_series`
sorts the slices along the slice normal (never by file name or *Instance Number*), checks
that they form a regular grid (:mod:`medlab.dicom.geometry`) and returns a :class:`Series`:
a float32 volume with axes ``(z, y, x)`` in Hounsfield units for CT, its spacing, origin and
direction. Geometry that would make a naive reader stack a wrong volume (several series in
one folder, mixed sizes, duplicate or missing slices, gantry tilt) raises a
:class:`~medlab.dicom.errors.DicomError` that says what to do; ``tilt="correct"`` resamples a
tilted series onto a straight grid instead (:mod:`medlab.dicom.tilt`).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import MediaStorageDirectoryStorage

from medlab.dicom.errors import DicomError, DicomWarning, _reason
from medlab.dicom.files import _check_image_header, _floats, _kind, _not_dicom, _pixels, _read
from medlab.dicom.geometry import (
    TILT_TOLERANCE_DEG,
    _check_same,
    _pixel_spacing,
    _slice_geometry,
    orientation_label,
)
from medlab.dicom.tilt import _check_mode, _pixel_shifts, _straighten


@dataclass(repr=False)
class Series:
    """One DICOM series as a volume.

    Attributes
    ----------
    volume
        float32 array ``(z, y, x)`` with rescale slope and intercept applied (HU for CT).
        ``z`` runs along the slice normal, ``y`` down the image rows, ``x`` along a row.
    spacing
        ``(z, y, x)`` voxel spacing in mm.
    origin
        Patient (LPS) position in mm of voxel ``[0, 0, 0]`` (*Image Position (Patient)*).
    direction
        ``(3, 3)`` array whose rows are the unit vectors of the ``x`` axis (row cosine),
        the ``y`` axis (column cosine) and the ``z`` axis (slice normal), in LPS.
        A voxel ``(k, j, i)`` lies at ``origin + i*sx*d[0] + j*sy*d[1] + k*sz*d[2]``.
    metadata
        Plain values of the first slice (Modality, PatientID, ... ), ``"orientation"``
        (``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"oblique"``), ``"NumberOfSlices"``
        and ``"tilt_deg"``: the largest angle (degrees) between the slice positions' steps
        and the slice normal, measured from *Image Position (Patient)* (0 for a straight
        series or one slice; what ``read_series(..., tilt="correct")`` resampled away).
    paths
        The files in slice order.
    warnings
        Everything approximate about this series; each was also issued as a
        :class:`DicomWarning`.

    Taught in lab 01, section 2 (A series into a volume, in Hounsfield units).
    """

    volume: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    metadata: dict[str, Any]
    paths: list[Path]
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:g}" for s in self.spacing)
        return (
            f"Series({self.metadata.get('Modality', '?')}, volume {tuple(self.volume.shape)} "
            f"{self.volume.dtype}, spacing ({spacing}) mm, {self.metadata.get('orientation')}, "
            f"{len(self.warnings)} warning(s))"
        )


def _plain(value: Any) -> Any:
    """A pydicom value as plain Python (str, int, float or list of them)."""
    if isinstance(value, (MultiValue, list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):  # DSfloat
        return float(value)
    if isinstance(value, int):  # IS, US
        return int(value)
    return str(value)


def _scan_folder(
    folder: Path, notes: list[str], warned: dict[str, list[Path]]
) -> list[tuple[Path, Dataset]]:
    """(path, header) of every DICOM image file at the top level of ``folder``."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DicomError(
            f"{folder} cannot be listed ({_reason(exc)}): check its permissions."
        ) from exc
    if not entries:
        raise DicomError(f"{folder} is empty: put the DICOM files of one series in it.")
    found, skipped, subfolders = [], [], []
    for path in entries:
        kind = _kind(path)
        if kind == "a folder":
            subfolders.append(path.name)
        elif kind is not None:
            skipped.append(f"{path.name} ({kind}, not opened)")
        elif (header := _header(path, warned)) is None:
            skipped.append(path.name)
        elif header.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
            skipped.append(f"{path.name} (a DICOMDIR index)")
        else:
            found.append((path, header))
    if not found:
        message = f"{folder} holds no DICOM files"
        if skipped:
            message += f" (not DICOM: {', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''})"
        if subfolders:
            shown = ", ".join(subfolders[:5])
            message += f"; read_series looks at the top level only: try a subfolder ({shown})"
        raise DicomError(message + ".")
    if skipped:
        names = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        notes.append(f"skipped {len(skipped)} file(s) in {folder} that are not DICOM images: {names}")
    return found


def _choose_series(folder, found, series_uid):
    series: dict[str, list[tuple[Path, Dataset]]] = {}
    for path, header in found:
        series.setdefault(str(header.get("SeriesInstanceUID", "")), []).append((path, header))
    listing = "\n".join(
        f"  {uid or '(no SeriesInstanceUID)'}: {items[0][1].get('Modality', '?')} "
        f"{str(items[0][1].get('SeriesDescription', '')) or '(no description)'!r}, {len(items)} file(s)"
        for uid, items in series.items()
    )
    if series_uid is not None:
        if series_uid not in series:
            raise DicomError(f"{folder} holds no series {series_uid!r}; it holds:\n{listing}")
        return series[series_uid]
    if len(series) > 1:
        raise DicomError(
            f"{folder} holds {len(series)} series; pass series_uid= to choose one:\n{listing}"
        )
    return next(iter(series.values()))


_METADATA = (
    "Modality PatientID StudyInstanceUID SeriesInstanceUID SeriesDescription Manufacturer "
    "RescaleSlope RescaleIntercept RescaleType WindowCenter WindowWidth PhotometricInterpretation "
    "BodyPartExamined StudyDate SOPClassUID Rows Columns SliceThickness SpacingBetweenSlices "
    "GantryDetectorTilt ViewPosition"
).split()
_PARSED = (
    "TransferSyntaxUID MediaStorageSOPClassUID BitsAllocated BitsStored HighBit "
    "PixelRepresentation SamplesPerPixel PlanarConfiguration NumberOfFrames ModalityLUTSequence "
    "PixelSpacing ImagerPixelSpacing ImagePositionPatient ImageOrientationPatient "
    "PatientOrientation"
).split() + _METADATA
"""Every element the reader uses, parsed while the file is read (see files._read)."""

_DEFER_SIZE = 4096
"""Headers are read leaving values longer than this (bytes), the pixel data above all, unread."""

MAX_VOLUME_BYTES = 8 * 2**30
"""Largest volume (bytes of float32) :func:`read_series` allocates: 8 GiB, e.g. 2048 slices of
1024 x 1024. Compressed pixel data cannot be checked against the file's length, so this
limit is what stops a damaged header from claiming an image too large for memory."""


def read_series(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    allow_irregular: bool = False,
    tilt: str = "refuse",
) -> Series:
    """Read a DICOM file or a folder holding one series into a :class:`Series`.

    Parameters
    ----------
    path
        One DICOM file (volume ``(1, y, x)``; z spacing from *Spacing Between Slices* or
        *Slice Thickness*, else 1.0 mm with a warning), or a folder. In a folder only the
        top-level files are read; files that are not DICOM (``README.txt``, ``.DS_Store``)
        and anything that is not a regular file (a pipe, a device) are skipped and listed
        in ``Series.warnings``.
    series_uid
        The *Series Instance UID* to read when the folder holds several series.
    allow_irregular
        Stack slices with uneven spacing or missing slices anyway, using the median
        spacing (with a :class:`DicomWarning`) instead of raising.
    tilt
        What to do with a series whose slice positions step at an angle to the slice normal
        (gantry tilt, see :mod:`medlab.dicom.tilt`): ``"refuse"`` (the default) raises a
        :class:`DicomError`, as does a *Gantry/Detector Tilt* attribute other than 0.
        ``"correct"`` shifts each slice within its plane back onto a straight grid along
        the normal, as dcm2niix does, with linear interpolation (exact for whole-pixel
        shifts): the volume grows from ``(z, y, x)`` to ``(z, y + dy, x + dx)``, where
        ``dy, dx`` are the spread of the shifts in pixels, the new voxels get the darkest
        value of the series (HU), the z spacing is the distance between slices along the
        normal (mm; the table step times cos(tilt)), ``Series.direction`` keeps the slices'
        rows and columns (so a tilted axial series comes out oblique), ``Series.origin`` is
        where voxel ``[0, 0, 0]`` of the grown grid lies, and a :class:`DicomWarning` says
        how far the slices were moved. The geometry comes from *Image Position* and
        *Orientation (Patient)*, which DICOM defines for computation; *Gantry/Detector
        Tilt* is nominal, and a tilt it records that the positions and orientation do not
        show at all raises. A straight series reads the same with either value.

    Slices are sorted by their position along the slice normal, and the volume is float32
    ``(z, y, x)`` with *Rescale Slope/Intercept* applied (Hounsfield units for CT). Several
    series, mixed sizes or orientations, duplicate positions, gaps and (unless
    ``tilt="correct"``) gantry tilt raise a :class:`DicomError`. Sagittal, coronal and
    oblique series are read with a warning: their axes follow the acquisition, and
    ``Series.direction`` says where they point.

    Damaged files raise a :class:`DicomError` naming the file: a header whose image size
    does not match the pixel data (checked, with :data:`MAX_VOLUME_BYTES`, before any
    memory is allocated for the volume), a rescale that is incomplete (an intercept without
    a slope, which DICOM forbids) or not finite, an orientation that is not two orthogonal
    axes, values pydicom cannot parse or decode. Warnings pydicom issues while reading are re-issued as
    :class:`DicomWarning` and listed in ``Series.warnings``.

    >>> from pydicom.data import get_testdata_file
    >>> series = read_series(get_testdata_file("CT_small.dcm"))
    >>> series.volume.shape, series.metadata["Modality"], series.spacing[1:]
    ((1, 128, 128), 'CT', (0.661468, 0.661468))

    Taught in lab 01, section 2 (A series into a volume, in Hounsfield units).
    """
    path = Path(path)
    tilt = _check_mode(tilt)
    notes: list[str] = []
    warned: dict[str, list[Path]] = {}
    chosen, where = _select(path, series_uid, notes, warned)
    series = _series(
        chosen, where, allow_irregular=allow_irregular, tilt=tilt, notes=notes, warned=warned
    )
    for note in series.warnings:
        warnings.warn(note, DicomWarning, stacklevel=2)
    return series


def _series(
    chosen: list[tuple[Path, Dataset]],
    where: str,
    *,
    allow_irregular: bool,
    tilt: str = "refuse",
    notes: list[str],
    warned: dict[str, list[Path]],
) -> Series:
    """The :class:`Series` of the (path, header) pairs ``chosen``: headers checked, slices
    sorted along the normal and stacked (and, with ``tilt="correct"``, straightened).

    Everything approximate is appended to ``notes``, which becomes ``Series.warnings``;
    ``warned`` collects pydicom's warnings, listed last.
    """
    paths, headers = [p for p, _ in chosen], [h for _, h in chosen]
    shape = _check_headers(paths, headers, where)
    order, origin, direction, z_spacing, angle, drift = _slice_geometry(
        paths, headers, allow_irregular=allow_irregular, notes=notes, where=where, tilt=tilt
    )
    paths, headers = [paths[i] for i in order], [headers[i] for i in order]
    y_spacing, x_spacing = _pixel_spacing(headers[0], paths[0], notes)
    volume = _stack(paths, shape, where, warned)
    if tilt == "correct" and angle > TILT_TOLERANCE_DEG:
        volume, origin = _corrected(
            volume, drift, origin, direction, (y_spacing, x_spacing), angle, z_spacing, where, notes
        )
    metadata = _metadata(headers[0], direction, len(paths))
    metadata["tilt_deg"] = round(float(angle), 6)
    notes += _orientation_notes(metadata["orientation"], headers[0], where)
    notes += _pydicom_notes(warned)
    return Series(
        volume=volume,
        spacing=(float(z_spacing), float(y_spacing), float(x_spacing)),
        origin=tuple(float(v) for v in origin),
        direction=direction,
        metadata=metadata,
        paths=paths,
        warnings=notes,
    )


def _corrected(volume, drift, origin, direction, pixel_spacing, angle, z_spacing, where, notes):
    """``volume`` straightened by its slices' in-plane ``drift`` (mm), and the origin (LPS, mm)
    of its grown grid; a note on ``notes`` says what was done."""
    shifts = _pixel_shifts(drift, pixel_spacing)
    straight, first = _straighten(volume, shifts, max_bytes=MAX_VOLUME_BYTES, where=where)
    moved = -first * np.asarray(pixel_spacing)  # (y, x) mm from the first slice's pixel [0, 0]
    origin = np.asarray(origin) + moved[0] * direction[1] + moved[1] * direction[0]
    largest = float(np.max(np.linalg.norm(drift, axis=1)))
    step = z_spacing / math.cos(math.radians(angle))
    notes.append(
        f"{where}: corrected a gantry tilt of {angle:.2f} degrees: each slice was shifted within "
        f"its plane, by up to {largest:.1f} mm, onto a straight grid along the slice normal "
        f"(linear interpolation); z spacing {z_spacing:g} mm (the {step:.4g} mm step between the "
        f"slice positions times cos {angle:.2f} degrees); each slice grew from {volume.shape[1]} x "
        f"{volume.shape[2]} to {straight.shape[1]} x {straight.shape[2]} pixels, the new ones set "
        f"to the darkest value, {float(volume.min()):g}."
    )
    return straight, [float(v) for v in origin]


def _orientation_notes(orientation: str, first: Dataset, where: str) -> list[str]:
    """A note that the axes follow the acquisition when a series with a known orientation
    (``first`` slice's *Image Orientation (Patient)*) is not axial; else none."""
    if orientation != "axial" and first.get("ImageOrientationPatient"):
        return [
            f"{where} is {orientation}: the axes (z, y, x) follow the acquisition "
            "(slice normal, column, row), not the patient's axial frame; Series.direction gives "
            "their directions."
        ]
    return []


def _select(path, series_uid, notes, warned) -> tuple[list[tuple[Path, Dataset]], str]:
    """The (path, header) pairs of the series to read, and how to name it in messages."""
    if not path.exists():
        raise DicomError(f"{path} does not exist: check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        found = _scan_folder(path, notes, warned)
        return _choose_series(path, found, series_uid), f"series in {path}"
    header = _header(path, warned)
    if header is None:
        raise _not_dicom(path)
    if series_uid is not None and str(header.get("SeriesInstanceUID", "")) != series_uid:
        raise DicomError(
            f"{path} belongs to series {header.get('SeriesInstanceUID')}, not {series_uid}."
        )
    return [(path, header)], str(path)


def _header(path: Path, warned: dict[str, list[Path]]) -> Dataset | None:
    """The header of ``path`` with its pixel data left unread; ``None`` if it is not DICOM."""
    return _read(path, header_only=False, defer_size=_DEFER_SIZE, parse=_PARSED, warned=warned)


def _check_headers(paths: list[Path], headers: list[Dataset], where: str) -> tuple[int, int, int]:
    """Check every header describes a readable image of one size; return the volume shape."""
    sizes = [_check_image_header(h, p) for p, h in zip(paths, headers)]
    _check_same(paths, sizes, "image size (Rows, Columns)", where, lambda a, b: a == b)
    _check_same(
        paths,
        [_floats(h, "PixelSpacing", 2, p) for p, h in zip(paths, headers)],
        "PixelSpacing",
        where,
        lambda a, b: a == b or (a and b and np.allclose(a, b, rtol=1e-4)),
    )
    shape = (len(paths), *sizes[0])
    needed = math.prod(shape) * np.dtype(np.float32).itemsize
    if needed > MAX_VOLUME_BYTES:
        raise DicomError(
            f"{where}: {shape[0]} slice(s) of {shape[1]} x {shape[2]} pixels need {needed / 2**30:.1f} "
            f"GiB as float32, more than read_series allocates ({MAX_VOLUME_BYTES / 2**30:g} GiB). "
            "Read fewer files at a time, or raise medlab.dicom.read.MAX_VOLUME_BYTES if the "
            "machine has the memory."
        )
    return shape


def _stack(paths: list[Path], shape: tuple[int, int, int], where: str, warned) -> np.ndarray:
    """The slices of ``paths`` as one float32 volume of ``shape`` ``(z, y, x)``."""
    try:
        volume = np.empty(shape, dtype=np.float32)
    except MemoryError:
        raise DicomError(
            f"{where}: not enough memory for a float32 volume of shape {shape} "
            f"({math.prod(shape) * 4 / 2**30:.1f} GiB). Read fewer files at a time."
        ) from None
    for k, file in enumerate(paths):
        ds = _read(file, header_only=False, parse=_PARSED, warned=warned)
        if ds is None:
            raise _not_dicom(file)
        volume[k] = _pixels(ds, file, warned=warned)
    return volume


def _metadata(first: Dataset, direction: np.ndarray, count: int) -> dict[str, Any]:
    metadata = {kw: _plain(first.get(kw)) for kw in _METADATA if first.get(kw) not in (None, "")}
    for keyword in (
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SeriesDescription",
        "Manufacturer",
    ):
        metadata.setdefault(keyword, "")
    metadata.setdefault("RescaleSlope", 1.0)
    metadata.setdefault("RescaleIntercept", 0.0)
    metadata["orientation"] = orientation_label(direction[2])
    metadata["NumberOfSlices"] = count
    return metadata


def _pydicom_notes(warned: dict[str, list[Path]]) -> list[str]:
    notes = []
    for message, files in warned.items():
        names = sorted({f.name for f in files})
        shown = names[0] if len(names) == 1 else f"{len(names)} files, e.g. {names[0]}"
        notes.append(f"pydicom warned while reading {shown}: {message}")
    return notes
