"""One DICOM file: open it, parse its attribute values, check and decode its pixel data.

Every helper here names the file in the :class:`~medlab.dicom.errors.DicomError` it raises,
so that a learner knows which of a few hundred slices is damaged. pydicom parses most
values only when they are first read, so :func:`_read` parses the values a caller names
while the file is still at hand; a damaged value then fails there, naming the file and the
element, instead of deep inside a later step. Only regular files are opened (a pipe or a
device could block forever), and a header is checked against the length of the pixel data
before anything is decoded: Rows x Columns x SamplesPerPixel x NumberOfFrames x
BitsAllocated / 8 bytes, plus at most the one padding byte DICOM allows.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from medlab.dicom.errors import DicomError, _reason

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_GREYSCALE = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = (
    "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR", "HSV", "ARGB", "CMYK"
)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _kind(path: Path) -> str | None:
    """``None`` for a regular file (or a link to one), else what ``path`` is, in words."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "unreadable"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _open_without_blocking(name: str, flags: int) -> int:
    return os.open(name, flags | getattr(os, "O_NONBLOCK", 0))


@contextmanager
def _pydicom_warnings(path: Path, warned: dict[str, list[Path]] | None) -> Iterator[None]:
    """Collect pydicom's warnings about ``path`` into ``warned`` (message -> files).

    The caller issues them as :class:`~medlab.dicom.errors.DicomWarning`; with ``warned``
    ``None`` they pass through unchanged.
    """
    if warned is None:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for record in caught:
        if issubclass(record.category, UserWarning):
            lines = str(record.message).strip().splitlines()
            warned.setdefault(lines[0][:300] if lines else record.category.__name__, []).append(path)
        else:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)


def _read(
    path: Path,
    *,
    header_only: bool,
    defer_size: int | None = None,
    parse: Iterable[str] = (),
    warned: dict[str, list[Path]] | None = None,
) -> Dataset | None:
    """The dataset in ``path``; ``None`` if the file is not DICOM; DicomError if damaged.

    ``header_only`` stops before the pixel data; ``defer_size`` (bytes) leaves values longer
    than that unread but keeps their elements, so that their lengths can be checked.
    The values of the keywords in ``parse`` (file meta keywords included) are parsed now.
    pydicom's warnings go into ``warned`` (see :func:`_pydicom_warnings`) if it is given.
    Only regular files are opened, never waiting on a pipe or a device.
    """
    kind = _kind(path)
    if kind not in (None, "unreadable"):  # open() below says why an unreadable one fails
        raise DicomError(
            f"{path} is {kind}, not a regular file, so it was not read (a pipe or device could "
            "block forever). Give a DICOM file or the folder of a series."
        )
    try:
        fp = open(path, "rb", opener=_open_without_blocking)
    except OSError as exc:
        raise DicomError(
            f"{path} cannot be opened ({_reason(exc)}): check that it exists and that you may "
            "read it."
        ) from exc
    with fp, _pydicom_warnings(path, warned):
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=header_only, defer_size=defer_size)
        except InvalidDicomError:
            return None
        except Exception as exc:  # pydicom raises many types on damaged files
            raise DicomError(
                f"{path} starts like a DICOM file but cannot be parsed ({_reason(exc)}): it seems "
                "truncated or damaged. Copy it again from its source."
            ) from exc
        for keyword in parse:
            _parse(ds, keyword, path)
    return ds


def _parse(ds: Dataset, keyword: str, path: Path) -> None:
    tag = tag_for_keyword(keyword)
    where = ds.file_meta if tag is not None and tag >> 16 == 2 else ds
    try:
        where.get(keyword)
    except Exception as exc:  # pydicom raises many types on damaged values
        raise DicomError(
            f"{path}: its {keyword} element cannot be parsed ({_reason(exc)}): the file is "
            "damaged. Copy it again from its source, or fix or delete that element with pydicom."
        ) from exc


def _not_dicom(path: Path) -> DicomError:
    return DicomError(
        f"{path} is not a DICOM file (no 'DICM' marker after the 128-byte preamble). "
        "Give a DICOM file (.dcm) or the folder of a series."
    )


def _floats(ds: Dataset, keyword: str, count: int, path: Path) -> list[float] | None:
    """``count`` finite numbers from ``keyword``; ``None`` if it is absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        raise DicomError(
            f"{path} has a malformed {keyword} {value!r}: expected {count} finite "
            f"number{'s' if count > 1 else ''}. Fix that element, or copy the file again."
        )
    return numbers


def _int(
    ds: Dataset, keyword: str, default: int, path: Path, *, minimum: int = 0, maximum: int = 2**32 - 1
) -> int:
    """A whole number in ``[minimum, maximum]`` from ``keyword``; ``default`` if absent or empty.

    The value must be stored as a number (VR US, IS, ...), as pydicom needs it to decode.
    """
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise DicomError(
            f"{path} has a malformed {keyword} {value!r} (VR {ds[keyword].VR}): expected a whole "
            f"number from {minimum} to {maximum}. Fix that element, or copy the file again from "
            "its source."
        )
    return int(value)


def _transfer_syntax(ds: Dataset, path: Path) -> UID | None:
    """The file's transfer syntax; ``None`` if it has none; DicomError if it is not one."""
    value = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if value is None:
        return None
    syntax = UID(str(value).strip(), validation_mode=pydicom.config.IGNORE)  # checked just below
    if not syntax.is_transfer_syntax:
        raise DicomError(
            f"{path} has TransferSyntaxUID {str(value)!r}, which is not a transfer syntax pydicom "
            "knows, so the encoding of its pixel data is unknown. Copy the file again, or convert "
            "it with the software that made it."
        )
    return syntax


