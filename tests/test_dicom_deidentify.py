"""medlab.dicom.deidentification: the DICOM PS3.15 Basic Profile applied to files and folders."""

import hashlib
import shutil

import numpy as np
import pydicom
import pytest
from dicom_helpers import ORIGIN, SPACING, ramp, read_quietly, write
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medlab import dicom
from medlab.dicom import DicomError

PLANTED = {
    "PatientName": "Quasimodo^Esmeralda^Q",
    "PatientID": "PID-4711-SECRET",
    "PatientBirthDate": "19470412",
    "PatientAddress": "221B Baker Street, London",
    "PatientTelephoneNumbers": "+44 20 7946 0018",
    "InstitutionName": "St Elsewhere Hospital",
    "InstitutionAddress": "159 Westlake Avenue, Boston",
    "ReferringPhysicianName": "Housewright^Gregory",
    "PerformingPhysicianName": "Quinnsworth^Michaela",
    "AccessionNumber": "ACC-99887766",
    "OperatorsName": "Radiographer^Rhonda",
    "StationName": "CTSCANNER-B7",
    "DeviceSerialNumber": "SN-SERIAL-5150",
    "StudyID": "STUDY-8086",
}
OTHER_ID = "OTHER-ID-31337"


def planted_series(folder):
    """A 4-slice series full of identifying values, and the original UIDs."""
    paths = dicom.write_ct_series(ramp((4, 16, 16)), SPACING, folder, patient=PLANTED, origin=ORIGIN)
    uids = set()
    first_uid = pydicom.dcmread(paths[0]).SOPInstanceUID
    for path in paths:
        ds = pydicom.dcmread(path)
        other = Dataset()
        other.PatientID, other.IssuerOfPatientID = OTHER_ID, "Elsewhere Registry"
        ds.OtherPatientIDsSequence = Sequence([other])
        ds.private_block(0x0011, "ACME SCANNERS", create=True).add_new(
            0x10, "LO", PLANTED["PatientName"]
        )
        reference = Dataset()  # each slice points to the first: a reference that must stay consistent
        reference.ReferencedSOPClassUID = ds.SOPClassUID
        reference.ReferencedSOPInstanceUID = first_uid
        ds.ReferencedImageSequence = Sequence([reference])
        ds.save_as(path)
        uids |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID}
    return paths, uids


