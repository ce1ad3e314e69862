"""medlab.dicom.deidentification: the DICOM PS3.15 Basic Profile applied to files and folders."""

import itertools
import shutil

import numpy as np
import pydicom
import pytest
from deidentify_helpers import digest, file_meta, leaks, planted_dataset, table_tags, write_file
from dicom_helpers import ORIGIN, SPACING, ramp, read_quietly, write
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage

from medlab import dicom
from medlab.dicom import DicomError, basic_profile

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
    paths = dicom.write_ct_series(ramp((4, 16, 16)), folder, spacing=SPACING, patient=PLANTED, origin=ORIGIN)
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


# Rows of DICOM PS3.15 Table E.1-1 (Basic Profile column), among them the attributes that
# an earlier, shorter table of MedLab's kept; "-" for attributes the table does not list.
STANDARD_ROWS = {
    "AccessionNumber": "Z",
    "AcquisitionDate": "X/Z",
    "AcquisitionDateTime": "X/Z/D",
    "AdmissionID": "X",
    "ClinicalTrialCoordinatingCenterName": "Z",
    "ContentCreatorName": "Z/D",
    "ContentDate": "Z/D",
    "ContentSequence": "D",
    "ContrastBolusAgent": "Z/D",
    "DataSetTrailingPadding": "X",
    "DeviceSerialNumber": "X/Z/D",
    "FrameOfReferenceUID": "U",
    "IconImageSequence": "X",
    "InstitutionAddress": "X",
    "InstitutionName": "X/Z/D",
    "IssuerOfAdmissionID": "X",
    "IssuerOfPatientID": "X",
    "ManufacturerDeviceClassUID": "U",
    "MediaStorageSOPInstanceUID": "U",
    "OperatorsName": "X/Z/D",
    "OtherPatientIDsSequence": "X",
    "PatientAge": "X",
    "PatientBirthDate": "Z",
    "PatientID": "Z/D",
    "PatientName": "Z",
    "PatientSex": "Z",
    "PatientWeight": "X",
    "PersonName": "D",
    "ProtocolName": "X/D",
    "RTPlanLabel": "D",
    "ReferencedImageSequence": "X/Z/U*",
    "ReferencedSOPInstanceUID": "U",
    "ReferringPhysicianName": "Z",
    "RequestAttributesSequence": "X",
    "RequestedProcedureLocation": "X",
    "SOPInstanceUID": "U",
    "SeriesDate": "X/D",
    "SeriesInstanceUID": "U",
    "SourceImageSequence": "X/Z/U*",
    "StationName": "X/Z/D",
    "StudyDate": "Z",
    "StudyID": "Z",
    "StudyInstanceUID": "U",
    "TreatmentMachineName": "X/Z",
    "VerifyingObserverName": "D",
    "(50xx,xxxx)": "X",
    "(60xx,3000)": "X",
    "(60xx,4000)": "X",
    "Modality": "-",
    "PixelData": "-",
    "SOPClassUID": "-",
    "TextValue": "-",  # inside Content Sequence, which is replaced as a whole (D)
}


def test_basic_profile_is_the_whole_table_of_the_standard():
    table = dicom.BASIC_PROFILE
    assert len(table) > 650 and set(table.values()) == set(basic_profile.ACTIONS)
    assert set(basic_profile.APPLIED) == set(basic_profile.ACTIONS)
    for key, action in STANDARD_ROWS.items():
        assert table.get(key, "-") == action, key
    # keys are pydicom keywords, or tags newer than pydicom's dictionary, or patterns
    tags = [key for key in table if key.startswith("(") and "x" not in key and "g" not in key]
    assert 0 < len(tags) < 40
    assert not any(pydicom.datadict.dictionary_has_tag(int(t[1:5] + t[6:10], 16)) for t in tags)
    keywords = [key for key in table if not key.startswith("(")]
    assert [k for k in keywords if pydicom.datadict.tag_for_keyword(k) is None] == []


