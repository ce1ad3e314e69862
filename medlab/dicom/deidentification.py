"""De-identify DICOM files with the Basic Profile of DICOM PS3.15 Annex E.

:func:`deidentify` applies the Basic Application Level Confidentiality Profile of DICOM
PS3.15 Annex E to a file or a folder, writing cleaned copies and returning a
:class:`DeidentificationReport` that lists every :class:`Change`. The profile's table,
Table E.1-1 with several hundred attributes, is :data:`BASIC_PROFILE` (see
:mod:`medlab.dicom.basic_profile` for its source and edition); every attribute is looked up
by its tag, at every depth of nested sequences.

The table comes from ``dicom-anonymizer``; its engine does not. That engine replaces UIDs with
random ones remembered in a process-wide dictionary (two runs give different UIDs, so the
files of one study cleaned in two runs no longer belong together), changes the dataset in
place, and reports nothing. The engine here derives each new UID and identifier from the old
one and a secret ``salt`` (the same study keeps its links across runs), writes copies, and
reports every change.

>>> import shutil, tempfile, pydicom
>>> from pydicom.data import get_testdata_file
>>> original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
>>> str(original.PatientName), original.InstitutionName, sum(e.tag.is_private for e in original)
('CompressedSamples^CT1', 'JFK IMAGING CENTER', 179)
>>> out = tempfile.mkdtemp()
>>> report = deidentify(get_testdata_file("CT_small.dcm"), out, salt="a secret")
>>> copy = pydicom.dcmread(report.files[0])
>>> str(copy.PatientName)[:5], "InstitutionName" in copy, sum(e.tag.is_private for e in copy)
('ANON^', False, 0)
>>> copy.Rows == original.Rows and copy.PixelData == original.PixelData
True
>>> shutil.rmtree(out)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import MediaStorageDirectoryStorage, generate_uid

from medlab.dicom.basic_profile import APPLIED, BASIC_PROFILE, EDITION, profile_action
from medlab.dicom.errors import DicomError, DicomWarning, _reason
from medlab.dicom.files import _check_pixel_length, _not_dicom, _read

__all__ = ["BASIC_PROFILE", "Change", "DeidentificationReport", "deidentify"]

_DUMMY_TEXT = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
}
_BINARY = ("OB", "OD", "OF", "OL", "OV", "OW", "UN")
_NUMBERS = ("AT", "FD", "FL", "SL", "SS", "SV", "UL", "US", "UV")
_META_REMOVED = (
    "SourceApplicationEntityTitle",
    "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle",
    "PrivateInformationCreatorUID",
    "PrivateInformation",
)


class Change(NamedTuple):
    """One attribute changed by :func:`deidentify`: where, which, and the PS3.15 action."""

    tag: str  # "(0010,0010)"; nested: "(0010,1002)>(0010,0020)"
    keyword: str  # "PatientName"; nested: "OtherPatientIDsSequence>PatientID"
    action: str  # "D", "Z", "X", "U" (PS3.15 Annex E) or "A" (added)


@dataclass
class DeidentificationReport:
    """What :func:`deidentify` did: files written, per file the changes, and files skipped.

    Taught in lab 01, section 11 (De-identification).
    """

    source: Path
    destination: Path
    files: list[Path] = field(default_factory=list)
    changes: dict[Path, list[Change]] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    uids_replaced: int = 0

    def summary(self) -> str:
        """A few lines for a notebook: counts per action, skipped files, what to check."""
        counts = Counter(c.action for changes in self.changes.values() for c in changes)
        private = sum(
            c.keyword.endswith("(private)") for changes in self.changes.values() for c in changes
        )
        lines = [
            f"De-identified {len(self.files)} DICOM file(s) from {self.source} into {self.destination} "
            "(DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile).",
            f"Changes: {counts['X']} removed (X, {private} of them private tags), "
            f"{counts['Z']} emptied (Z), "
            f"{counts['D']} dummy values or pseudonyms (D), {counts['U']} UIDs replaced (U; "
            f"{self.uids_replaced} distinct), {counts['A']} added (A).",
        ]
        if self.skipped:
            shown = ", ".join(f"{p.name} ({why})" for p, why in self.skipped[:5])
            lines.append(
                f"Skipped {len(self.skipped)} file(s), not copied: {shown}"
                + (" ..." if len(self.skipped) > 5 else ".")
            )
        lines.extend(self.warnings)
        lines.append(
            "Pixel data and file names are unchanged: check them for burned-in or written identities."
        )
        return "\n".join(lines)


def _pseudonym(salt: str, patient_id: str) -> str:
    return hashlib.sha256(f"{salt}\0{patient_id}".encode()).hexdigest()[:12].upper()


def _keeps_uid(keyword: str) -> bool:
    return keyword.endswith("ClassUID") or keyword in ("TransferSyntaxUID", "CodingSchemeUID")


def _new_uid(uid: str, salt: str, uids: dict[str, str]) -> str:
    """The replacement of ``uid``: the same for the same salt; well-known DICOM UIDs stay."""
    if uid.startswith("1.2.840.10008."):
        return uid
    if uid not in uids:
        uids[uid] = generate_uid(entropy_srcs=[salt, uid])
    return uids[uid]


def _check_complete(ds: Dataset, path: Path) -> None:
    """Raise if the file ends inside an element or goes on after the last one."""
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and not syntax.is_transfer_syntax:
        raise DicomError(
            f"{path} names {str(syntax)!r} as its transfer syntax, which is none that DICOM "
            "defines: the file meta is damaged. Nothing was written for it."
        )
    if not len(ds) or "SOPClassUID" not in ds:
        raise DicomError(
            f"{path} holds no SOPClassUID: it is truncated or not a DICOM instance. "
            "Nothing was written for it."
        )
    if syntax is not None and syntax.is_deflated:
        return  # offsets refer to the inflated stream
    last = ds.get_item(max(ds.keys()), keep_deferred=True)  # as read: not parsed
    if isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF:
        end, size = last.value_tell + last.length, path.stat().st_size
        if end != size:
            raise DicomError(
                f"{path} is truncated or damaged: its last element ends at byte {end}, but the "
                f"file holds {size} bytes. Nothing was written for it; copy it again from its source."
            )


def _dummy(elem: DataElement, salt: str, uids: dict[str, str]) -> object:
    """A non-zero length value for ``elem`` that says nothing (action D)."""
    vr = elem.VR.split(" or ")[0]  # ambiguous VRs such as "US or SS"
    if vr == "SQ":
        return Sequence([Dataset()])
    if vr == "UI":  # the replacement a UID gets everywhere, so that references hold
        if elem.value and not isinstance(elem.value, MultiValue):
            return _new_uid(str(elem.value), salt, uids)
        return generate_uid(entropy_srcs=[salt, "dummy", str(elem.tag)])
    if vr in _NUMBERS:
        return 0
    if vr in _BINARY:
        return bytes(8)
    return _DUMMY_TEXT.get(vr, "ANONYMOUS")


def _replace_uids(elem: DataElement, salt: str, uids: dict[str, str]) -> None:
    old = list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]
    new = [_new_uid(str(v), salt, uids) for v in old]
    elem.value = new if len(new) > 1 else new[0]


def _clean(
    ds: Dataset,
    changes: list[Change],
    salt: str,
    uids: dict[str, str],
    pseudonym: str,
    prefix: tuple[str, str] = ("", ""),
) -> None:
    """Apply the Basic Profile to ``ds`` and, recursively, to its sequence items, in place.

    An attribute is looked up by its tag (:func:`profile_action`), so removals never parse
    the value; :data:`APPLIED` chooses among the table's options. Sequences the table does
    not list are kept and their items cleaned, like the items of ``X/Z/U*`` sequences.
    """
    for tag in list(ds.keys()):
        tag = Tag(tag)
        keyword = keyword_for_tag(tag)
        name = keyword or ("(private)" if tag.is_private else "(unknown)")
        where = (f"{prefix[0]}({tag.group:04X},{tag.element:04X})", prefix[1] + name)
        if tag.element == 0 and not tag.is_private and tag.group != 0x0002:
            del ds[tag]  # group lengths would be wrong after the changes
            continue
        rule = profile_action(tag)
        applied = "X" if tag.group == 0x0000 else APPLIED.get(rule)  # command elements: not in files
        if applied == "X":
            del ds[tag]
            changes.append(Change(*where, "X"))
            continue
        elem = ds[tag]
        action = applied
        if keyword in ("PatientName", "PatientID"):
            elem.value = f"ANON^{pseudonym}" if keyword == "PatientName" else f"ANON-{pseudonym}"
            action = "D"
        elif applied == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else None
        elif applied == "D":
            elem.value = _dummy(elem, salt, uids)
        elif elem.VR == "SQ":  # not in the table, or X/Z/U*: keep the items, clean them
            for index, item in enumerate(elem.value):
                _clean(
                    item,
                    changes,
                    salt,
                    uids,
                    pseudonym,
                    (f"{where[0]}[{index}]>", f"{where[1]}[{index}]>"),
                )
            action = None
        elif elem.VR == "UI":
            action = None
            if elem.value and (applied == "U" or not _keeps_uid(keyword)):
                _replace_uids(elem, salt, uids)
                action = "U"
        elif applied == "U":  # a UID attribute stored with another VR (e.g. UN)
            elem.value = _dummy(elem, salt, uids)
            action = "D"
        if action:
            changes.append(Change(*where, action))


def _tag_text(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _record_deidentification(ds: Dataset, changes: list[Change]) -> None:
    """Add the attributes that say how the dataset was de-identified (action A)."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = f"DICOM PS3.15 E.1-1 Basic Profile ({EDITION}), MedLab deidentify"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    ds.LongitudinalTemporalInformationModified = "REMOVED"  # dates are not kept (PS3.15 E.2)
    for keyword in (
        "PatientIdentityRemoved",
        "DeidentificationMethod",
        "DeidentificationMethodCodeSequence",
        "LongitudinalTemporalInformationModified",
    ):
        changes.append(Change(_tag_text(keyword), keyword, "A"))


