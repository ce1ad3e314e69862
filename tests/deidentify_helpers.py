"""Datasets full of identifying values, for the tests of :func:`medlab.dicom.deidentify`.

:func:`planted_value` gives a value that is valid for a VR and that nothing else in a file
spells; :func:`planted_dataset` puts one in every attribute of Table E.1-1;
:func:`write_file` writes a dataset as a DICOM file even where it holds command elements
(group 0000), which ``Dataset.save_as`` refuses.
"""

import hashlib
import itertools

from pydicom.datadict import dictionary_has_tag, dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medlab.dicom.basic_profile import BASIC_PROFILE, PRIVATE

# Attributes of the table newer than pydicom's dictionary, with their VR from DICOM PS3.6.
NEWER_VR = {
    0x00081301: "SQ", 0x00081302: "SQ", 0x00081303: "SQ", 0x00081304: "SQ",
    0x00100011: "SQ", 0x00100012: "LT", 0x00100013: "UT", 0x00100014: "SQ",
    0x00100015: "SQ", 0x00100016: "UT", 0x00100041: "SQ", 0x00100042: "UT",
    0x00100043: "SQ", 0x00100044: "SQ", 0x00100045: "UT", 0x00100046: "SQ",
    0x00100047: "UR", 0x00102162: "UC", 0x0040A034: "DT", 0x0040A035: "DT",
    0x0040B034: "DT", 0x0040B036: "DT", 0x0040B03B: "LO", 0x0040B03F: "LO",
    0x0040E012: "UR",
}
# Rows of the table given as patterns, with one tag of each and its VR.
PATTERN_EXAMPLES = {"(50xx,xxxx)": (0x50023000, "OB"), "(60xx,3000)": (0x60043000, "OB"),
                    "(60xx,4000)": (0x60044000, "LT")}
NUMBERS = ("AT", "FD", "FL", "SL", "SS", "SV", "UL", "US", "UV")


def table_tags():
    """Every attribute of Table E.1-1 given by a tag: {tag: (VR, action)}."""
    tags = {}
    for key, action in BASIC_PROFILE.items():
        if key == PRIVATE or key in PATTERN_EXAMPLES:
            continue
        tag = tag_for_keyword(key) if not key.startswith("(") else int(key[1:5] + key[6:10], 16)
        vr = dictionary_VR(tag).split(" or ")[0] if dictionary_has_tag(tag) else NEWER_VR[tag]
        tags[tag] = (vr, action)
    return tags


def planted_value(vr, n):
    """A value valid for ``vr``, distinct for each ``n`` (< 10**5), and the bytes to search for.

    Numbers stored in binary are 0xFE80 + ``n % 0x70``: two bytes that DICOM text, lengths and
    tags never hold together (only US and SS get bytes to search for). Other values contain
    a marker (``QZ``), a decimal point, or digits that only a replacement UID could show
    by chance (:func:`leaks` takes those out first).
    """
    if vr in NUMBERS:
        value = 0xFE80 + n % 0x70
        return (value, value.to_bytes(2, "little")) if vr in ("US", "SS") else (value, None)
    h, m, s = n % 24, n // 24 % 60, n // 1440 % 60
    text = {
        "DA": f"{1901 + n % 99}{1 + n % 12:02d}{1 + n % 28:02d}",
        "TM": f"{h:02d}{m:02d}{s:02d}.{n:06d}",
        "DT": f"1966{1 + n % 12:02d}{1 + n % 28:02d}{h:02d}{m:02d}{s:02d}.{n:06d}",
        "AS": f"{n % 1000:03d}D",
        "IS": f"{7_000_000_000 + n}",
        "DS": f"{n}.{n:05d}3",
        "UI": f"1.2.826.0.1.3680043.10.99.{n}",
        "CS": f"QZ{n:05d}",
        "AE": f"QZAE{n:05d}",
    }.get(vr, f"QZ{n:05d}{vr}")
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        raw = f"QZ{n:05d}B".encode()
        return raw, raw
    return text, text.encode()