def test_basic_profile_matches_dicom_anonymizer_lists():
    """Each attribute in the lists of dicom-anonymizer's 2026c edition has that list's action,
    and the edition before it (2024b) lost no attribute."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    names = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
             "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}
    lists = dicom_anonymization_database_selector(f"dicomfields_{basic_profile.EDITION}")
    pairs = [(entry, action) for name, action in names.items() for entry in lists[name]]
    assert len(pairs) == len(dicom.BASIC_PROFILE) - 1  # the table's row for private attributes
    for entry, action in pairs:
        tag = entry[0] << 16 | entry[1]
        assert basic_profile.profile_action(tag) == action, f"{tag:08X}"
    older = dicom_anonymization_database_selector("dicomfields_2024b")["ALL_TAGS"]
    assert set(older) <= {entry for entry, _ in pairs}
    assert basic_profile.profile_action(0x00291010) == basic_profile.profile_action(0x7FE1_0010) == "X"
    assert basic_profile.profile_action(0x50FE0000) == basic_profile.profile_action(0x601E4000) == "X"
    assert basic_profile.profile_action(0x60000010) is None  # overlay rows and columns stay


def planted_file(path):
    """A file with a planted value in every attribute of the table, at three depths."""
    needles = {}
    ds = planted_dataset(0, itertools.count(1), needles)
    ds.SOPClassUID = CTImageStorage
    ds.file_meta = file_meta(ds.SOPInstanceUID)
    path.parent.mkdir(parents=True, exist_ok=True)
    return ds, needles, write_file(ds, path)


def assert_actions_applied(before, after, where):
    """Every attribute of the table in ``before`` got its action in ``after``."""
    for tag, (vr, action) in table_tags().items():
        if tag >> 16 in (0x0000, 0x0002):
            assert tag not in after, f"{where}{tag:08X}"
            continue
        applied, old = basic_profile.APPLIED[action], before[tag].value
        if applied == "X":
            assert tag not in after, f"{where}{tag:08X}"
            continue
        new = after[tag].value
        if tag == 0x00100010:
            assert str(new).startswith("ANON^")
        elif applied == "Z":
            assert after[tag].is_empty, f"{where}{tag:08X}"
        elif vr == "SQ" and applied == "D":
            assert len(new) == 1 and len(new[0]) == 0, f"{where}{tag:08X}"
        elif vr == "SQ":  # X/Z/U*: the item stays, its UIDs are replaced
            assert new[0].ReferencedSOPInstanceUID != old[0].ReferencedSOPInstanceUID
            assert new[0].ReferencedSOPClassUID == CTImageStorage
        else:
            assert not after[tag].is_empty and new != old, f"{where}{tag:08X}"


@pytest.mark.filterwarnings("ignore:Expected implicit VR")  # pydicom, on command elements
def test_every_attribute_of_the_table_is_cleaned_at_every_depth(tmp_path):
    original, needles, path = planted_file(tmp_path / "raw" / "planted.dcm")
    data = path.read_bytes()
    assert len(needles) > 8000 and [n for n in needles if n not in data] == []  # the test can fail
    before = digest(tmp_path / "raw")
    report = dicom.deidentify(tmp_path / "raw", tmp_path / "anon", salt="plant")
    assert digest(tmp_path / "raw") == before
    out = tmp_path / "anon" / "planted.dcm"
    assert leaks(out.read_bytes(), needles) == {}

    copy = pydicom.dcmread(out)
    assert_actions_applied(original, copy, "")
    inner, inner_copy = original.ReferencedSeriesSequence[0], copy.ReferencedSeriesSequence[0]
    assert_actions_applied(inner, inner_copy, "ReferencedSeriesSequence>")
    deepest = original.ReferencedImageSequence[0].ReferencedSeriesSequence[0]
    assert_actions_applied(
        deepest, copy.ReferencedImageSequence[0].ReferencedSeriesSequence[0],
        "ReferencedImageSequence>ReferencedSeriesSequence>",
    )
    assert copy.file_meta.MediaStorageSOPInstanceUID == copy.SOPInstanceUID != original.SOPInstanceUID
    assert not any(elem.tag.is_private for elem in copy.iterall())
    assert copy.LongitudinalTemporalInformationModified == "REMOVED"

    top = {c.tag for c in report.changes[out] if ">" not in c.tag}
    listed = {f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in table_tags() if t >> 16 != 0x0002}
    assert listed - top == {"(0008,1140)", "(0008,2112)"}  # X/Z/U*: the UIDs inside are reported
    assert dicom.Change("(0008,1140)[0]>(0008,1155)",
                        "ReferencedImageSequence[0]>ReferencedSOPInstanceUID", "U") in report.changes[out]


def test_the_reported_attributes_of_the_defect_are_cleaned(tmp_path):
    """Attributes that an earlier, shorter table kept, among them in a structured report."""
    ds = pydicom.dcmread(write(tmp_path / "raw", ramp((1, 8, 8)))[0])
    ds.ContrastBolusAgent, ds.RequestedProcedureLocation = "Omnipaque QZ-1", "Ward QZ-2"
    ds.IssuerOfAdmissionID, ds.ClinicalTrialCoordinatingCenterName = "QZ-3 Registry", "QZ-4 Centre"
    ds.RTPlanLabel, ds.ManufacturerDeviceClassUID = "QZ-5 Plan", "1.2.826.0.1.3680043.10.99.6"
    machine = Dataset()
    machine.TreatmentMachineName = "QZ-7 Linac"
    ds.TreatmentMachineSequence = Sequence([machine])
    text = Dataset()
    text.ValueType, text.TextValue, text.DateTime = "TEXT", "Seen by Dr QZ-8 on 12 May", "20240512103000"
    ds.ContentSequence = Sequence([text])
    ds.save_as(tmp_path / "raw" / "slice_0000.dcm")
    dicom.deidentify(tmp_path / "raw", tmp_path / "anon")
    data = (tmp_path / "anon" / "slice_0000.dcm").read_bytes()
    found = [n for n in ["QZ-", "Omnipaque", "1.2.826.0.1.3680043.10.99.6", "20240512"] if n.encode() in data]
    assert found == []
    copy = pydicom.dcmread(tmp_path / "anon" / "slice_0000.dcm")
    assert copy.ContrastBolusAgent == "ANONYMOUS" and len(copy.ContentSequence) == 1
    assert "TreatmentMachineName" not in copy.TreatmentMachineSequence[0]
