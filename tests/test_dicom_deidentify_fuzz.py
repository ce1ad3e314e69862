"""Property tests of medlab.dicom.deidentify on generated datasets and damaged files.

Each dataset holds a random subset of the attributes of DICOM PS3.15 Table E.1-1 with random
values, private tags, and sequences nested at random (ones the table lists, and ones it
does not, whose items are cleaned). The properties: no planted identifying value survives
in the output bytes; a UID gets the same replacement in every file of a run; the output
reads with pydicom; a damaged file gives a DicomError that names it; the inputs stay as
they were.
"""

import string
from datetime import date, datetime
import tempfile
import warnings
from pathlib import Path

import pydicom
import pytest
from deidentify_helpers import NEW_UID_ROOT, NUMBERS, PATTERN_EXAMPLES, digest, file_meta, leaks
from deidentify_helpers import table_tags, write_file
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage

from medlab import dicom
from medlab.dicom import DicomError

SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TABLE = sorted(t for t in table_tags() if t >> 16 not in (0x0000, 0x0002))
TOP = [t for t in TABLE if t not in (0x00080018, 0x0020000D)]  # study() sets these two
VR_OF = {tag: vr for tag, (vr, _) in table_tags().items()}
# Sequences the table does not list: their items are kept and cleaned.
OTHER_SEQUENCES = ("ReferencedSeriesSequence", "ProcedureCodeSequence", "ReferencedInstanceSequence")
UID_ROOT = "1.2.826.0.1.3680043.10.77."  # planted UIDs; the replacements start otherwise
TEXT_LIMIT = {"AE": 16, "CS": 16, "SH": 16}

marker_text = st.text(string.ascii_letters + string.digits, min_size=4, max_size=12).map(
    lambda s: "QX" + s
)


def text_value(vr):
    """Values for a text VR; CS is upper case, and every value starts with the marker QX."""
    limit = TEXT_LIMIT.get(vr, 64) - 2
    letters = string.ascii_uppercase + string.digits if vr == "CS" else string.ascii_letters + string.digits
    return st.text(letters, min_size=4, max_size=min(limit, 12)).map(lambda s: "QX" + s)


@st.composite
def planted(draw, vr, uids):
    """(value, needles): a random value valid for ``vr`` and the bytes that must not survive."""
    if vr == "UI":
        uid = draw(st.sampled_from(uids))
        return uid, [uid.encode()]
    if vr in NUMBERS:
        value = draw(st.integers(0xFE80, 0xFEEF))
        return value, [value.to_bytes(2, "little")] if vr in ("US", "SS") else []
    if vr in ("OB", "OW", "UN"):
        raw = draw(marker_text).encode()
        raw += b"Q" * (len(raw) % 2)
        return raw, [raw]
    if vr == "DA":
        value = draw(st.dates(min_value=date(1901, 1, 1), max_value=date(2099, 12, 31))).strftime("%Y%m%d")
    elif vr in ("TM", "DT"):
        moment = draw(st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2099, 12, 31)))
        value = moment.strftime("%Y%m%d" * (vr == "DT") + "%H%M%S") + f".{draw(st.integers(1, 999_999)):06d}"
    elif vr == "AS":
        value = f"{draw(st.integers(1, 999)):03d}{draw(st.sampled_from('DWMY'))}"
    elif vr == "IS":
        value = str(draw(st.integers(2_000_000_000, 2_147_483_647)))
    elif vr == "DS":
        value = f"{draw(st.integers(20_000, 99_999))}.{draw(st.integers(10_000, 99_999))}"
    else:
        values = draw(st.lists(text_value(vr), min_size=1, max_size=1 if vr in ("LT", "ST", "UT", "UR") else 3))
        return (values if len(values) > 1 else values[0]), [v.encode() for v in values]
    return value, [value.encode()]


@st.composite
def identifying_dataset(draw, uids, depth=0):
    """(dataset, needles): table attributes with planted values, private tags, nesting."""
    ds, needles = Dataset(), []
    for tag in draw(st.lists(st.sampled_from(TABLE if depth else TOP), max_size=12, unique=True)):
        vr = VR_OF[tag]
        if vr == "SQ":
            items = []
            for _ in range(draw(st.integers(0, 2 if depth < 2 else 0))):
                item, inner = draw(identifying_dataset(uids, depth + 1))
                items.append(item)
                needles += inner
            ds.add_new(tag, "SQ", Sequence(items))
            continue
        value, found = draw(planted(vr, uids))
        ds.add_new(tag, vr, value)
        needles += found
    for group in draw(st.lists(st.sampled_from([0x0009, 0x0011, 0x0029, 0x7FD1]), max_size=2, unique=True)):
        creator = draw(marker_text)
        value = draw(marker_text)
        ds.private_block(group, creator, create=True).add_new(0x10, "LO", value)
        needles += [creator.encode(), value.encode()]
    if draw(st.booleans()):
        key, (tag, vr) = draw(st.sampled_from(sorted(PATTERN_EXAMPLES.items())))
        value, found = draw(planted(vr, uids))
        ds.add_new(tag, vr, value)
        needles += found
    if depth < 3 and draw(st.integers(0, 2)) == 0:
        keyword = draw(st.sampled_from(OTHER_SEQUENCES))
        item, inner = draw(identifying_dataset(uids, depth + 1))
        setattr(ds, keyword, Sequence([item]))
        needles += inner
    return ds, needles


