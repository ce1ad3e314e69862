"""Read a DICOM file or a folder holding one series into a volume.

A CT or MR *series* arrives as a folder of files, one 2-D slice each. :func:`read_series`
sorts the slices along the slice normal (never by file name or *Instance Number*), checks
that they form a regular grid (:mod:`medlab.dicom.geometry`) and returns a :class:`Series`:
a float32 volume with axes ``(z, y, x)`` in Hounsfield units for CT, its spacing, origin and
direction. Geometry that would make a naive reader stack a wrong volume (several series in
one folder, mixed sizes, duplicate or missing slices, gantry tilt) raises a
:class:`~medlab.dicom.errors.DicomError` that says what to do.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import MediaStorageDirectoryStorage

from medlab.dicom.errors import DicomError, DicomWarning, _reason
from medlab.dicom.files import _check_pixel_length, _floats, _int, _not_dicom, _read
from medlab.dicom.geometry import _check_same, _pixel_spacing, _slice_geometry, orientation_label


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
        (``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"oblique"``) and
        ``"NumberOfSlices"``.
    paths
        The files in slice order.
    warnings
        Everything approximate about this series; each was also issued as a
        :class:`DicomWarning`.
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


def _pixels(ds: Dataset, path: Path) -> np.ndarray:
    """The slice's pixels as float32 ``(rows, columns)`` with the modality rescale applied."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DicomError(
            f"{path} has no pixel data (no PixelData element): it is a DICOM object without an "
            "image, such as a structured report or a presentation state. Read the image files."
        )
    if _int(ds, "NumberOfFrames", 1, path) > 1:
        raise DicomError(
            f"{path} is a multi-frame image ({ds.NumberOfFrames} frames in one file); read_series "
            "reads one slice per file. Use pydicom.dcmread(path).pixel_array for it."
        )
    colour = str(ds.get("PhotometricInterpretation", "")).startswith("PALETTE")
    if _int(ds, "SamplesPerPixel", 1, path) != 1 or colour:
        raise DicomError(
            f"{path} is a colour image ({ds.get('PhotometricInterpretation')}); read_series "
            "reads greyscale images. Use pydicom.dcmread(path).pixel_array for it."
        )
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is not None and syntax.is_compressed:
        try:
            decoder = pydicom.pixels.get_decoder(syntax)
        except NotImplementedError:
            raise DicomError(
                f"{path} uses transfer syntax {syntax.name}, which pydicom cannot decode."
            ) from None
        if not decoder.is_available:
            raise DicomError(
                f"{path} is compressed as {syntax.name} and no installed decoder can read it. "
                f"Install one of the plugins pydicom lists ({'; '.join(decoder.missing_dependencies)}) "
                "or decompress the file first (e.g. `gdcmconv --raw in.dcm out.dcm`)."
            )
    _check_pixel_length(ds, path)
    try:
        array = ds.pixel_array
    except Exception as exc:
        raise DicomError(f"{path}: pydicom cannot decode the pixel data ({_reason(exc)}).") from exc
    if array.ndim != 2:
        raise DicomError(f"{path}: expected one 2-D image, got pixel data of shape {array.shape}.")
    return pydicom.pixels.apply_rescale(array, ds).astype(np.float32)


def _scan_folder(folder: Path, notes: list[str]) -> list[tuple[Path, Dataset]]:
    entries = sorted(folder.iterdir())
    if not entries:
        raise DicomError(f"{folder} is empty: put the DICOM files of one series in it.")
    found, skipped = [], []
    for path in (p for p in entries if p.is_file()):
        header = _read(path, header_only=True)
        if header is None:
            skipped.append(path.name)
        elif header.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
            skipped.append(f"{path.name} (a DICOMDIR index)")
        else:
            found.append((path, header))
    if not found:
        subfolders = [p.name for p in entries if p.is_dir()]
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
    "BodyPartExamined StudyDate SOPClassUID Rows Columns SliceThickness ViewPosition"
).split()


