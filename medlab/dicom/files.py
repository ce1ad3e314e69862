"""One DICOM file: open it, parse its attribute values, check its pixel data length.

Every helper here names the file in the :class:`~medlab.dicom.errors.DicomError` it raises,
so that a learner knows which of a few hundred slices is damaged.
"""

from __future__ import annotations

import math
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from medlab.dicom.errors import DicomError, _reason


def _read(path: Path, *, header_only: bool) -> Dataset | None:
    """The dataset in ``path``; ``None`` if the file is not DICOM; DicomError if damaged."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except InvalidDicomError:
        return None
    except Exception as exc:  # pydicom raises many types on damaged files
        raise DicomError(
            f"{path} starts like a DICOM file but cannot be parsed ({_reason(exc)}): it seems "
            "truncated or damaged. Copy it again from its source."
        ) from exc


def _not_dicom(path: Path) -> DicomError:
    return DicomError(
        f"{path} is not a DICOM file (no 'DICM' marker after the 128-byte preamble). "
        "Give a DICOM file (.dcm) or the folder of a series."
    )


def _floats(ds: Dataset, keyword: str, count: int, path: Path) -> list[float] | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        raise DicomError(f"{path} has a malformed {keyword} {value!r}: expected {count} numbers.")
    return numbers


def _int(ds: Dataset, keyword: str, default: int, path: Path) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DicomError(
            f"{path} has a malformed {keyword} {value!r}: expected a whole number."
        ) from None


def _check_pixel_length(ds: Dataset, path: Path, *, note: str = "") -> None:
    """Raise if uncompressed pixel data is shorter than Rows x Columns x ... need."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if "PixelData" not in ds or syntax is None or syntax.is_compressed:
        return
    try:
        needed = int(pydicom.pixels.utils.get_expected_length(ds))
    except Exception as exc:
        raise DicomError(
            f"{path}: the image attributes (Rows, Columns, BitsAllocated, ...) are malformed "
            f"({_reason(exc)}).{note}"
        ) from exc
    if len(ds.PixelData) < needed:
        raise DicomError(
            f"{path} is truncated: its pixel data holds {len(ds.PixelData)} bytes, but "
            f"{ds.Rows} x {ds.Columns} pixels of {ds.BitsAllocated} bits need {needed}.{note} "
            "Copy the file again from its source."
        )