def _deidentify_dataset(
    ds: Dataset, source: Path, salt: str, uids: dict[str, str]
) -> tuple[list[Change], bool]:
    """Clean ``ds`` in place (body and file meta); the changes, and whether the pixels are
    marked as showing text (*Burned In Annotation* YES)."""
    changes: list[Change] = []
    try:
        burned_in = str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
        _clean(ds, changes, salt, uids, _pseudonym(salt, str(ds.get("PatientID", ""))))
        for keyword in _META_REMOVED:
            if keyword in ds.file_meta:
                delattr(ds.file_meta, keyword)
                changes.append(Change(_tag_text(keyword), keyword, "X"))
        if "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        elif "MediaStorageSOPInstanceUID" in ds.file_meta:
            ds.file_meta.MediaStorageSOPInstanceUID = _new_uid(
                str(ds.file_meta.MediaStorageSOPInstanceUID), salt, uids
            )
        _record_deidentification(ds, changes)
    except Exception as exc:  # values pydicom cannot parse
        raise DicomError(
            f"{source} holds a malformed value ({_reason(exc)}). Nothing was written for it."
        ) from exc
    return changes, burned_in


def _write(ds: Dataset, source: Path, target: Path) -> None:
    """Write ``ds`` to ``target`` under a temporary name, then rename: never a partial file."""
    partial = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=".deid-", suffix=".partial", dir=target.parent)
        os.close(handle)
        ds.save_as(partial, enforce_file_format=True)
        os.replace(partial, target)
    except Exception as exc:
        if partial is not None:
            Path(partial).unlink(missing_ok=True)
        raise DicomError(
            f"{source}: cannot write the de-identified copy to {target} ({_reason(exc)})."
        ) from exc


