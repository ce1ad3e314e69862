"""Fuzz tests of medlab.dicom.read_series: damaged copies of valid files and series.

Each case takes a valid series or file (a synthetic CT series, also RLE-compressed and
deflated, a synthetic radiograph, pydicom's CT_small, MR_small, MR_truncated) and damages it: header values of the wrong VR,
sign, size or type for the attributes the reader uses, elements deleted, files dropped or
copied twice, another transfer syntax, flipped bytes, truncation. The property: read_series
returns a Series that agrees with pydicom's own decoding of the files it used (finite,
expected shape, sane geometry) or raises a DicomError naming the file or folder; it never
raises anything else, never warns with anything but DicomWarning, and never hangs.
"""

import functools
import io
import math
import signal
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian, RLELossless

from medlab import dicom
from medlab.dicom import DicomError, DicomWarning

TIMEOUT_S = 10
"""A single read_series call taking longer than this counts as a hang."""

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="the hang guard needs SIGALRM")

FUZZ = settings(
    max_examples=300,
    deadline=None,  # TIMEOUT_S guards against hangs instead
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KEYWORDS = (
    "Rows Columns BitsAllocated BitsStored HighBit PixelRepresentation SamplesPerPixel "
    "NumberOfFrames PhotometricInterpretation PlanarConfiguration RescaleSlope RescaleIntercept "
    "PixelSpacing ImagerPixelSpacing ImagePositionPatient ImageOrientationPatient "
    "PatientOrientation SliceThickness SpacingBetweenSlices GantryDetectorTilt "
    "SeriesInstanceUID Modality WindowCenter SOPClassUID ModalityLUTSequence PixelData"
).split()

NUMERIC_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
TEXT_VRS = ("DS", "IS", "CS", "LO", "SH", "UI")
INTERESTING_TEXT = (
    "", "0", "1", "-1", "2", "3", "8", "12", "16", "32", "65535", "65536", "-32768", "1.5",
    "nan", "inf", "-inf", "1e39", "-1e39", "1e308", "1e-300", "-0", " ", "abc", "\0",
    "1\\0\\0\\0\\1\\0", "0\\1\\0\\0\\0\\-1", "1\\0\\0\\1\\0\\0", "0\\0\\0\\0\\0\\0",
    "-10\\5.5\\100", "1e300\\0\\0", "0.7\\0.8", "0\\0.8", "-1\\1", "L\\L", "L\\F", "LH\\F",
    "MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", "1.2.3", "1.2.840.10008.1.2",
)
TRANSFER_SYNTAXES = (*pydicom.uid.AllTransferSyntaxes, "", "1.2.3.4", "abc", "1.2.840.10008.1.2.4")


# --------------------------------------------------------------------------- valid inputs


@functools.cache
def valid_files() -> dict[str, list[tuple[str, bytes]]]:
    """name -> list of (file name, bytes): small valid series and files to damage."""
    with tempfile.TemporaryDirectory(prefix="medlab-fuzz-bases-") as folder:
        root = Path(folder)
        z, y, x = np.indices((3, 6, 5))
        dicom.write_ct_series(-1000.0 + 100 * z + 10 * y + x, root / "ct", spacing=(2.5, 0.7, 0.8))
        dicom.write_radiograph(np.linspace(0, 1, 42).reshape(6, 7), root / "cxr" / "cxr.dcm")
        found = {name: sorted((root / name).iterdir()) for name in ("ct", "cxr")}
        for name in ("CT_small.dcm", "MR_small.dcm", "MR_truncated.dcm"):
            found[name] = [Path(get_testdata_file(name))]
        files = {name: [(p.name, p.read_bytes()) for p in paths] for name, paths in found.items()}
    for name, syntax in (("ct_rle", RLELossless), ("ct_deflated", DeflatedExplicitVRLittleEndian)):
        files[name] = [(n, encoded_as(data, syntax)) for n, data in files["ct"]]
    return files


def encoded_as(data: bytes, syntax) -> bytes:
    """``data`` stored with transfer syntax ``syntax`` (RLE Lossless or Deflated)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    if syntax == RLELossless:
        ds.compress(RLELossless, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- damage


def text_value(text: str) -> bytes:
    """``text`` as the bytes of a DICOM string value, padded to even length."""
    value = text.encode("latin-1", errors="replace")
    return value + b" " * (len(value) % 2)


texts = st.one_of(
    st.sampled_from(INTERESTING_TEXT),
    st.text(alphabet="0123456789.-+eE\\ nafiLRAPHF", max_size=12),
).map(text_value)


@st.composite
def values(draw):
    """(VR, value bytes): numbers of every numeric VR, text of every text VR, raw bytes, bad VRs."""
    kind = draw(st.sampled_from(("number", "text", "raw", "bad VR")))
    if kind == "number":
        vr = draw(st.sampled_from(sorted(NUMERIC_VRS)))
        code = NUMERIC_VRS[vr]
        if code in "fd":
            numbers = st.floats(allow_nan=True, allow_infinity=True, width=32 if code == "f" else 64)
        else:
            bits = struct.calcsize(code) * 8
            low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if code.islower() else (0, 2**bits - 1)
            usual = st.sampled_from((0, 1, 2, 8, 16, 32, 255, 256, high))
            numbers = st.one_of(usual, st.integers(low, high))
        items = draw(st.lists(numbers, min_size=0, max_size=3))
        return vr, struct.pack(f"<{len(items)}{code}", *items)
    if kind == "text":
        return draw(st.sampled_from(TEXT_VRS)), draw(texts)
    raw = draw(st.binary(max_size=9))
    if kind == "raw":
        return draw(st.sampled_from(("OB", "UN", "SQ", *NUMERIC_VRS, *TEXT_VRS))), raw
    return draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)), raw


header_damage = st.tuples(st.just("header"), st.sampled_from(KEYWORDS), values())
delete_damage = st.tuples(st.just("delete"), st.sampled_from(KEYWORDS))
file_damage = st.tuples(st.sampled_from(("drop", "duplicate")))
syntax_damage = st.tuples(st.just("syntax"), st.sampled_from(TRANSFER_SYNTAXES))
where = st.one_of(st.floats(0, 1), st.integers(128, 1600))  # a fraction of the file, or in the header
byte_damage = st.one_of(
    st.tuples(st.just("flip"), where, st.integers(1, 255)),
    st.tuples(st.just("truncate"), where),
)
damages = st.lists(
    st.tuples(st.integers(0, 50), st.booleans(), st.one_of(header_damage, delete_damage)), max_size=3
)


def meta_end(data: bytes) -> int:
    """Offset where the data set starts: after the preamble, 'DICM' and the file meta group."""
    return 132 + 12 + int.from_bytes(data[140:144], "little")  # (0002,0000) holds its length


def with_raw(data: bytes, changes) -> bytes:
    """``data`` with each (keyword, VR, value bytes) of ``changes`` set (VR ``None``: deleted).

    The data set is re-encoded element by element (raw elements as they are), so that
    values pydicom itself would refuse to write reach the file as given.
    """
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, vr, value in changes:
        tag = Tag(keyword)
        if vr is None:
            if tag in ds:
                del ds[tag]
        else:
            ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(buffer, ds)
    body = buffer.getvalue()
    if ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian:
        deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw deflate, as DICOM stores it
        body = deflate.compress(body) + deflate.flush()
    return data[: meta_end(data)] + body


def with_transfer_syntax(data: bytes, uid: str) -> bytes:
    """``data`` with its file meta rewritten to TransferSyntaxUID ``uid``, data set unchanged."""
    meta = pydicom.dcmread(io.BytesIO(data)).file_meta
    tag = Tag("TransferSyntaxUID")
    value = uid.encode() + b"\0" * (len(uid) % 2)
    meta[tag] = RawDataElement(tag, "UI", len(value), value, 0, False, True)
    buffer = pydicom.filebase.DicomBytesIO()
    pydicom.filewriter.write_file_meta_info(buffer, meta, enforce_standard=False)
    return data[:132] + buffer.getvalue() + data[meta_end(data) :]


def damage_header(files, edits):
    """Apply (file index, to all files, (kind, keyword[, (VR, value)])) edits to valid files."""
    changes = [[] for _ in files]
    for index, everywhere, (kind, keyword, *value) in edits:
        vr, raw = value[0] if value else (None, b"")
        for k in range(len(files)) if everywhere else [index % len(files)]:
            changes[k].append((keyword, vr, raw))
    return [(name, with_raw(data, todo) if todo else data) for (name, data), todo in zip(files, changes)]


def damage_bytes(data: bytes, damage) -> bytes:
    """``data`` with one byte flipped or cut at a position (int) or a fraction (float) of it."""
    if not data:
        return data
    at = damage[1] if isinstance(damage[1], int) else int(damage[1] * len(data))
    at = min(at, len(data) - 1)
    if damage[0] == "flip":
        return data[:at] + bytes([data[at] ^ damage[2]]) + data[at + 1 :]
    return data[:at]


# --------------------------------------------------------------------------- the property


class Hung(BaseException):  # not an Exception: no `except Exception` may swallow it
    pass


def read_with_timeout(target):
    """read_series(target) with every warning recorded; Hung after TIMEOUT_S seconds."""

    def alarm(signum, frame):
        raise Hung(f"read_series({target}) ran for more than {TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return dicom.read_series(target), None, caught
            except DicomError as error:
                return None, error, caught
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def reference(path: Path) -> np.ndarray:
    """pydicom's own reading of one slice: pixel array with the modality rescale, float32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        assert ("RescaleSlope" in ds) == ("RescaleIntercept" in ds) or "ModalityLUTSequence" in ds
        samples, frames = int(ds.get("SamplesPerPixel") or 1), int(ds.get("NumberOfFrames") or 1)
        pixels = int(ds.Rows) * int(ds.Columns) * samples * frames
        expected = math.ceil(pixels * int(ds.BitsAllocated) / 8)
        if not ds.file_meta.TransferSyntaxUID.is_encapsulated:
            assert len(ds.PixelData) in (expected, expected + expected % 2), "pixels and header disagree"
        return pydicom.pixels.apply_rescale(ds.pixel_array, ds).astype(np.float32)


def check_geometry(series):
    """Finite spacing and origin, orthonormal axes, slices in order along the normal."""
    assert len(series.spacing) == 3 and all(math.isfinite(s) and s > 0 for s in series.spacing)
    assert len(series.origin) == 3 and all(math.isfinite(v) for v in series.origin)
    np.testing.assert_allclose(series.direction @ series.direction.T, np.eye(3), atol=1e-6)
    assert series.metadata["orientation"] in ("axial", "coronal", "sagittal", "oblique")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        positions = [pydicom.dcmread(p).get("ImagePositionPatient") for p in series.paths]
    if positions[0]:
        np.testing.assert_allclose(series.origin, [float(v) for v in positions[0]], rtol=1e-12)
    if len(positions) > 1:
        along = np.array([[float(v) for v in p] for p in positions]) @ series.direction[2]
        steps = np.diff(along)
        assert (steps > 0).all(), f"slices out of order along the normal: {along}"
        np.testing.assert_allclose(steps, series.spacing[0], rtol=0.011)


def check_outcome(target: Path, files: list[str]):
    """read_series(target) gives a Series agreeing with pydicom, or a DicomError naming target."""
    series, error, caught = read_with_timeout(target)
    foreign = [f"{w.category.__name__}: {w.message}" for w in caught if w.category is not DicomWarning]
    assert not foreign, foreign
    if error is not None:
        assert str(target) in str(error), f"the message does not name {target}: {error}"
        return "error"
    volume = series.volume
    assert volume.dtype == np.float32 and volume.ndim == 3 and np.isfinite(volume).all()
    assert 1 <= volume.shape[0] == len(series.paths) <= len(files)
    assert all(p.parent == (target if target.is_dir() else target.parent) for p in series.paths)
    for k, path in enumerate(series.paths):
        np.testing.assert_array_equal(volume[k], reference(path))
    check_geometry(series)
    assert len(series.warnings) == len(caught)
    return "series"


def run_case(base, edits, structure, syntax, byte_damages, *, as_folder=True):
    files = damage_header(list(valid_files()[base]), edits)
    for (kind,) in structure:
        if kind == "drop" and len(files) > 1:
            files.pop(len(files) // 2)
        elif kind == "duplicate":
            files.append((f"copy_{files[0][0]}", files[0][1]))
    if syntax is not None:
        files[0] = (files[0][0], with_transfer_syntax(files[0][1], syntax[1]))
    for k, damage in byte_damages:
        name, data = files[k % len(files)]
        files[k % len(files)] = (name, damage_bytes(data, damage))
    with tempfile.TemporaryDirectory(prefix="medlab-fuzz-") as folder:
        for name, data in files:
            (Path(folder) / name).write_bytes(data)
        target = Path(folder) if as_folder or len(files) > 1 else Path(folder) / files[0][0]
        return check_outcome(target, [name for name, _ in files])


BASES = ("ct", "ct_rle", "ct_deflated", "cxr", "CT_small.dcm", "MR_small.dcm", "MR_truncated.dcm")


@FUZZ
@given(
    base=st.sampled_from(BASES),
    edits=damages,
    structure=st.lists(file_damage, max_size=1),
    as_folder=st.booleans(),
)
def test_damaged_headers_give_a_series_or_a_dicom_error(base, edits, structure, as_folder):
    event(run_case(base, edits, structure, None, [], as_folder=as_folder))


@settings(FUZZ, max_examples=150)
@given(base=st.sampled_from(BASES), syntax=syntax_damage, edits=damages)
def test_other_transfer_syntaxes_give_a_series_or_a_dicom_error(base, syntax, edits):
    event(run_case(base, edits, [], syntax, []))


@settings(FUZZ, max_examples=300)
@given(
    base=st.sampled_from(BASES),
    byte_damages=st.lists(st.tuples(st.integers(0, 50), byte_damage), min_size=1, max_size=4),
    as_folder=st.booleans(),
)
def test_flipped_and_truncated_bytes_give_a_series_or_a_dicom_error(base, byte_damages, as_folder):
    event(run_case(base, [], [], None, byte_damages, as_folder=as_folder))


def test_the_damage_reaches_the_files():
    valid = valid_files()["ct"][0][1]
    data = with_raw(valid, [("Rows", "SS", struct.pack("<h", -5))])
    assert pydicom.dcmread(io.BytesIO(data)).Rows == -5
    data = with_raw(valid, [("PixelData", "US", b"\0" * 5)])  # pydicom itself would not write this
    assert pydicom.dcmread(io.BytesIO(data)).get_item("PixelData").value == b"\0" * 5
    data = with_transfer_syntax(valid, "1.2.3.4")
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == "1.2.3.4"
    for base in BASES[:4]:
        assert run_case(base, [], [], None, []) == "series"
        assert run_case(base, [(0, False, ("header", "WindowCenter", ("DS", b"1 ")))], [], None, []) == "series"
        assert run_case(base, [(0, True, ("delete", "RescaleSlope"))], [], None, []) == "error"
