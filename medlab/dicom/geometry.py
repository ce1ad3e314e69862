"""Slice geometry of a DICOM series: sort the slices and check that they form a regular grid.

Every slice says where it lies in the patient: *Image Position (Patient)* is the position of
its first voxel and *Image Orientation (Patient)* holds the directions of its rows and
columns, both in the patient's LPS frame (x towards the patient's Left, y towards Posterior,
z towards the head, Superior; millimetres). The slices are sorted along the slice normal
``cross(row, column)`` (never by file name or *Instance Number*). Geometry that would make a
naive reader stack a wrong volume (mixed orientations, duplicate or missing slices, gantry
tilt) raises a :class:`~medlab.dicom.errors.DicomError` that says what to do; a tilted series
can instead be measured for resampling (:mod:`medlab.dicom.tilt`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medlab.dicom.errors import DicomError
from medlab.dicom.files import _floats
from medlab.dicom.tilt import _drift, _tilt_deg

SLICE_GAP_TOLERANCE = 0.01
"""A step between slices may deviate this fraction from the median step (1 %)."""

TILT_TOLERANCE_DEG = 0.05
"""Largest angle (degrees) between the slice-to-slice step and the slice normal taken as 0."""

ORIENTATION_TOLERANCE_DEG = 1.0
"""A slice normal within this angle (degrees) of a patient axis is axial, coronal or sagittal."""


def orientation_label(normal: Any) -> str:
    """Name the plane of slices with normal ``(x, y, z)`` in patient (LPS) coordinates.

    ``"axial"``, ``"coronal"`` or ``"sagittal"`` if the normal lies within
    :data:`ORIENTATION_TOLERANCE_DEG` of the z, y or x axis, else ``"oblique"``.

    >>> orientation_label([0, 0, 1]), orientation_label([0, -1, 0]), orientation_label([0.6, 0, 0.8])
    ('axial', 'coronal', 'oblique')
    """
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    axis = int(np.argmax(np.abs(n)))
    if abs(n[axis]) >= math.cos(math.radians(ORIENTATION_TOLERANCE_DEG)):
        return ("sagittal", "coronal", "axial")[axis]
    return "oblique"


_PATIENT_LETTERS = {
    "L": (1, 0, 0),
    "R": (-1, 0, 0),
    "P": (0, 1, 0),
    "A": (0, -1, 0),
    "H": (0, 0, 1),
    "F": (0, 0, -1),
}

POSITION_LIMIT_MM = 1e6
"""Largest coordinate (mm) taken as a position in a patient; beyond it the value is damaged."""


def _axes(ds: Dataset, path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column unit vectors (LPS) from ImageOrientationPatient or PatientOrientation."""
    iop = _floats(ds, "ImageOrientationPatient", 6, path)
    if iop is not None:
        return _axes_from_iop(iop, path)
    row, col, source = _axes_from_letters(ds, path)
    notes.append(
        f"{path.name} has no ImagePositionPatient/ImageOrientationPatient (a projection image "
        f"such as a radiograph): the origin is set to (0, 0, 0) and the direction comes from "
        f"{source}; the axes (z, y, x) follow the image, not the patient's axial frame."
    )
    return row, col


def _axes_from_iop(iop: list[float], path: Path) -> tuple[np.ndarray, np.ndarray]:
    row, col = np.array(iop[:3]), np.array(iop[3:])
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(row @ col) > 1e-3
    ):
        raise DicomError(
            f"{path}: ImageOrientationPatient {iop} is not two orthogonal unit vectors, "
            "so the slice geometry is unknown. Fix that element, or copy the file again."
        )
    return row / np.linalg.norm(row), col / np.linalg.norm(col)