def digest(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_deidentify_removes_every_planted_identifier(tmp_path):
    paths, original_uids = planted_series(tmp_path / "raw")
    (tmp_path / "raw" / "README.txt").write_text(f"patient {PLANTED['PatientName']}")
    before = digest(tmp_path / "raw")
    report = dicom.deidentify(tmp_path / "raw", tmp_path / "anon", salt="course-secret")

    assert digest(tmp_path / "raw") == before  # the source is untouched
    outputs = sorted((tmp_path / "anon").iterdir())
    assert [p.name for p in outputs] == [p.name for p in paths]  # README.txt is not copied
    assert report.files == outputs and report.skipped == [(tmp_path / "raw" / "README.txt", "not DICOM")]
    assert len(original_uids) == 4 + 3  # 4 SOP instances + study, series, frame of reference
    for path in outputs:
        raw = path.read_bytes()
        for value in [
            *PLANTED.values(),
            OTHER_ID,
            "Elsewhere Registry",
            "ACME SCANNERS",
            *original_uids,
        ]:
            assert value.encode() not in raw, f"{value!r} survived in {path.name}"

    originals = [pydicom.dcmread(p) for p in paths]
    copies = [pydicom.dcmread(p) for p in outputs]
    for before_ds, after in zip(originals, copies):
        for keyword in (  # compared as the raw bytes stored in the files
            "PixelData",
            "ImagePositionPatient",
            "ImageOrientationPatient",
            "PixelSpacing",
            "SliceThickness",
            "Rows",
            "Columns",
            "RescaleIntercept",
            "RescaleSlope",
            "SOPClassUID",
        ):
            assert after.get_item(keyword).value == before_ds.get_item(keyword).value
        assert after.PatientIdentityRemoved == "YES"
        code = after.DeidentificationMethodCodeSequence[0]
        assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        assert not any(elem.tag.is_private for elem in after.iterall())
        assert (
            "OtherPatientIDsSequence" not in after
            and "PatientBirthDate" in after
            and after.PatientBirthDate == ""
        )
    assert len({c.StudyInstanceUID for c in copies}) == len({c.SeriesInstanceUID for c in copies}) == 1
    assert len({c.SOPInstanceUID for c in copies}) == 4
    assert {c.ReferencedImageSequence[0].ReferencedSOPInstanceUID for c in copies} == {
        copies[0].SOPInstanceUID
    }
    assert len({str(c.PatientName) for c in copies} | {c.PatientID for c in copies}) == 2
    assert copies[0].PatientID.startswith("ANON-") and str(copies[0].PatientName).startswith("ANON^")

    changes = set(report.changes[outputs[0]])
    for expected in [
        ("(0010,0010)", "PatientName", "D"),
        ("(0008,0050)", "AccessionNumber", "Z"),
        ("(0010,1002)", "OtherPatientIDsSequence", "X"),
        ("(0020,000D)", "StudyInstanceUID", "U"),
        ("(0011,1010)", "(private)", "X"),
        ("(0008,1140)[0]>(0008,1155)", "ReferencedImageSequence[0]>ReferencedSOPInstanceUID", "U"),
        ("(0012,0062)", "PatientIdentityRemoved", "A"),
    ]:
        assert dicom.Change(*expected) in changes
    assert report.uids_replaced == 7
    summary = report.summary()
    assert "De-identified 4 DICOM file(s)" in summary and "7 distinct" in summary
    assert "README.txt (not DICOM)" in summary and "burned-in" in summary

    volume = read_quietly(tmp_path / "anon")
    np.testing.assert_array_equal(volume.volume, ramp((4, 16, 16)))
    assert volume.spacing == SPACING and volume.origin == ORIGIN


def test_deidentify_is_repeatable_and_depends_on_the_salt(tmp_path):
    planted_series(tmp_path / "raw")
    dicom.deidentify(tmp_path / "raw", tmp_path / "a", salt="one")
    dicom.deidentify(tmp_path / "raw", tmp_path / "b", salt="one")
    dicom.deidentify(tmp_path / "raw", tmp_path / "c", salt="two")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    a, c = (
        pydicom.dcmread(tmp_path / "a" / "slice_0000.dcm"),
        pydicom.dcmread(tmp_path / "c" / "slice_0000.dcm"),
    )
    assert a.StudyInstanceUID != c.StudyInstanceUID and a.PatientID != c.PatientID


def test_deidentify_single_files_and_layout(tmp_path):
    paths, _ = planted_series(tmp_path / "raw" / "study" / "series")
    report = dicom.deidentify(paths[0], tmp_path / "one.dcm")
    assert (
        report.files == [tmp_path / "one.dcm"]
        and pydicom.dcmread(tmp_path / "one.dcm").PatientIdentityRemoved == "YES"
    )
    (tmp_path / "out").mkdir()
    assert dicom.deidentify(paths[1], tmp_path / "out").files == [tmp_path / "out" / "slice_0001.dcm"]
    dicom.deidentify(tmp_path / "raw", tmp_path / "mirror")
    assert sorted(
        p.relative_to(tmp_path / "mirror").as_posix() for p in (tmp_path / "mirror").rglob("*.dcm")
    ) == [f"study/series/slice_{k:04d}.dcm" for k in range(4)]


def test_deidentify_refuses_overlapping_folders(tmp_path):
    paths, _ = planted_series(tmp_path / "raw")
    before = digest(tmp_path / "raw")
    for dst in (tmp_path / "raw", tmp_path / "raw" / "anon", tmp_path):
        with pytest.raises(DicomError, match="overlaps src"):
            dicom.deidentify(tmp_path / "raw", dst)
    with pytest.raises(DicomError, match="is the source file itself"):
        dicom.deidentify(paths[0], paths[0])
    with pytest.raises(DicomError, match="does not exist"):
        dicom.deidentify(tmp_path / "nothing", tmp_path / "out")
    assert digest(tmp_path / "raw") == before


def test_deidentify_stops_at_a_damaged_file_without_partial_output(tmp_path):
    write(tmp_path / "raw", ramp((2, 8, 8)))
    shutil.copy(get_testdata_file("MR_truncated.dcm"), tmp_path / "raw" / "zz_truncated.dcm")
    with pytest.raises(DicomError, match="zz_truncated.dcm is truncated"):
        dicom.deidentify(tmp_path / "raw", tmp_path / "anon")
    assert sorted(p.name for p in (tmp_path / "anon").iterdir()) == ["slice_0000.dcm", "slice_0001.dcm"]
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DicomError, match="x.txt is not a DICOM file"):
        dicom.deidentify(tmp_path / "x.txt", tmp_path / "x_anon.dcm")


@pytest.mark.parametrize("keep", [400, 701, 1500, -50])
def test_deidentify_refuses_a_file_cut_anywhere(tmp_path, keep):
    path = write(tmp_path / "raw", ramp((1, 8, 8)))[0]
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(DicomError, match="slice_0000.dcm (is truncated|holds no SOPClassUID)"):
        dicom.deidentify(path, tmp_path / "anon.dcm")
    assert list(tmp_path.glob("*anon*")) == [] and list(tmp_path.glob(".deid-*")) == []


def test_basic_profile_table_is_large_and_valid():
    table = dicom.BASIC_PROFILE
    assert len(table) >= 50 and set(table.values()) == {"X", "Z", "D"}
    unknown = [k for k in table if pydicom.datadict.tag_for_keyword(k) is None]
    assert unknown == []
    assert table["PatientBirthDate"] == "Z" and table["OtherPatientIDsSequence"] == "X"
    assert table["RequestAttributesSequence"] == "X" and table["ReferencedPatientSequence"] == "X"