def _pixel_keyword(ds: Dataset) -> str | None:
    return next((k for k in PIXEL_KEYWORDS if k in ds), None)


def _pixel_bytes(ds: Dataset, keyword: str, path: Path) -> int:
    """Length in bytes of the pixel data in the file, also where its value was left unread."""
    elem = ds.get_item(keyword, keep_deferred=True)
    if isinstance(elem, RawDataElement) and elem.value is None:  # deferred: not read yet
        return max(0, min(elem.length, os.stat(path).st_size - elem.value_tell))
    return len(elem.value or b"")


def _expected_bytes(ds: Dataset, path: Path) -> int:
    """Bytes that Rows x Columns x SamplesPerPixel x NumberOfFrames x BitsAllocated need."""
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if ds.get(keyword) in (None, ""):
            raise DicomError(
                f"{path} has no {keyword}, so the size of its pixel data is unknown. Copy the "
                "file again from its source."
            )
    sizes = [
        _int(ds, "Rows", 0, path, minimum=1, maximum=65535),
        _int(ds, "Columns", 0, path, minimum=1, maximum=65535),
        _int(ds, "SamplesPerPixel", 1, path, minimum=1, maximum=4),
        _int(ds, "NumberOfFrames", 1, path, minimum=1),
    ]
    bits = _int(ds, "BitsAllocated", 0, path, minimum=1, maximum=64)
    return math.ceil(math.prod(sizes) * bits / 8)


def _check_pixel_length(ds: Dataset, path: Path, *, note: str = "", exact: bool = False) -> None:
    """Raise if native pixel data is shorter than Rows x Columns x ... need.

    With ``exact``, also raise if it is longer than that plus the one padding byte DICOM
    allows for odd lengths: the header then does not describe the pixels.
    """
    syntax = _transfer_syntax(ds, path)
    keyword = _pixel_keyword(ds)
    if keyword is None or syntax is None or syntax.is_encapsulated:
        return
    try:
        needed = _expected_bytes(ds, path)
    except DicomError as exc:
        raise DicomError(f"{exc}{note}") from None
    actual = _pixel_bytes(ds, keyword, path)
    if actual < needed:
        raise DicomError(
            f"{path} is truncated: its pixel data holds {actual} bytes, but "
            f"{ds.Rows} x {ds.Columns} pixels of {ds.BitsAllocated} bits need {needed}.{note} "
            "Copy the file again from its source."
        )
    if exact and actual > needed + needed % 2:
        raise DicomError(
            f"{path}: its pixel data holds {actual} bytes, but its header (Rows {ds.Rows}, "
            f"Columns {ds.Columns}, BitsAllocated {ds.BitsAllocated}, SamplesPerPixel and "
            f"NumberOfFrames) describes {needed}; read this way the image would come out sheared "
            "or shifted. The header is damaged: copy the file again from its source."
        )


def _check_image_header(ds: Dataset, path: Path) -> tuple[int, int]:
    """Check that ``ds`` describes one greyscale image that can be read; return (rows, columns).

    ``ds`` may have been read with its pixel data left unread (``_read(defer_size=...)``):
    the length of the pixel data is checked against Rows, Columns, ... before any memory
    is reserved for them.
    """
    if "Rows" not in ds or "Columns" not in ds:
        raise DicomError(
            f"{path} describes no image (Rows/Columns missing): it is truncated, or it is a "
            "DICOM object without pixels such as a structured report. Read the image files."
        )
    if _pixel_keyword(ds) is None:
        raise DicomError(
            f"{path} has no pixel data (no PixelData element): it is a DICOM object without an "
            "image, such as a structured report or a presentation state. Read the image files."
        )
    _expected_bytes(ds, path)
    if _int(ds, "NumberOfFrames", 1, path, minimum=1) > 1:
        raise DicomError(
            f"{path} is a multi-frame image ({ds.NumberOfFrames} frames in one file); read_series "
            "reads one slice per file. Use pydicom.dcmread(path).pixel_array for it."
        )
    _check_greyscale(ds, path)
    bits = _int(ds, "BitsAllocated", 0, path, minimum=1, maximum=64)
    _int(ds, "BitsStored", bits, path, minimum=1, maximum=bits)
    _int(ds, "PixelRepresentation", 0, path, minimum=0, maximum=1)
    syntax = _transfer_syntax(ds, path)
    if syntax is None:
        raise DicomError(
            f"{path} has no TransferSyntaxUID in its file meta information, so the encoding of "
            "its pixel data is unknown. Copy the file again, or rewrite it with pydicom naming "
            "its transfer syntax."
        )
    if syntax.is_encapsulated:
        _check_decoder(syntax, path)
    _check_pixel_length(ds, path, exact=True)
    _check_rescale(ds, path)
    return int(ds.Rows), int(ds.Columns)