def planted_dataset(depth, counter, needles, *, max_depth=2):
    """A dataset with a planted value in every attribute of the table, private tags, curves
    and overlays; and, while ``depth < max_depth``, the same again inside the items of a
    sequence the table does not list and of the two ``X/Z/U*`` sequences.

    ``counter`` (an ``itertools.count``) numbers the values; ``needles`` collects the bytes
    that must not survive, by attribute.
    """
    ds = Dataset()
    for tag, (vr, action) in table_tags().items():
        if tag >> 16 == 0x0002:  # file meta: see file_meta()
            continue
        if vr == "SQ":
            ds.add_new(tag, "SQ", _planted_sequence(action, depth, counter, needles, max_depth))
            continue
        value, needle = planted_value(vr, next(counter))
        ds.add_new(tag, vr, value)
        if needle is not None:
            needles[needle] = f"{tag:08X}"
    for key, (tag, vr) in PATTERN_EXAMPLES.items():
        value, needle = planted_value(vr, next(counter))
        ds.add_new(tag, vr, value)
        needles[needle] = key
    block = ds.private_block(0x0029, "QZ ACME", create=True)
    value, needle = planted_value("LO", next(counter))
    block.add_new(0x10, "LO", value)
    needles[needle] = "private"
    needles[b"QZ ACME"] = "private creator"
    if depth < max_depth:
        ds.ReferencedSeriesSequence = Sequence(
            [planted_dataset(depth + 1, counter, needles, max_depth=max_depth)]
        )
    return ds


def _planted_sequence(action, depth, counter, needles, max_depth):
    """Items for a sequence attribute of the table, holding planted values."""
    if action == "X/Z/U*":  # kept, with the UIDs inside replaced: plant UIDs and the table
        item = (planted_dataset(depth + 1, counter, needles, max_depth=max_depth)
                if depth < max_depth else Dataset())
        item.ReferencedSOPClassUID = CTImageStorage
        if "ReferencedSOPInstanceUID" not in item:
            uid, needle = planted_value("UI", next(counter))
            item.ReferencedSOPInstanceUID = uid
            needles[needle] = "X/Z/U* sequence"
        return Sequence([item])
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator = "QZ-CODE", "99QZ"
    item.CodeMeaning, needle = planted_value("LO", next(counter))
    needles[needle] = f"item of a {action} sequence"
    return Sequence([item])


def file_meta(sop_instance_uid):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def write_file(ds, path):
    """Write ``ds`` (with ``ds.file_meta``) as a DICOM Part 10 file, explicit VR little endian."""
    with open(path, "wb") as handle:
        handle.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(handle, ds.file_meta, enforce_standard=True)
        out = DicomFileLike(handle)
        out.is_little_endian, out.is_implicit_VR = True, False
        write_dataset(out, ds)
    return path


def digest(folder):
    """SHA-256 of every file under ``folder``, by path relative to it."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def uid_values(ds):
    """Every UID value in ``ds``, its sequences and its file meta."""
    values = set()
    for elem in itertools.chain(ds.iterall(), getattr(ds, "file_meta", Dataset()).iterall()):
        if elem.VR == "UI" and elem.value:
            values |= set(elem.value) if elem.VM > 1 else {str(elem.value)}
    return values


NEW_UID_ROOT = b"1.2.826.0.1.3680043.8.498."  # pydicom's generate_uid, which deidentify uses


def leaks(data, needles):
    """The needles found in ``data`` (a file's bytes), after taking out the replacement UIDs."""
    kept = bytearray()
    start = 0
    while (found := data.find(NEW_UID_ROOT, start)) >= 0:
        kept += data[start:found]
        start = found + len(NEW_UID_ROOT)
        while start < len(data) and data[start:start + 1] in b"0123456789.":
            start += 1
    kept += data[start:]
    return {needle: where for needle, where in needles.items() if needle in kept}