def read_series(
    path: str | os.PathLike, *, series_uid: str | None = None, allow_irregular: bool = False
) -> Series:
    """Read a DICOM file or a folder holding one series into a :class:`Series`.

    Parameters
    ----------
    path
        One DICOM file (volume ``(1, y, x)``; z spacing from *Spacing Between Slices* or
        *Slice Thickness*, else 1.0 mm with a warning), or a folder. In a folder only the
        top-level files are read; files that are not DICOM (``README.txt``, ``.DS_Store``)
        are skipped and listed in ``Series.warnings``.
    series_uid
        The *Series Instance UID* to read when the folder holds several series.
    allow_irregular
        Stack slices with uneven spacing or missing slices anyway, using the median
        spacing (with a :class:`DicomWarning`) instead of raising.

    Slices are sorted by their position along the slice normal, and the volume is float32
    ``(z, y, x)`` with *Rescale Slope/Intercept* applied (Hounsfield units for CT). Several
    series, mixed sizes or orientations, duplicate positions, gaps and gantry tilt raise a
    :class:`DicomError`. Sagittal, coronal and oblique series are read with a warning:
    their axes follow the acquisition, and ``Series.direction`` says where they point.
    """
    path = Path(path)
    notes: list[str] = []
    if not path.exists():
        raise DicomError(f"{path} does not exist: check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        chosen = _choose_series(path, _scan_folder(path, notes), series_uid)
        where = f"series in {path}"
    else:
        header = _read(path, header_only=True)
        if header is None:
            raise _not_dicom(path)
        if series_uid is not None and str(header.get("SeriesInstanceUID", "")) != series_uid:
            raise DicomError(
                f"{path} belongs to series {header.get('SeriesInstanceUID')}, not {series_uid}."
            )
        chosen, where = [(path, header)], str(path)
    paths = [p for p, _ in chosen]
    headers = [h for _, h in chosen]
    for file, header in chosen:
        if "Rows" not in header or "Columns" not in header:
            raise DicomError(
                f"{file} describes no image (Rows/Columns missing): it is truncated, or it is a "
                "DICOM object without pixels such as a structured report. Read the image files."
            )
        _int(header, "Rows", 0, file), _int(header, "Columns", 0, file)
    _check_same(
        paths,
        [(h.get("Rows"), h.get("Columns")) for h in headers],
        "image size (Rows, Columns)",
        where,
        lambda a, b: a == b,
    )
    _check_same(
        paths,
        [_floats(h, "PixelSpacing", 2, p) for p, h in zip(paths, headers)],
        "PixelSpacing",
        where,
        lambda a, b: a == b or (a and b and np.allclose(a, b, rtol=1e-4)),
    )
    order, origin, direction, z_spacing = _slice_geometry(
        paths, headers, allow_irregular=allow_irregular, notes=notes, where=where
    )
    paths, headers = [paths[i] for i in order], [headers[i] for i in order]
    y_spacing, x_spacing = _pixel_spacing(headers[0], paths[0], notes)

    volume = np.empty((len(paths), int(headers[0].Rows), int(headers[0].Columns)), dtype=np.float32)
    for k, file in enumerate(paths):
        ds = _read(file, header_only=False)
        if ds is None:
            raise _not_dicom(file)
        volume[k] = _pixels(ds, file)

    first = headers[0]
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
    metadata["NumberOfSlices"] = len(paths)
    if metadata["orientation"] != "axial" and "ImageOrientationPatient" in first:
        notes.append(
            f"{where} is {metadata['orientation']}: the axes (z, y, x) follow the acquisition "
            "(slice normal, column, row), not the patient's axial frame; Series.direction gives "
            "their directions."
        )
    for note in notes:
        warnings.warn(note, DicomWarning, stacklevel=2)
    return Series(
        volume=volume,
        spacing=(float(z_spacing), float(y_spacing), float(x_spacing)),
        origin=tuple(float(v) for v in origin),
        direction=direction,
        metadata=metadata,
        paths=paths,
        warnings=notes,
    )