def _check_greyscale(ds: Dataset, path: Path) -> None:
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    samples = _int(ds, "SamplesPerPixel", 1, path, minimum=1, maximum=4)
    if samples == 1 and photometric in _GREYSCALE:
        return
    if samples == 1 and not photometric:
        raise DicomError(
            f"{path} has no PhotometricInterpretation, so how its pixels are meant is unknown "
            f"({' or '.join(_GREYSCALE)} for a greyscale image). Copy the file again from its source."
        )
    if samples != 1 or photometric in _COLOUR:
        raise DicomError(
            f"{path} is a colour image ({ds.get('PhotometricInterpretation')}); read_series "
            "reads greyscale images. Use pydicom.dcmread(path).pixel_array for it."
        )
    raise DicomError(
        f"{path} has PhotometricInterpretation {ds.get('PhotometricInterpretation')!r}, not "
        f"{' or '.join(_GREYSCALE)}, so how its pixels are meant is unknown. Fix that element, "
        "or copy the file again from its source."
    )


def _check_decoder(syntax: UID, path: Path) -> None:
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


def _check_rescale(ds: Dataset, path: Path) -> None:
    """Check that the modality rescale is absent or one finite, non-zero slope and an intercept.

    Both or neither must be present, as DICOM requires (PS3.3 C.11.1): with only the
    intercept, pydicom skips the rescale and CT values come out ~1024 HU off, and no slope
    can be assumed safely (PET and some MR files store slopes far from 1), so such a file
    is refused. A *Modality LUT Sequence*, applied by pydicom instead, is not checked here.
    """
    present = [k for k in ("RescaleSlope", "RescaleIntercept") if k in ds]
    if ds.get("ModalityLUTSequence") or not present:
        return
    if len(present) == 1:
        (have,), missing = present, ({"RescaleSlope", "RescaleIntercept"} - set(present)).pop()
        raise DicomError(
            f"{path} has {have} {ds.get(have)!r} but no {missing}: DICOM requires both, and "
            f"without the {missing[7:].lower()} its stored values cannot be turned into physical "
            f"units (Hounsfield units for CT). If you know the value (a slope of 1 and an "
            f"intercept of -1024 are common for CT), set it with pydicom: `ds.{missing} = ...`."
        )
    slope, intercept = (_floats(ds, k, 1, path) for k in ("RescaleSlope", "RescaleIntercept"))
    if slope is None or intercept is None:
        empty = "RescaleSlope" if slope is None else "RescaleIntercept"
        raise DicomError(
            f"{path} has an empty {empty}, so its stored values cannot be turned into physical "
            "units. Copy the file again, or set the value with pydicom."
        )
    if slope[0] == 0 or max(abs(slope[0]), abs(intercept[0])) > _FLOAT32_MAX:
        raise DicomError(
            f"{path} has RescaleSlope {slope[0]:g} and RescaleIntercept {intercept[0]:g}: the "
            "slope must be non-zero and both must fit a float32. The header is damaged: copy "
            "the file again from its source."
        )


def _pixels(ds: Dataset, path: Path, *, warned: dict[str, list[Path]] | None = None) -> np.ndarray:
    """The slice's pixels as finite float32 ``(rows, columns)``, modality rescale applied."""
    rows, columns = _check_image_header(ds, path)
    with _pydicom_warnings(path, warned):
        values = _decode(ds, path)
    if values.shape != (rows, columns):
        raise DicomError(
            f"{path}: expected one {rows} x {columns} image, got pixel data of shape {values.shape}."
        )
    if not np.isfinite(values).all():
        raise DicomError(
            f"{path}: {np.count_nonzero(~np.isfinite(values))} pixel values are NaN or infinite "
            f"after the rescale (RescaleSlope {ds.get('RescaleSlope')}, RescaleIntercept "
            f"{ds.get('RescaleIntercept')}). The file is damaged: copy it again from its source."
        )
    return values


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """pydicom's pixel array with its Modality LUT or rescale applied, as float32."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return pydicom.pixels.apply_rescale(ds.pixel_array, ds).astype(np.float32)
    except Exception as exc:  # decoders raise many types on damaged data
        raise DicomError(
            f"{path}: pydicom cannot decode the pixel data ({_reason(exc)}). Check its image "
            "attributes (BitsStored, PixelRepresentation, ...) or copy the file again."
        ) from exc