def _deidentify_file(
    source: Path, target: Path, salt: str, uids: dict[str, str], report: DeidentificationReport
) -> None:
    ds = _read(source, header_only=False)
    if ds is None:
        raise _not_dicom(source)
    try:
        _check_complete(ds, source)  # first: reading a value turns its raw element into a parsed one
        _check_pixel_length(ds, source, note=" Nothing was written for it.")
    except DicomError:
        raise
    except Exception as exc:  # values pydicom cannot parse
        raise DicomError(
            f"{source} holds a malformed value ({_reason(exc)}). Nothing was written for it."
        ) from exc
    changes, burned_in = _deidentify_dataset(ds, source, salt, uids)
    if burned_in:
        report.warnings.append(
            f"{source.name}: BurnedInAnnotation is YES: the pixels show text that may identify "
            "the patient."
        )
    _write(ds, source, target)
    report.files.append(target)
    report.changes[target] = changes


def deidentify(
    src: str | os.PathLike, dst: str | os.PathLike, *, salt: str = "medlab"
) -> DeidentificationReport:
    """Write de-identified copies of DICOM files (DICOM PS3.15 Annex E, Basic Profile).

    ``src`` is a file or a folder (read recursively); ``dst`` is the output file (or an
    existing folder to put it in) or the output folder, which mirrors the layout of ``src``.
    ``src`` is never modified, and ``dst`` may not overlap it. Files that are not DICOM are
    skipped (not copied) and listed in the report. For every DICOM file:

    * every attribute of Table E.1-1 (:data:`BASIC_PROFILE`, several hundred) is removed
      (X), emptied (Z), given a dummy value (D) or a replaced UID (U), at the top level and
      in the items of sequences at any depth; where the table offers a choice (``X/Z``,
      ``Z/D``, ...) :data:`~medlab.dicom.basic_profile.APPLIED` says which one is taken. A
      sequence with action D (e.g. the *Content Sequence* of a structured report) becomes
      one empty item. All private tags, curves, overlay data and comments are removed;
      attributes the table does not list are kept, and the items of sequences it does not
      list are cleaned the same way;
    * PatientName and PatientID become a pseudonym derived from ``salt`` and the original
      PatientID, so one patient keeps one pseudonym across files and runs;
    * every UID the table lists, and every other UID except class and transfer syntax UIDs,
      is replaced (U) by one derived from ``salt`` and the original, so references between
      files stay consistent; the file meta *Media Storage SOP Instance UID* follows
      *SOP Instance UID*;
    * PatientIdentityRemoved, DeidentificationMethod, DeidentificationMethodCodeSequence
      (113100, DCM) and LongitudinalTemporalInformationModified (REMOVED) are added (A);
      pixel data and geometry are kept byte for byte.

    Use a secret ``salt`` for real data: with the default, anyone who knows a PatientID or
    a UID can recompute its replacement. Pixel data (burned-in text) and file names are not
    cleaned. A truncated or damaged file raises a :class:`DicomError` naming it, after the
    files before it were written; each output is written under a temporary name and then
    renamed, so no partial file is ever left.

    Taught in lab 01, section 11 (De-identification).
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise DicomError(f"{src} does not exist: check the path.")
    if not isinstance(salt, str) or not salt:
        raise DicomError(f"salt must be a non-empty string; got {salt!r}.")
    src_real, dst_real = src.resolve(), dst.resolve()
    if src.is_dir():
        if dst_real == src_real or src_real in dst_real.parents or dst_real in src_real.parents:
            raise DicomError(
                f"dst {dst} overlaps src {src}: de-identified copies must go to a folder outside the "
                "originals (e.g. a sibling folder), so that the originals cannot be overwritten."
            )
        if dst.exists() and not dst.is_dir():
            raise DicomError(f"{dst} is a file, but src {src} is a folder: give a folder for dst.")
        jobs = [(p, dst / p.relative_to(src)) for p in sorted(src.rglob("*")) if p.is_file()]
    else:
        target = dst / src.name if dst.is_dir() else dst
        if target.resolve() == src_real:
            raise DicomError(f"dst {dst} is the source file itself: choose another path.")
        jobs = [(src, target)]
    report = DeidentificationReport(source=src, destination=dst)
    uids: dict[str, str] = {}
    for source, target in jobs:
        if src.is_dir():
            header = _read(source, header_only=True)
            if header is None:
                report.skipped.append((source, "not DICOM"))
                continue
            if header.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
                report.skipped.append((source, "DICOMDIR: make a new one for the copies"))
                continue
        _deidentify_file(source, target, salt, uids, report)
    report.uids_replaced = len(uids)
    for message in report.warnings:
        warnings.warn(message, DicomWarning, stacklevel=2)
    return report