def _axes_from_letters(ds: Dataset, path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Axes from *Patient Orientation* (e.g. ``L\\F``), using each value's first, dominant letter.

    An absent or empty value gives axial axes (said in the returned source); a value that
    is not two letters from L, R, A, P, H, F on two different patient axes raises.
    """
    value = ds.get("PatientOrientation")
    values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    letters = [str(v).strip().upper() for v in values if v not in (None, "")]
    if not letters:
        return np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (
            "nowhere (no PatientOrientation either), so it is taken as axial"
        )
    axes = [np.array(_PATIENT_LETTERS[s[0]], float) for s in letters if s[:1] in _PATIENT_LETTERS]
    if len(letters) != 2 or len(axes) != 2 or abs(axes[0] @ axes[1]) > 0:
        raise DicomError(
            f"{path} has PatientOrientation {value!r}: expected the directions of the rows and "
            "of the columns as letters L, R, A, P, H, F along two different patient axes "
            "(e.g. L\\F for a PA chest radiograph). Fix or delete that element with pydicom."
        )
    approximate = " (their dominant letters)" if any(len(s) > 1 for s in letters) else ""
    return axes[0], axes[1], "PatientOrientation " + "\\".join(letters) + approximate


def _pixel_spacing(ds: Dataset, path: Path, notes: list[str]) -> tuple[float, float]:
    """(row spacing, column spacing) = (y, x) in mm."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _floats(ds, keyword, 2, path)
        if values is not None:
            if min(values) <= 0:
                raise DicomError(f"{path} has a non-positive {keyword} {values}.")
            if keyword == "ImagerPixelSpacing":
                notes.append(
                    f"{path.name} has no PixelSpacing: used ImagerPixelSpacing {values} mm, which "
                    "is measured at the detector and overstates sizes in the patient by the "
                    "geometric magnification."
                )
            return values[0], values[1]
    notes.append(f"{path.name} has no PixelSpacing: assumed 1.0 mm per pixel.")
    return 1.0, 1.0


def _check_same(paths: list[Path], values: list[Any], what: str, where: str, same) -> None:
    groups: list[tuple[Any, list[Path]]] = []
    for path, value in zip(paths, values):
        for key, members in groups:
            if same(key, value):
                members.append(path)
                break
        else:
            groups.append((value, [path]))
    if len(groups) > 1:
        listing = "; ".join(f"{key} in {len(m)} file(s), e.g. {m[0].name}" for key, m in groups)
        raise DicomError(
            f"{where}: the slices do not share one {what} ({listing}). They cannot be stacked "
            "into one volume: separate the files, or read them one by one."
        )


def _slice_geometry(paths, headers, *, allow_irregular, notes, where, tilt="refuse"):
    """Sort slices along the normal and check the grid.

    Returns the slice order, the origin (LPS, mm), the ``(3, 3)`` direction, the z spacing
    (mm), the tilt (degrees, see :func:`~medlab.dicom.tilt._tilt_deg`) and the ``(n, 2)``
    in-plane drift ``(y, x)`` in mm of each sorted slice from a straight stack. With
    ``tilt="refuse"`` a tilted series raises; with ``"correct"`` its drift is returned for
    :func:`~medlab.dicom.tilt._straighten`.
    """
    row, col = _axes(headers[0], paths[0], notes)
    normal = np.cross(row, col)
    direction = np.stack([row, col, normal]) + 0.0  # + 0.0 turns -0.0 into 0.0
    if len(paths) == 1:
        origin, z_spacing = _single_slice(headers[0], paths[0], notes)
        return [0], origin, direction, z_spacing, 0.0, np.zeros((1, 2))
    ipp = _positions(paths, headers, where, refuse_tilt=tilt == "refuse")
    along = ipp @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    ipp, along = ipp[order], along[order]
    ordered = [paths[i] for i in order]
    _check_duplicates(along, ordered, where)
    drift = _drift(ipp, along, direction)
    angle = _tilt_deg(drift, along)
    if tilt == "refuse":
        _check_tilt(angle, where)
    elif angle <= TILT_TOLERANCE_DEG:
        _check_tilt_attribute([headers[i] for i in order], ordered, normal, where)
    median = _check_spacing(along, ordered, where, allow_irregular=allow_irregular, notes=notes)
    return order, list(ipp[0]), direction, round(median, 6), angle, drift


def _single_slice(ds: Dataset, path: Path, notes: list[str]) -> tuple[list[float], float]:
    """Origin (LPS, mm) and z spacing (mm) of a series of one slice."""
    origin = _position(ds, path)
    if origin is None and "ImageOrientationPatient" in ds:
        notes.append(f"{path.name} has no ImagePositionPatient: the origin is set to (0, 0, 0).")
    origin = origin or [0.0, 0.0, 0.0]
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _floats(ds, keyword, 1, path)
        if value is not None and value[0] > 0:
            return origin, value[0]
    notes.append(f"{path.name}: a single slice without SliceThickness: z spacing set to 1.0 mm.")
    return origin, 1.0


def _position(ds: Dataset, path: Path) -> list[float] | None:
    ipp = _floats(ds, "ImagePositionPatient", 3, path)
    if ipp is not None and max(abs(v) for v in ipp) > POSITION_LIMIT_MM:
        raise DicomError(
            f"{path}: ImagePositionPatient {ipp} lies more than {POSITION_LIMIT_MM:g} mm from the "
            "origin, which is no position in a patient. Fix that element, or copy the file again."
        )
    return ipp


def _positions(paths: list[Path], headers: list[Dataset], where: str, *, refuse_tilt: bool) -> np.ndarray:
    """``(n, 3)`` slice positions (LPS, mm), after checking the orientations are one and, with
    ``refuse_tilt``, that no *Gantry/Detector Tilt* is recorded."""
    positions, iops = [], []
    for path, ds in zip(paths, headers):
        ipp, iop = _position(ds, path), _floats(ds, "ImageOrientationPatient", 6, path)
        if ipp is None or iop is None:
            raise DicomError(
                f"{path} has no ImagePositionPatient/ImageOrientationPatient, so its place in "
                f"the volume of {where} is unknown; read it on its own."
            )
        positions.append(ipp)
        iops.append(iop)
    _check_same(
        paths, iops, "ImageOrientationPatient", where, lambda a, b: np.allclose(a, b, atol=1e-4)
    )
    for path, ds in zip(paths, headers):
        tilt = _gantry_tilt(ds, path)
        if refuse_tilt and abs(tilt) > 1e-3:
            raise DicomError(
                f"{path}: GantryDetectorTilt is {tilt:g} degrees. Stacking tilted slices on a "
                "straight grid would shear the anatomy. Pass tilt='correct' to read_series to "
                "resample the slices onto a straight grid (as dcm2niix and dicom2nifti do)."
            )
    return np.array(positions)


def _gantry_tilt(ds: Dataset, path: Path) -> float:
    """*Gantry/Detector Tilt* (degrees) of ``ds``; 0.0 if absent."""
    tilt = _floats(ds, "GantryDetectorTilt", 1, path)
    return 0.0 if tilt is None else tilt[0]


def _check_duplicates(along: np.ndarray, ordered: list[Path], where: str) -> None:
    duplicates = np.flatnonzero(np.diff(along) < 1e-3)
    if duplicates.size:
        k = duplicates[0]
        raise DicomError(
            f"{where}: {ordered[k].name} and {ordered[k + 1].name} lie at the same slice position "
            f"({along[k]:.3f} mm along the slice normal). The folder seems to hold a slice twice "
            "or two acquisitions of one series (check EchoNumbers, AcquisitionNumber, "
            "TemporalPositionIdentifier); keep one file of each pair."
        )


def _check_tilt(angle: float, where: str) -> None:
    """Raise if the slice positions step at more than :data:`TILT_TOLERANCE_DEG` to the normal."""
    if angle > TILT_TOLERANCE_DEG:
        raise DicomError(
            f"{where}: the slice positions step at up to {angle:.2f} degrees to the slice normal "
            "(gantry or detector tilt, or slices shifted in-plane). Stacking them on a straight "
            "grid would shear the anatomy. Pass tilt='correct' to read_series to resample the "
            "slices onto a straight grid (as dcm2niix and dicom2nifti do)."
        )


def _check_tilt_attribute(headers: list[Dataset], paths: list[Path], normal: np.ndarray, where: str) -> None:
    """Raise if *Gantry/Detector Tilt* records a tilt that the geometry does not show at all.

    The slices of such a series step along their normal, so there is nothing to resample; a
    tilt recorded in the slice orientation (an oblique normal) is consistent with that. If
    the normal is also axial, coronal or sagittal, the positions and orientation contradict
    the recorded tilt, and no straight grid can be trusted.
    """
    tilts = [_gantry_tilt(h, p) for h, p in zip(headers, paths)]
    k = int(np.argmax(np.abs(tilts)))
    if abs(tilts[k]) > 1e-3 and orientation_label(normal) != "oblique":
        raise DicomError(
            f"{paths[k]}: GantryDetectorTilt is {tilts[k]:g} degrees, but neither the slice "
            f"positions nor the {orientation_label(normal)} slice orientation of {where} show a "
            "tilt, so where the slices lie is uncertain. Check the series with the scanner's own "
            "viewer, or convert it with dcm2niix, which corrects such series from the recorded tilt."
        )


def _check_spacing(along, ordered, where, *, allow_irregular, notes) -> float:
    """The median step (mm) between slices; raise (or note) where a step deviates from it."""
    steps = np.diff(along)
    median = float(np.median(steps))
    bad = np.flatnonzero(np.abs(steps - median) > SLICE_GAP_TOLERANCE * median)
    if not bad.size:
        return median
    problems = [_describe_step(along, ordered, k, median) for k in bad[:3]]
    more = f" (and {bad.size - 3} more)" if bad.size > 3 else ""
    message = f"{where}: irregular slice spacing: " + "; ".join(problems) + more
    if not allow_irregular:
        raise DicomError(
            message + ". Find the missing files, or pass allow_irregular=True to stack the "
            "slices anyway with the median spacing (distances along z become approximate)."
        )
    notes.append(
        message + f"; the volume uses the median spacing {median:g} mm, so distances along z are "
        "approximate."
    )
    return median


def _describe_step(along: np.ndarray, ordered: list[Path], k: int, median: float) -> str:
    step = along[k + 1] - along[k]
    ratio = step / median
    text = (
        f"slice positions jump from {along[k]:g} to {along[k + 1]:g} mm "
        f"({ordered[k].name} to {ordered[k + 1].name})"
    )
    if round(ratio) >= 2 and abs(ratio - round(ratio)) < 0.05:
        missing = round(ratio) - 1
        return text + f"; {missing} slice{'s seem' if missing > 1 else ' seems'} missing"
    return text + f"; the step is {step:g} mm where the median step is {median:g} mm"