@st.composite
def study(draw):
    """Up to three files of one study: (datasets, needles, planted UIDs)."""
    pool = [UID_ROOT + str(n) for n in draw(st.lists(st.integers(1, 10**12), min_size=3, max_size=6, unique=True))]
    files, needles = [], []
    for index in range(draw(st.integers(1, 3))):
        ds, found = draw(identifying_dataset(pool))
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, pool[index]
        ds.StudyInstanceUID = pool[-1]  # shared: the same replacement is expected in every file
        ds.file_meta = file_meta(ds.SOPInstanceUID)
        files.append(ds)
        needles += found + [pool[index].encode(), pool[-1].encode()]
    return files, set(needles), pool


def write_study(files, folder):
    folder.mkdir()
    return [write_file(ds, folder / f"file_{k}.dcm") for k, ds in enumerate(files)]


def uid_pairs(before, after):
    """(original, replacement) for every UID kept at the same place in both datasets."""
    for elem in before:
        if elem.tag not in after:
            continue
        new = after[elem.tag]
        if elem.VR == "SQ" and new.VR == "SQ" and len(elem.value) == len(new.value):
            for old_item, new_item in zip(elem.value, new.value):
                yield from uid_pairs(old_item, new_item)
        elif elem.VR == "UI" and new.VR == "UI" and elem.value and new.value:
            old_values = list(elem.value) if elem.VM > 1 else [elem.value]
            new_values = list(new.value) if new.VM > 1 else [new.value]
            yield from zip(map(str, old_values), map(str, new_values))


@settings(max_examples=60, **SETTINGS)
@given(study())
def test_generated_studies_leak_nothing_and_keep_references(case):
    files, needles, pool = case
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw, anon = Path(tmp) / "raw", Path(tmp) / "anon"
        paths = write_study(files, raw)
        assert all(any(n in p.read_bytes() for p in paths) for n in needles)  # planted for real
        event(f"planted values: {'0-9' if len(needles) < 10 else '10-29' if len(needles) < 30 else '30+'}")
        before = digest(raw)
        report = dicom.deidentify(raw, anon, salt="fuzz")
        assert digest(raw) == before and len(report.files) == len(paths)
        mapping = {}
        for path, original in zip(sorted(report.files), files):
            data = path.read_bytes()
            assert leaks(data, {n: path.name for n in needles}) == {}
            copy = pydicom.dcmread(path)
            for elem in copy.iterall():  # every value parses
                elem.value
            assert not any(elem.tag.is_private for elem in copy.iterall())
            for old, new in uid_pairs(original, copy):
                if old in pool:
                    assert new.encode().startswith(NEW_UID_ROOT) and mapping.setdefault(old, new) == new
        assert len(set(mapping.values())) == len(mapping)  # different UIDs stay different
        copies = [pydicom.dcmread(p) for p in sorted(report.files)]
        assert len({c.StudyInstanceUID for c in copies}) == 1
        assert all(c.file_meta.MediaStorageSOPInstanceUID == c.SOPInstanceUID for c in copies)


@st.composite
def damaged(draw):
    """The bytes of a generated file, cut, overwritten or with bytes inserted."""
    files, _, _ = draw(study())
    with tempfile.TemporaryDirectory() as tmp:
        data = write_file(files[0], Path(tmp) / "x.dcm").read_bytes()
    how = draw(st.sampled_from(["cut", "overwrite", "insert"]))
    at = draw(st.integers(0, len(data) - 1))
    noise = draw(st.binary(min_size=1, max_size=16))
    if how == "cut":
        return data[:at]
    if how == "overwrite":
        return data[:at] + noise + data[at + len(noise):]
    return data[:at] + noise + data[at:]


@settings(max_examples=120, **SETTINGS)
@given(damaged())
def test_damaged_files_give_a_dicom_error_naming_the_file(data):
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = Path(tmp) / "raw" / "damaged.dcm"
        source.parent.mkdir()
        source.write_bytes(data)
        target = Path(tmp) / "out" / "damaged.dcm"
        try:
            dicom.deidentify(source, target)
        except DicomError as error:
            event("DicomError")
            assert str(source) in str(error)
            assert not target.exists()
        else:
            event("written")
            copy = pydicom.dcmread(target)
            for elem in copy.iterall():
                elem.value
            assert copy.PatientIdentityRemoved == "YES"
        assert source.read_bytes() == data  # the input is never changed
        out = Path(tmp) / "out"
        assert not out.exists() or list(out.glob(".deid-*")) == []  # nor a partial file left


@pytest.mark.parametrize("name", ["empty.dcm", "preamble_only.dcm", "text.dcm"])
def test_files_that_are_not_dicom_give_a_dicom_error(tmp_path, name):
    data = {"empty.dcm": b"", "preamble_only.dcm": b"\0" * 128 + b"DICM", "text.dcm": b"hello"}[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DicomError, match=name):
        dicom.deidentify(tmp_path / name, tmp_path / "out.dcm")
    assert (tmp_path / name).read_bytes() == data and not (tmp_path / "out.dcm").exists()
